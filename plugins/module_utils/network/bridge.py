"""The bridge driver: a container's addresses and published ports (allocated under the state lock), wiring
its veths into its namespace, the /etc files and inspect's NetworkSettings. State and kernel sync: ``state.py``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import os
import random
import secrets
import socket
from typing import TYPE_CHECKING

from ..errors import Conflict, EngineError, InvalidArgument, NotFound, PortConflict, UnsupportedError
from .attachment import Attachment
from .ports import PublishedPort, split_port_key
from .state import BRIDGE_OPTION, DEFAULT_NETWORK, NetworkState, holder_alive, holder_of, is_internal, mac_for

if TYPE_CHECKING:
    from ..records.containers import ContainerRecord


class BridgeAttachment(Attachment):
    """What ``prepare`` reserved for one start of a container; ``connect`` wires it up."""

    def __init__(self, service: BridgeNetworking, container_id: str, network_settings: dict) -> None:
        super().__init__(network_settings=network_settings)
        self.service = service
        self.container_id = container_id

    def connect(self, pid: int) -> None:
        wait_for_own_netns(pid)
        self.service.wire(self.container_id, pid)


def wait_for_own_netns(pid: int, timeout: float = 10.0) -> None:
    """The child unshares its network namespace right after fork, before waiting for the go-ahead."""
    import time

    mine = os.readlink("/proc/thread-self/ns/net")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != mine:
                return
        except OSError:
            raise EngineError(f"container process {pid} exited during network setup") from None
        if time.monotonic() > deadline:
            raise EngineError(f"container process {pid} did not enter its network namespace")
        time.sleep(0.0005)


class BridgeNetworking(NetworkState):
    """``Networking`` for bridge and user-defined networks: prepare / wire (``connect``) / release."""

    def desired_networks(self, record: ContainerRecord, state: dict) -> list[tuple[dict, dict]]:
        """(network doc, endpoint settings) for each network the container should join, primary first."""
        host = record.config.host_config
        wanted: dict[str, dict] = {}
        if host.network_mode not in ("none", "host") and not host.network_mode.startswith("container:"):
            wanted[host.network_mode] = dict(host.networks.get(host.network_mode) or {})
        for name, settings in host.networks.items():
            wanted.setdefault(name, dict(settings or {}))
        for name, settings in state["attach"].get(record.id, {}).items():
            if settings is None:
                wanted.pop(name, None)
            else:
                wanted[name] = dict(settings)
        out = []
        for name, settings in wanted.items():
            doc = self._find(state, name)
            out.append((doc, settings))
        return out

    def prepare(self, record: ContainerRecord) -> BridgeAttachment:
        with self._locked_state(strict=True) as state:
            if record.id in state["containers"]:
                self._drop_entry(state, record.id)
            entry = self._allocate(state, record)
            listeners = self._bind_relays(entry)  # a taken IPv6 port fails here: nothing written yet
            try:
                state["containers"][record.id] = entry
                self._write_etc(state, record.id)
                self._refresh_peers(state, {ep["network"] for ep in entry["endpoints"].values()}, skip=record.id)
            except BaseException:
                for listener in listeners:
                    listener.sock.close()
                raise
        attachment = BridgeAttachment(self, record.id, self.settings_view(record, entry, state))
        attachment.listeners = listeners
        return attachment

    @staticmethod
    def _bind_relays(entry: dict) -> list:
        """Listening sockets for the ports published on IPv6 host addresses (the monitor relays them)."""
        from .relay import RelayListener, bind_listener

        primary = entry["endpoints"].get(entry["primary"]) if entry["primary"] else None
        listeners: list[RelayListener] = []
        try:
            for p in entry["ports"]:
                if ":" in p["host_ip"] and primary:
                    sock = bind_listener(p["proto"], p["host_ip"], p["host_port"])
                    listeners.append(RelayListener(sock, p["proto"], primary["ip"], p["container_port"]))
        except BaseException:
            for listener in listeners:
                listener.sock.close()
            raise
        return listeners

    def _allocate(self, state: dict, record: ContainerRecord) -> dict:
        host = record.config.host_config
        endpoints: dict[str, dict] = {}
        primary = ""
        for i, (doc, settings) in enumerate(self.desired_networks(record, state)):
            ip, prefixlen = self._allocate_ip(state, doc, settings.get("ipv4_address") or "", endpoints)
            if not primary:
                primary = doc["Id"]
            bridge = doc["Options"][BRIDGE_OPTION]
            endpoints[doc["Id"]] = {
                "network": doc["Id"], "ip": ip, "prefixlen": prefixlen,
                "gateway": doc["IPAM"]["Config"][0]["Gateway"],
                "mac": settings.get("mac_address") or mac_for(ip),
                "aliases": list(settings.get("aliases") or []),
                "endpoint_id": secrets.token_hex(32), "bridge": bridge, "ifname": f"eth{i}",
                "veth": "veth" + hashlib.sha256(f"{record.id}{doc['Id']}".encode()).hexdigest()[:7],
            }
        ports: list[dict] = []
        if endpoints:
            ports = [p.to_dict() for p in self._allocate_ports(state, record)]
        elif host.port_bindings and host.network_mode != "host":
            pass  # Docker ignores published ports without a network (none, container:...)
        return {"name": record.name, "hostname": record.config.hostname, "directory": record.directory,
                "primary": primary, "endpoints": endpoints, "ports": ports, "wired": False,
                "holder": holder_of(os.getpid()), "extra_hosts": list(host.extra_hosts),
                "dns": [list(host.dns), list(host.dns_search), list(host.dns_options)]}

    def _allocate_ip(self, state: dict, doc: dict, requested: str, taken_here: dict) -> tuple[str, int]:
        cfg = doc["IPAM"]["Config"][0]
        subnet = ipaddress.ip_network(cfg["Subnet"])
        used = {cfg["Gateway"]}
        for entry in state["containers"].values():
            used.update(ep["ip"] for ep in entry["endpoints"].values() if ep["network"] == doc["Id"])
        if requested:
            if doc["Name"] == DEFAULT_NETWORK:
                raise InvalidArgument("user specified IP address is supported on user defined networks only")
            try:
                address = ipaddress.ip_address(requested)
            except ValueError:
                raise InvalidArgument(f"invalid IPv4 address: {requested}") from None
            if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
                raise InvalidArgument(f"no configured subnet contains IP address {requested}")
            if requested in used:
                raise Conflict(f"Address already in use: {requested} on network {doc['Name']}")
            return requested, subnet.prefixlen
        # Docker hands out addresses in order; the first free one after the gateway.
        for address in subnet.hosts():
            if str(address) not in used:
                return str(address), subnet.prefixlen
        raise Conflict(f"no available IPv4 addresses on network {doc['Name']}")

    def _allocate_ports(self, state: dict, record: ContainerRecord) -> list[PublishedPort]:
        host = record.config.host_config
        bindings = {k: list(v) for k, v in host.port_bindings.items()}
        if host.publish_all_ports:
            for key in self._exposed(record):
                bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
        taken = [PublishedPort.from_dict(p) for e in state["containers"].values() for p in e.get("ports", [])]
        chosen: list[PublishedPort] = []
        for key, entries in sorted(bindings.items()):
            container_port, proto = split_port_key(key)
            for b in entries:
                host_ip = b.get("HostIp") or ""
                if host_ip in ("0.0.0.0",):
                    host_ip = ""
                if ":" in host_ip and proto not in ("tcp", "udp"):
                    raise UnsupportedError(f"publishing {proto} on an IPv6 host address is not supported")
                port = self._pick_port(proto, host_ip, str(b.get("HostPort") or ""), taken + chosen)
                chosen.append(PublishedPort(proto, host_ip, port, container_port))
        return chosen

    def _exposed(self, record: ContainerRecord) -> list[str]:
        host = record.config.host_config
        keys = [k if "/" in k else f"{k}/tcp" for k in host.expose]
        try:
            from ..image.service import ImageService

            image = ImageService(self.config, self.events).inspect(record.config.image)
            keys += list(((image.config.get("config") or {}).get("ExposedPorts") or {}).keys())
        except NotFound:
            pass
        keys += list(host.port_bindings)
        return sorted(set(keys))

    def _pick_port(self, proto: str, host_ip: str, spec: str, taken: list[PublishedPort]) -> int:
        def clash(port: int) -> PublishedPort | None:
            for t in taken:
                if t.proto == proto and t.host_port == port and (
                        not t.host_ip or not host_ip or t.host_ip == host_ip
                        or (":" in t.host_ip and ":" in host_ip and "::" in (t.host_ip, host_ip))):
                    return t
            return None

        shown = etcfiles_display(host_ip)
        if spec in ("", "0"):
            lo, hi = ephemeral_range()
            candidates = list(range(lo, hi + 1))
            start = random.randrange(len(candidates))
            candidates = candidates[start:] + candidates[:start]
        elif "-" in spec:
            lo_s, _sep, hi_s = spec.partition("-")
            candidates = list(range(int(lo_s), int(hi_s) + 1))
        else:
            port = int(spec)
            if clash(port):
                raise PortConflict(f"driver failed programming external connectivity: Bind for {shown}:{port} "
                                   "failed: port is already allocated")
            problem = bind_problem(proto, host_ip, port)
            if problem:
                family = "6" if ":" in host_ip else "4"
                raise PortConflict(f"driver failed programming external connectivity: Error starting userland "
                                   f"proxy: listen {proto}{family} {shown}:{port}: bind: {problem}")
            return port
        for port in candidates:
            if not clash(port) and not bind_problem(proto, host_ip, port):
                return port
        raise PortConflict(f"Bind for {shown}:{spec or '0'} failed: no free port")

    def wire(self, container_id: str, pid: int) -> None:
        """``Attachment.connect``: veths into the container's namespace, addresses, routes, rules."""
        from .netlink import Netlink

        with self._locked_state(strict=True) as state:
            entry = state["containers"].get(container_id)
            if entry is None:
                raise EngineError(f"container {container_id[:12]}: its network allocation was lost")
            problem = self.ip_forward_problem()
            if problem and entry["endpoints"]:
                state["ip_forward_problem"] = problem
            entry["holder"] = holder_of(pid)
            entry["wired"] = True
            if entry["endpoints"]:
                netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    with Netlink() as host_nl, Netlink.in_netns(netns) as ctr_nl:
                        ctr_nl.set_up(ctr_nl.index_of("lo"))
                        # The default route goes through the first network that leads out: an internal
                        # network has no route out (as Docker's: no gateway for its endpoints).
                        route_via = next((nid for nid in entry["endpoints"] if not is_internal(state, nid)), "")
                        for ep in entry["endpoints"].values():
                            self._wire_endpoint(state, host_nl, ctr_nl, netns, ep,
                                                default_route=ep["network"] == route_via)
                finally:
                    os.close(netns)
            self._sync(state)
            for network_id in entry["endpoints"]:
                self._event("connect", state["networks"][network_id], container=container_id)

    def _wire_endpoint(self, state: dict, host_nl, ctr_nl, netns: int, ep: dict, default_route: bool) -> None:
        doc = state["networks"][ep["network"]]
        bridge_index = self._ensure_bridge(host_nl, doc)
        try:
            host_nl.create_veth(ep["veth"], ep["ifname"], netns, ep["mac"], bridge_index)
        except OSError as exc:
            raise EngineError(f"cannot create veth pair {ep['veth']}: {exc.strerror}") from None
        host_index = host_nl.index_of(ep["veth"])
        # Hairpin: a container may reach itself through a published port.
        with contextlib.suppress(OSError), open(f"/sys/class/net/{ep['veth']}/brport/hairpin_mode", "w") as f:
            f.write("1")
        host_nl.set_up(host_index)
        index = ctr_nl.index_of(ep["ifname"])
        subnet = ipaddress.ip_network(f"{ep['ip']}/{ep['prefixlen']}", strict=False)
        ctr_nl.add_address(index, ep["ip"], ep["prefixlen"], str(subnet.broadcast_address))
        ctr_nl.set_up(index)
        if default_route:
            ctr_nl.add_default_route(ep["gateway"], index)

    def release(self, record: ContainerRecord) -> None:
        if not os.path.exists(self.state_path):
            return
        with self._locked_state() as state:
            if self._drop_entry(state, record.id) is not None:
                self._sync(state, cleanup_only=True)

    # --- views ---------------------------------------------------------------------------------------
    def settings_view(self, record: ContainerRecord, entry: dict | None = None, state: dict | None = None) -> dict:
        """inspect's NetworkSettings for a container (empty addresses when it is not running)."""
        from .ports import ports_view

        if state is None:
            state = self._read()
            self._ensure_default(state)
            entry = state["containers"].get(record.id)
            if entry is not None and not holder_alive(entry.get("holder")):
                entry = None
        networks: dict[str, dict] = {}
        try:
            desired = self.desired_networks(record, state)
        except NotFound:
            desired = []
        for doc, settings in desired:
            ep = (entry or {}).get("endpoints", {}).get(doc["Id"]) or {}
            networks[doc["Name"]] = {
                "IPAMConfig": ({"IPv4Address": settings["ipv4_address"]} if settings.get("ipv4_address") else None),
                "Links": None, "Aliases": list(settings.get("aliases") or []) or None,
                "MacAddress": ep.get("mac", ""), "NetworkID": doc["Id"], "EndpointID": ep.get("endpoint_id", ""),
                "Gateway": ep.get("gateway", ""), "IPAddress": ep.get("ip", ""),
                "IPPrefixLen": ep.get("prefixlen", 0), "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DriverOpts": None,
                "DNSNames": ([record.name, *ep.get("aliases", []), record.id[:12]]
                             if ep and doc["Name"] != DEFAULT_NETWORK else None),
            }
        mode = record.config.host_config.network_mode
        if mode in ("host", "none"):
            doc = self._predefined(mode)
            networks[mode] = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
                              "NetworkID": doc["Id"], "EndpointID": "", "Gateway": "", "IPAddress": "",
                              "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                              "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None}
        ports = [PublishedPort.from_dict(p) for p in (entry or {}).get("ports", [])]
        try:
            exposed = self._exposed(record) if (entry or record.config.host_config.port_bindings) else []
        except EngineError:
            exposed = []
        legacy = networks.get(DEFAULT_NETWORK, {})
        return {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_view(ports, exposed) if entry else {},
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": legacy.get("EndpointID", ""), "Gateway": legacy.get("Gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": legacy.get("IPAddress", ""),
            "IPPrefixLen": legacy.get("IPPrefixLen", 0), "IPv6Gateway": "", "MacAddress": legacy.get("MacAddress", ""),
            "Networks": networks,
        }

    def published_ports(self, record: ContainerRecord) -> list[PublishedPort]:
        state = self._read()
        entry = state["containers"].get(record.id)
        if entry is None or not holder_alive(entry.get("holder")):
            return []
        return [PublishedPort.from_dict(p) for p in entry.get("ports", [])]


# --- host helpers ------------------------------------------------------------------------------------

def etcfiles_display(host_ip: str) -> str:
    return f"[{host_ip}]" if ":" in host_ip else host_ip or "0.0.0.0"


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ports picked at random (``-p 80`` without a host port)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def bind_problem(proto: str, host_ip: str, port: int) -> str:
    """Whether a host process holds the port: try to bind it ("" when free)."""
    if proto not in ("tcp", "udp"):
        return ""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    v6 = ":" in host_ip
    with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, kind) as s:
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers do not count
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return "cannot assign requested address"
            return (exc.strerror or str(exc)).lower()
    return ""
