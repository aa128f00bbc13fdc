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
for "host", with ``--add-host``/``--dns`` applied). Bridge and user-defined networks are ``network.service``'s
``NetworkService``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..container_store import ContainerRecord
    from ..events import EventJournal


@dataclass
class Attachment:
    """What networking reserved for one container (shown by inspect under NetworkSettings)."""

    network_settings: dict = field(default_factory=dict)

    def connect(self, pid: int) -> None:
        """Wire the container whose PID 1 is ``pid`` into its networks (nothing to do for none/host)."""


class Networking(Protocol):
    def prepare(self, record: ContainerRecord) -> Attachment: ...

    def release(self, record: ContainerRecord) -> None: ...


class LocalNetworking:
    """``none`` (a private namespace with only lo, set up by the launcher) and ``host``."""

    def __init__(self, mode: str = "none") -> None:
        self.mode = mode

    def prepare(self, record: ContainerRecord) -> Attachment:
        import os

        from ..network import etcfiles

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


LOCAL_MODES = ("none", "host")


def networking_for(network_mode: str, config: EngineConfig, events: EventJournal | None) -> Networking:
    """The networking of a mode; refuses unknown networks (Docker: "network X not found", exit 125)."""
    if network_mode in LOCAL_MODES:
        return LocalNetworking(network_mode)
    from ..errors import UnsupportedError

    if network_mode.startswith("container:"):
        raise UnsupportedError(f'network mode "{network_mode}" is not supported yet')
    from ..network.service import NetworkService

    service = NetworkService(config, events)
    service.check_network(network_mode)
    return service
