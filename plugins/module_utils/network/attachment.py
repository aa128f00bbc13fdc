"""The contract between container lifecycle and networking.

The container service calls, for every container it starts:
  1. ``attachment = networking.prepare(record)`` before launching: reserves addresses and host ports (raises
     Conflict with nothing left behind when a port is taken) and writes the container's /etc/hosts and
     /etc/resolv.conf content;
  2. ``launcher.start(..., parent_hooks=[attachment.connect])``: ``connect(pid)`` runs while the container's
     PID 1 waits, after it has entered its own network namespace (for modes that have one), and wires it up
     (veth, addresses, routes, firewall rules);
  3. ``networking.release(record)`` once the container has exited or is removed, and during reconciliation
     after a crash: idempotent, frees whatever ``prepare``/``connect`` took.
"none" and "host" need none of that: ``LocalNetworking`` covers them (it still writes the /etc files: the host's
for "host", with ``--add-host``/``--dns`` applied). ``container:<id>`` is ``ContainerNetworking``: the launcher
joins the running target's namespace (``ContainerSpec.join_netns_pid``), the /etc files are copies of the
target's, and nothing is held (the namespace lives as long as any process in it: the target may stop or go
while the joiner runs, as with Docker). Bridge and user-defined networks are ``network.bridge``'s
``BridgeNetworking`` (the ``NetworkService`` of ``network.service``, which also picks a mode's networking:
``modes.networking_for``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..records.containers import ContainerRecord


@dataclass
class Attachment:
    """What networking reserved for one container (shown by inspect under NetworkSettings)."""

    network_settings: dict = field(default_factory=dict)
    # container: mode: the target's PID 1 and its start time, and its hostname (Docker uses the target's)
    join_netns: tuple[int, int] | None = None
    hostname: str = ""
    # sockets bound for published ports that the monitor relays itself (IPv6 host addresses, network/relay.py)
    listeners: list = field(default_factory=list)

    def connect(self, pid: int) -> None:
        """Wire the container whose PID 1 is ``pid`` into its networks (nothing to do for none/host)."""

    def close(self) -> None:
        """The start failed: let go of what was bound for it (``release`` frees the rest)."""
        for listener in self.listeners:
            listener.sock.close()
        self.listeners = []


class Networking(Protocol):
    def prepare(self, record: ContainerRecord) -> Attachment: ...

    def release(self, record: ContainerRecord) -> None: ...


class LocalNetworking:
    """``none`` (a private namespace with only lo, set up by the launcher) and ``host``."""

    def __init__(self, mode: str = "none") -> None:
        self.mode = mode

    def prepare(self, record: ContainerRecord) -> Attachment:
        import os

        from . import etcfiles

        host = record.config.host_config
        extra = [etcfiles.parse_extra_host(item) for item in host.extra_hosts]
        if self.mode == "host":
            # Docker: the host's own files (its resolver may well be on loopback: same namespace).
            hosts = etcfiles.read_text("/etc/hosts") or etcfiles.HOSTS_BASE
            hosts = hosts.rstrip("\n") + "\n" + "".join(f"{ip}\t{name}\n" for name, ip in extra)
            resolv = etcfiles.read_text("/etc/resolv.conf")
            if host.dns or host.dns_search or host.dns_options:
                resolv = etcfiles.resolv_conf_content(resolv, host.dns, host.dns_search, host.dns_options)
        else:
            hosts = etcfiles.hosts_content([], extra, [])
            resolv = etcfiles.resolv_conf_content(etcfiles.read_text("/etc/resolv.conf"), host.dns,
                                                  host.dns_search, host.dns_options)
        etcfiles.write_in_place(os.path.join(record.directory, "hosts"), hosts)
        etcfiles.write_in_place(os.path.join(record.directory, "resolv.conf"), resolv)
        return Attachment(network_settings={"Networks": {}})

    def release(self, record: ContainerRecord) -> None:
        pass


class ContainerNetworking:
    """``--network container:<name|id>``: share the network namespace of a running container."""

    def __init__(self, mode: str, config: EngineConfig) -> None:
        self.mode = mode
        self.config = config

    def target(self):
        """The target's record (refuses an unknown one: Docker's "No such container", exit 125)."""
        from ..records.containers import ContainerStore

        return ContainerStore(self.config.paths.containers).lookup(self.mode.partition(":")[2])

    def prepare(self, record: ContainerRecord) -> Attachment:
        import os

        from ..errors import Conflict, EngineError
        from ..records.containers import process_start_time
        from . import etcfiles

        target = self.target()
        if target.id == record.id:
            raise EngineError("cannot join own network")
        state = target.state
        if state.status == "restarting":
            raise Conflict(f"Container {target.id} is restarting, wait until the container is running")
        if not state.running or not state.pid or process_start_time(state.pid) != state.pid_start_time:
            raise Conflict(f"cannot join network of a non running container: {target.id}")
        # Docker points the joiner at the target's own files; copies keep the joiner independent of the
        # target's directory (which goes with `rm`), at the price of not following later peer changes.
        for name in ("hosts", "resolv.conf", "hostname"):
            text = etcfiles.read_text(os.path.join(target.directory, name))
            etcfiles.write_in_place(os.path.join(record.directory, name), text)
        return Attachment(network_settings={"Networks": {}}, join_netns=(state.pid, state.pid_start_time),
                          hostname=target.config.hostname)

    def release(self, record: ContainerRecord) -> None:
        pass  # nothing was taken: the namespace is the target's (and lives on while the joiner runs)


# What Docker refuses with --network container: (moby runconfig/errors.go), checked at create.
CONTAINER_MODE_CONFLICTS = (
    ("hostname", "conflicting options: hostname and the network mode"),
    ("dns", "conflicting options: dns and the network mode"),
    ("extra_hosts", "conflicting options: custom host-to-IP mapping and the network mode"),
    ("mac_address", "conflicting options: mac-address and the network mode"),
    ("port_bindings", "conflicting options: port publishing and the container type network mode"),
    ("publish_all_ports", "conflicting options: port publishing and the container type network mode"),
    ("expose", "conflicting options: port exposing and the container type network mode"),
    ("ipv4_address", "user specified IP address is supported on user defined networks only"),
    ("aliases", "network-scoped alias is supported only for containers in user defined networks"),
    ("networks", "conflicting options: container type network can't be used with multiple networks"),
)


def check_container_mode(host, hostname: str | None) -> None:
    """Refuse options that make no sense in another container's network namespace (Docker's messages)."""
    from ..errors import InvalidArgument

    endpoints = [settings or {} for settings in host.networks.values()]
    given = {
        "hostname": bool(hostname), "dns": bool(host.dns or host.dns_search or host.dns_options),
        "extra_hosts": bool(host.extra_hosts), "port_bindings": bool(host.port_bindings),
        "publish_all_ports": host.publish_all_ports, "expose": bool(host.expose),
        "mac_address": any(e.get("mac_address") for e in endpoints),
        "ipv4_address": any(e.get("ipv4_address") for e in endpoints),
        "aliases": any(e.get("aliases") for e in endpoints),
        "networks": any(name != host.network_mode for name in host.networks),
    }
    for name, message in CONTAINER_MODE_CONFLICTS:
        if given[name]:
            raise InvalidArgument(message)


LOCAL_MODES = ("none", "host")
