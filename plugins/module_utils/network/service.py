"""Bridge networks: the engine's network records, address and port allocations, and the kernel side.

State (``<root>/network/state.json``, rewritten atomically under ``<root>/network/.lock``)::

    networks    {id: Docker's network document (Name, Id, Driver, IPAM.Config, Options...)}
    containers  {container id: what one start of the container holds: addresses per network, published
                 ports, the process holding them ("holder": pid + start time), whether connect() ran}
    attach      {container id: {network name: {aliases, ipv4_address} | None}} — `network connect` and
                 `disconnect` on top of what the container was created with (None: disconnected)

Kernel objects follow the state and are rebuilt from it after every change (``_sync``): a bridge exists
while at least one container is wired to its network (made on first use, removed after the last one
leaves), the engine's nftables table holds exactly the rules of the wired containers (replaced in one
transaction; deleted when nothing is left). A container's veth pair dies with its network namespace; an
allocation whose holder is gone (a killed supervisor, a reboot) is dropped by ``reconcile``, which every
locked operation runs first. Addresses and ports are chosen under the lock, so concurrent starts never
share one.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import ipaddress
import os
import random
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import Conflict, EngineError, InvalidArgument, NetworkNotFound, NotFound, PortConflict, UnsupportedError
from ..fsutil import atomic_write_json, ensure_dir, locked, read_json
from ..timefmt import utc_now_rfc3339
from . import etcfiles
from .attachment import Attachment as _BaseAttachment
from .claims import CLAIMS_DIR
from .ports import PublishedPort, split_port_key

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..records.containers import ContainerRecord

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")
BRIDGE_OPTION = "com.docker.network.bridge.name"


def _alive(holder: list[int] | None) -> bool:
    from ..records.containers import process_start_time

    if not holder:
        return False
    pid, start = holder
    return pid > 0 and process_start_time(pid) == start


def _holder(pid: int) -> list[int]:
    from ..records.containers import process_start_time

    return [pid, process_start_time(pid)]


def _internal(state: dict, network_id: str) -> bool:
    """An --internal network: no route out, nothing forwarded beyond its bridge."""
    return bool(state["networks"].get(network_id, {}).get("Internal"))


def mac_for(ip: str) -> str:
    """Docker's MAC for an address: 02:42 followed by the IPv4 bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def _write_sysctl(path: str, value: str) -> str:
    """Write a /proc/sys value; "" on success, else why not (reported, never fatal on its own)."""
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return ""
        with open(path, "w") as f:
            f.write(value)
        return ""
    except OSError as exc:
        return f"cannot set {path[len('/proc/sys/'):].replace('/', '.')}={value}: {exc.strerror}"


class Attachment(_BaseAttachment):
    """What ``prepare`` reserved for one start of a container; ``connect`` wires it up."""

    def __init__(self, service: NetworkService, container_id: str, network_settings: dict) -> None:
        super().__init__(network_settings=network_settings)
        self.service = service
        self.container_id = container_id

    def connect(self, pid: int) -> None:
        _wait_for_own_netns(pid)
        self.service.wire(self.container_id, pid)


def _wait_for_own_netns(pid: int, timeout: float = 10.0) -> None:
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


class NetworkService:
    def __init__(self, config: EngineConfig, events: EventJournal | None = None) -> None:
        from ..config import network_names

        self.config = config
        self.events = events
        self.directory = os.path.join(config.root, "network")
        self.state_path = os.path.join(self.directory, "state.json")
        self.names = network_names(config)
        self.real_root = os.path.realpath(config.root)
        self.claims_dir = CLAIMS_DIR

    # --- state ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked_state(self, write: bool = True, strict: bool = False):
        """The state under the lock. ``strict`` (what allocates: prepare, wire, connect, network create, the
        create-time check) raises when the host-wide claims conflict; anything else (release, rm, views) goes
        on without touching the claims, so a conflict never makes a container unremovable."""
        ensure_dir(self.directory, 0o700)
        with locked(os.path.join(self.directory, ".lock")):
            state = self._read()
            before = repr(state)
            self._reconcile(state)
            trial = copy.deepcopy(state)
            try:
                self._claim(trial)
                state.update(trial)
            except Conflict:
                if strict:
                    raise
            yield state
            if write and repr(state) != before:
                atomic_write_json(self.state_path, state)

    def _read(self) -> dict:
        state = read_json(self.state_path, {}) or {}
        state.setdefault("networks", {})
        state.setdefault("containers", {})
        state.setdefault("attach", {})
        return state

    def _default_doc(self, subnet: str, network_id: str = "") -> dict:
        net = ipaddress.ip_network(subnet, strict=False) if subnet else None
        doc = self._network_doc(DEFAULT_NETWORK, str(net) if net else "",
                                str(net.network_address + 1) if net else "", self.names.bridge_name, {}, False)
        doc["Options"]["com.docker.network.bridge.default_bridge"] = "true"
        doc["Id"] = network_id or doc["Id"]
        return doc

    def _ensure_default(self, state: dict) -> None:
        """For read-only views: the default network as it is or will be (its subnet "" until first chosen)."""
        if not any(n["Name"] == DEFAULT_NETWORK for n in state["networks"].values()):
            doc = self._default_doc(self.names.bridge_subnet)
            state["networks"][doc["Id"]] = doc

    # --- host-wide claims (network/claims.py) --------------------------------------------------------
    def claim(self) -> None:
        """Make sure this root may use its bridge, table and subnets (create calls it: conflicts fail early)."""
        with self._locked_state(strict=True):
            pass

    def _config_file(self) -> str:
        from ..config import DEFAULT_CONFIG

        return self.config.config_path or DEFAULT_CONFIG

    def _claim(self, state: dict) -> None:
        """Create or adjust the default network, and claim host-wide every name and subnet this root uses.

        Another root's bridge name, table or subnet is a Conflict naming that root, never a silent steal; a
        subnet claimed for the first time must not overlap the host's addresses and routes either (one netlink
        dump, only then). All or nothing: on a conflict neither the claims nor the state change.
        """
        from .claims import HostClaims

        names, where = self.names, self._config_file()
        with HostClaims.open(self.claims_dir) as claims:
            owner = claims.bridge_owner(self.real_root, names.bridge_name)
            if owner:
                raise Conflict(f"bridge_name {names.bridge_name} is used by engine root {owner.root}; "
                               f"choose another in {where}")
            owner = claims.table_owner(self.real_root, names.nft_table)
            if owner:
                raise Conflict(f"nft_table {names.nft_table} is used by engine root {owner.root} "
                               f"(bridge {owner.bridge}); choose another in {where}")
            mine = claims.mine(self.real_root)
            host_nets: list[ipaddress.IPv4Network] | None = None

            def host_overlap(net: ipaddress.IPv4Network) -> ipaddress.IPv4Network | None:
                nonlocal host_nets
                if host_nets is None:
                    ours = {d["Options"].get(BRIDGE_OPTION, "") for d in state["networks"].values()}
                    host_nets = _host_routes((ours | {names.bridge_name}) - {""})
                return next((h for h in host_nets if h.overlaps(net)), None)

            self._claim_default(state, claims, mine, host_overlap)
            for doc in state["networks"].values():
                subnet = doc["IPAM"]["Config"][0]["Subnet"]
                if subnet in mine["subnets"]:
                    continue
                net = ipaddress.ip_network(subnet)
                default = doc["Name"] == DEFAULT_NETWORK
                what = f"bridge_subnet {subnet}" if default else f"subnet {subnet} of network {doc['Name']}"
                hint = f"; choose another in {where}" if default else ""
                taken = claims.subnet_owner(self.real_root, net)
                if taken:
                    raise Conflict(f"{what} is used by engine root {taken[0].root} (bridge {taken[0].bridge}){hint}")
                overlap = host_overlap(net)
                if overlap:
                    raise Conflict(f"{what} overlaps {overlap}, which the host already routes{hint}")
            mine["bridge"], mine["table"] = names.bridge_name, names.nft_table
            mine["subnets"] = {d["IPAM"]["Config"][0]["Subnet"]: d["Options"].get(BRIDGE_OPTION, "")
                               for d in state["networks"].values()}

    def _claim_default(self, state: dict, claims, mine: dict, host_overlap: Callable) -> None:
        """The default network with this root's bridge and subnet (configured, kept, or chosen now)."""
        doc = next((d for d in state["networks"].values() if d["Name"] == DEFAULT_NETWORK), None)
        wanted = str(ipaddress.ip_network(self.names.bridge_subnet, strict=False)) if self.names.bridge_subnet else ""
        if doc is not None:
            current = doc["IPAM"]["Config"][0]["Subnet"]
            in_use = any(doc["Id"] in e["endpoints"] for e in state["containers"].values())
            same = doc["Options"].get(BRIDGE_OPTION) == self.names.bridge_name and current and (
                current == wanted or (not wanted and (current in mine["subnets"] or not claims.subnet_owner(
                    self.real_root, ipaddress.ip_network(current)))))
            if same or in_use:
                return  # a changed config applies once no container uses the bridge
            del state["networks"][doc["Id"]]
        subnet = wanted or str(self._free_subnet(state, claims, host_overlap))
        new = self._default_doc(subnet, doc["Id"] if doc else "")
        if doc is not None:
            new["Created"] = doc["Created"]
        state["networks"][new["Id"]] = new

    def _free_subnet(self, state: dict, claims, host_overlap: Callable) -> ipaddress.IPv4Network:
        """The first /24 of network_pool that no network of this root, no other root and no host route uses."""
        existing = [ipaddress.ip_network(d["IPAM"]["Config"][0]["Subnet"]) for d in state["networks"].values()]
        existing += claims.others_subnets(self.real_root)
        pool = ipaddress.ip_network(self.config.network_pool, strict=False)
        for candidate in pool.subnets(new_prefix=max(24, pool.prefixlen)):
            if not any(candidate.overlaps(o) for o in existing) and not host_overlap(candidate):
                return candidate
        raise Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to "
                       "assign to the network")

    @staticmethod
    def _network_doc(name: str, subnet: str, gateway: str, bridge: str, labels: dict, internal: bool) -> dict:
        return {
            "Name": name, "Id": secrets.token_hex(32), "Created": utc_now_rfc3339(), "Scope": "local",
            "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": subnet, "Gateway": gateway}]},
            "Internal": internal, "Attachable": False, "Ingress": False,
            "Options": {BRIDGE_OPTION: bridge}, "Labels": dict(labels),
        }

    def _find(self, state: dict, ref: str) -> dict:
        nets = state["networks"]
        if ref in nets:
            return nets[ref]
        for doc in nets.values():
            if doc["Name"] == ref:
                return doc
        matches = [doc for nid, doc in nets.items() if ref and nid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NetworkNotFound(f"network {ref} not found")

    # --- reconciliation ------------------------------------------------------------------------------
    def _reconcile(self, state: dict) -> bool:
        """Drop allocations whose holder died; forget `connect`s of removed containers. True if any."""
        stale = [cid for cid, entry in state["containers"].items() if not _alive(entry.get("holder"))]
        for cid in stale:
            self._drop_entry(state, cid)
        containers_dir = self.config.paths.containers
        for cid in [c for c in state["attach"] if not os.path.isdir(os.path.join(containers_dir, c))]:
            del state["attach"][cid]
        if stale:
            self._sync(state)
        return bool(stale)

    def reconcile(self) -> None:
        """Release whatever crashed supervisors left (the runtime's reconciliation calls this too)."""
        if not os.path.exists(self.state_path):
            return
        with self._locked_state():
            pass

    def _drop_entry(self, state: dict, cid: str) -> dict | None:
        entry = state["containers"].pop(cid, None)
        if entry is None:
            return None
        # The container's end lives in its namespace; the host end goes with it, unless the namespace is
        # still held (a process that survived, or `rm -f` racing the kernel): delete it explicitly.
        names = [ep["veth"] for ep in entry["endpoints"].values() if ep.get("veth")]
        if names and entry.get("wired"):
            from .netlink import Netlink

            with Netlink() as nl:
                for name in names:
                    with contextlib.suppress(OSError):
                        index = nl.index_of(name)
                        if index:
                            nl.delete_link(index)
        self._refresh_peers(state, {ep["network"] for ep in entry["endpoints"].values()})
        # The one place an allocation ends (release, or reconciliation after the holder died): Docker's event.
        if entry.get("wired"):
            for network_id in entry["endpoints"]:
                if network_id in state["networks"]:
                    self._event("disconnect", state["networks"][network_id], container=cid)
        return entry

    # --- kernel sync ---------------------------------------------------------------------------------
    def _sync(self, state: dict) -> None:
        """Make bridges and the nftables table match the wired containers."""
        from . import nftables

        wired = [e for e in state["containers"].values() if e.get("wired")]
        used = {ep["network"] for e in wired for ep in e["endpoints"].values()}
        bridges: list[nftables.BridgeRules] = []
        stale_bridges = []
        for nid, doc in state["networks"].items():
            bridge = doc["Options"].get(BRIDGE_OPTION)
            if not bridge:
                continue
            if nid in used:
                cfg = doc["IPAM"]["Config"][0]
                internal = bool(doc.get("Internal"))
                bridges.append(nftables.BridgeRules(bridge, cfg["Subnet"], masquerade=not internal,
                                                    gateway=cfg.get("Gateway", ""), internal=internal))
            elif not _bridge_ports(bridge):
                # Not while ports remain: another engine root configured with the same bridge name uses it.
                stale_bridges.append(bridge)
        rules = []
        for e in wired:
            primary = e["endpoints"].get(e.get("primary", ""))
            if not primary:
                continue
            for p in e.get("ports", []):
                if ":" in p["host_ip"]:
                    continue  # IPv6 host addresses: the monitor's userland relay (network/relay.py)
                rules.append(nftables.PortRule(p["proto"], p["host_ip"], p["host_port"], primary["ip"],
                                               p["container_port"]))
        nftables.Ruleset(self.names.nft_table, bridges, rules).apply()
        if stale_bridges:
            from .netlink import Netlink

            with Netlink() as nl:
                for name in stale_bridges:
                    with contextlib.suppress(OSError):
                        index = nl.index_of(name)
                        if index:
                            nl.delete_link(index)

    def _ensure_bridge(self, nl, doc: dict) -> int:
        name = doc["Options"][BRIDGE_OPTION]
        index = nl.index_of(name)
        if not index:
            try:
                nl.create_bridge(name)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise EngineError(f"cannot create bridge {name}: {exc.strerror}") from None
            index = nl.index_of(name)
        cfg = doc["IPAM"]["Config"][0]
        subnet = ipaddress.ip_network(cfg["Subnet"])
        nl.add_address(index, cfg["Gateway"], subnet.prefixlen, str(subnet.broadcast_address))
        nl.set_up(index)
        # Published ports answer at 127.0.0.1: DNATed loopback traffic may be routed to the bridge.
        _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
        return index

    def ip_forward_problem(self) -> str:
        """Why net.ipv4.ip_forward cannot be enabled ("" when it is on): `info` reports it."""
        return _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")

    # --- lifecycle: prepare / wire / release ---------------------------------------------------------
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

    def prepare(self, record: ContainerRecord) -> Attachment:
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
        attachment = Attachment(self, record.id, self.settings_view(record, entry, state))
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
                "holder": _holder(os.getpid()), "extra_hosts": list(host.extra_hosts),
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
            lo, hi = _ephemeral_range()
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
            problem = _bind_problem(proto, host_ip, port)
            if problem:
                family = "6" if ":" in host_ip else "4"
                raise PortConflict(f"driver failed programming external connectivity: Error starting userland "
                                   f"proxy: listen {proto}{family} {shown}:{port}: bind: {problem}")
            return port
        for port in candidates:
            if not clash(port) and not _bind_problem(proto, host_ip, port):
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
            entry["holder"] = _holder(pid)
            entry["wired"] = True
            if entry["endpoints"]:
                netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    with Netlink() as host_nl, Netlink.in_netns(netns) as ctr_nl:
                        ctr_nl.set_up(ctr_nl.index_of("lo"))
                        # The default route goes through the first network that leads out: an internal
                        # network has no route out (as Docker's: no gateway for its endpoints).
                        route_via = next((nid for nid in entry["endpoints"] if not _internal(state, nid)), "")
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
                self._sync(state)

    # --- /etc files ----------------------------------------------------------------------------------
    def _write_etc(self, state: dict, cid: str) -> None:
        entry = state["containers"][cid]
        gateway = ""
        if entry["primary"]:
            gateway = entry["endpoints"][entry["primary"]]["gateway"]
        extra = []
        for item in entry["extra_hosts"]:
            name, ip = etcfiles.parse_extra_host(item)
            extra.append((name, gateway if ip == "host-gateway" else ip))
        own = [(ep["ip"], entry["hostname"]) for ep in entry["endpoints"].values()][:1]
        peers = []
        for nid in entry["endpoints"]:
            if state["networks"][nid]["Name"] == DEFAULT_NETWORK:
                continue  # as Docker: no name resolution on the default bridge
            for other_id, other in state["containers"].items():
                ep = other["endpoints"].get(nid)
                if other_id == cid or ep is None:
                    continue
                names = [other["name"], *ep["aliases"], other_id[:12]]
                peers.append((ep["ip"], list(dict.fromkeys(n for n in names if n))))
        own_aliases = []
        for ep in entry["endpoints"].values():
            own_aliases += ep["aliases"]
        if own and (own_aliases or entry["name"]):
            own = [(own[0][0], " ".join(dict.fromkeys([entry["hostname"], *own_aliases])))]
        directory = entry["directory"]
        etcfiles.write_in_place(os.path.join(directory, "hosts"), etcfiles.hosts_content(own, extra, peers))
        dns, search, options = entry["dns"]
        host_resolv = etcfiles.read_text("/etc/resolv.conf")
        etcfiles.write_in_place(os.path.join(directory, "resolv.conf"),
                                etcfiles.resolv_conf_content(host_resolv, dns, search, options))

    def _refresh_peers(self, state: dict, networks: set[str], skip: str = "") -> None:
        user_nets = {n for n in networks if n in state["networks"]
                     and state["networks"][n]["Name"] != DEFAULT_NETWORK}
        if not user_nets:
            return
        for cid, entry in state["containers"].items():
            if cid != skip and user_nets & set(entry["endpoints"]):
                self._write_etc(state, cid)

    # --- views ---------------------------------------------------------------------------------------
    def settings_view(self, record: ContainerRecord, entry: dict | None = None, state: dict | None = None) -> dict:
        """inspect's NetworkSettings for a container (empty addresses when it is not running)."""
        from .ports import ports_view

        if state is None:
            state = self._read()
            self._ensure_default(state)
            entry = state["containers"].get(record.id)
            if entry is not None and not _alive(entry.get("holder")):
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
        if entry is None or not _alive(entry.get("holder")):
            return []
        return [PublishedPort.from_dict(p) for p in entry.get("ports", [])]

    def _predefined(self, name: str) -> dict:
        nid = hashlib.sha256(f"{self.config.root}:{name}".encode()).hexdigest()
        return {"Name": name, "Id": nid, "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": name,
                "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
                "Internal": False, "Attachable": False, "Ingress": False, "Options": {}, "Labels": {}}

    def check_network(self, ref: str) -> None:
        """Refuse a mode naming no network (read-only: no lock, no state written)."""
        if ref == DEFAULT_NETWORK:
            return
        self._find(self._read(), ref)

    # --- network verbs -------------------------------------------------------------------------------
    def create(self, name: str, subnet: str = "", gateway: str = "", labels: dict | None = None,
               internal: bool = False, driver: str = "bridge") -> dict:
        if driver != "bridge":
            raise UnsupportedError(f'network driver "{driver}" is not supported (only bridge)')
        if not name or not all(c.isalnum() or c in "_.-" for c in name):
            raise InvalidArgument(f"invalid network name: {name!r}")
        if name in PREDEFINED:
            raise Conflict(f"network with name {name} already exists")
        with self._locked_state(strict=True) as state:
            if any(doc["Name"] == name for doc in state["networks"].values()):
                raise Conflict(f"network with name {name} already exists")
            from .claims import HostClaims

            with HostClaims.open(self.claims_dir) as claims:
                net = self._choose_subnet(state, subnet, claims)
                if gateway:
                    try:
                        gw = ipaddress.ip_address(gateway)
                    except ValueError:
                        raise InvalidArgument(f"invalid gateway address: {gateway}") from None
                    if gw not in net or gw in (net.network_address, net.broadcast_address):
                        raise InvalidArgument(f"gateway {gateway} is not in subnet {net}")
                else:
                    gw = net.network_address + 1
                doc = self._network_doc(name, str(net), str(gw), "", labels or {}, internal)
                doc["Options"][BRIDGE_OPTION] = "br-" + doc["Id"][:12]
                state["networks"][doc["Id"]] = doc
                claims.mine(self.real_root)["subnets"][str(net)] = doc["Options"][BRIDGE_OPTION]
        self._event("create", doc)
        return doc

    def _choose_subnet(self, state: dict, subnet: str, claims) -> ipaddress.IPv4Network:
        existing = [ipaddress.ip_network(d["IPAM"]["Config"][0]["Subnet"]) for d in state["networks"].values()]
        if subnet:
            try:
                net = ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                raise InvalidArgument(f"invalid subnet {subnet}") from None
            if net.version != 4:
                raise UnsupportedError("IPv6 networks are not supported yet")
            if net.prefixlen > 30:
                raise InvalidArgument(f"subnet {subnet} is too small")
            for other in existing:
                if net.overlaps(other):
                    raise Conflict(f"Pool overlaps with other one on this address space: {net} and {other}")
            taken = claims.subnet_owner(self.real_root, net)
            if taken:
                raise Conflict(f"Pool overlaps with other one on this address space: {net} and {taken[1]} "
                               f"(engine root {taken[0].root}, bridge {taken[0].bridge})")
            return net
        existing += claims.others_subnets(self.real_root)
        existing += _host_routes({d["Options"].get(BRIDGE_OPTION, "") for d in state["networks"].values()} - {""})
        pool = ipaddress.ip_network(self.config.network_pool, strict=False)
        for candidate in pool.subnets(new_prefix=max(24, pool.prefixlen)):
            if not any(candidate.overlaps(o) for o in existing):
                return candidate
        raise Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to "
                       "assign to the network")

    def list(self) -> list[dict]:
        with self._locked_state() as state:
            docs = [dict(d) for d in state["networks"].values()]
        docs += [self._predefined("host"), self._predefined("none")]
        return sorted(docs, key=lambda d: d["Name"])

    def inspect(self, ref: str) -> dict:
        if ref in ("host", "none"):
            return {**self._predefined(ref), "Containers": {}}
        with self._locked_state() as state:
            try:
                doc = dict(self._find(state, ref))
            except NetworkNotFound:
                for name in ("host", "none"):
                    if self._predefined(name)["Id"].startswith(ref):
                        return {**self._predefined(name), "Containers": {}}
                raise
            members = {}
            for cid, entry in state["containers"].items():
                ep = entry["endpoints"].get(doc["Id"])
                if ep:
                    members[cid] = {"Name": entry["name"], "EndpointID": ep["endpoint_id"],
                                    "MacAddress": ep["mac"], "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}",
                                    "IPv6Address": ""}
        doc["Containers"] = members
        return doc

    def remove(self, ref: str) -> dict:
        if ref in PREDEFINED:
            raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
        with self._locked_state() as state:
            doc = self._find(state, ref)
            if doc["Name"] == DEFAULT_NETWORK:
                raise Conflict(f"{doc['Name']} is a pre-defined network and cannot be removed")
            users = [e["name"] for e in state["containers"].values() if doc["Id"] in e["endpoints"]]
            users += self._configured_users(doc, state)
            if users:
                raise Conflict(f"error while removing network: network {doc['Name']} id {doc['Id']} has active "
                               f"endpoints ({', '.join(sorted(set(users)))})")
            del state["networks"][doc["Id"]]
            for attach in state["attach"].values():
                attach.pop(doc["Name"], None)
            from .claims import HostClaims

            with HostClaims.open(self.claims_dir) as claims:
                claims.mine(self.real_root)["subnets"].pop(doc["IPAM"]["Config"][0]["Subnet"], None)
        self._event("destroy", doc)
        return doc

    def _configured_users(self, doc: dict, state: dict) -> list[str]:
        """Running containers (per the container store) configured for this network and not disconnected."""
        from ..records.containers import ContainerStore

        users = []
        for record in ContainerStore(self.config.paths.containers).list():
            if record.state.status == "running":
                host = record.config.host_config
                if state["attach"].get(record.id, {}).get(doc["Name"], {}) is None:
                    continue  # `network disconnect` took it off this network
                if doc["Name"] in (host.network_mode, *host.networks) or host.network_mode == doc["Id"]:
                    users.append(record.name)
        return users

    def prune(self, keep: Callable[[dict], bool] | None = None) -> list[str]:
        """Remove unused user-defined networks; ``keep(doc)`` False spares one (the prune filters)."""
        removed = []
        for doc in self.list():
            if doc["Name"] in PREDEFINED or (keep is not None and not keep(doc)):
                continue
            with contextlib.suppress(Conflict, NetworkNotFound):
                self.remove(doc["Id"])
                removed.append(doc["Name"])
        return removed

    def connect(self, network: str, record: ContainerRecord, aliases: list[str] | None = None,
                ipv4_address: str = "") -> None:
        """`network connect`: remembered for the container's next starts, wired at once if it runs."""
        from .netlink import Netlink

        with self._locked_state(strict=True) as state:
            doc = self._find(state, network)
            if record.config.host_config.network_mode in ("host", "none") or \
                    record.config.host_config.network_mode.startswith("container:"):
                raise Conflict("container cannot be disconnected from host network or connected to host network"
                               if record.config.host_config.network_mode == "host" else
                               f"container sharing network namespace with another container or with host cannot "
                               f"be connected to any other network ({record.config.host_config.network_mode})")
            entry = state["containers"].get(record.id)
            if entry and doc["Id"] in entry["endpoints"]:
                raise Conflict(f"endpoint with name {record.name} already exists in network {doc['Name']}")
            settings = {"aliases": list(aliases or []), "ipv4_address": ipv4_address}
            state["attach"].setdefault(record.id, {})[doc["Name"]] = settings
            if entry is None or not entry.get("wired"):
                return
            pid = entry["holder"][0]
            ip, prefixlen = self._allocate_ip(state, doc, ipv4_address, entry["endpoints"])
            ep = {"network": doc["Id"], "ip": ip, "prefixlen": prefixlen,
                  "gateway": doc["IPAM"]["Config"][0]["Gateway"], "mac": mac_for(ip),
                  "aliases": list(aliases or []), "endpoint_id": secrets.token_hex(32),
                  "bridge": doc["Options"][BRIDGE_OPTION], "ifname": f"eth{len(entry['endpoints'])}",
                  "veth": "veth" + hashlib.sha256(f"{record.id}{doc['Id']}".encode()).hexdigest()[:7]}
            netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with Netlink() as host_nl, Netlink.in_netns(netns) as ctr_nl:
                    # The first network that leads out brings the default route (internal ones have none).
                    routed = any(not _internal(state, nid) for nid in entry["endpoints"])
                    self._wire_endpoint(state, host_nl, ctr_nl, netns, ep,
                                        default_route=not routed and not _internal(state, doc["Id"]))
            finally:
                os.close(netns)
            entry["endpoints"][doc["Id"]] = ep
            entry["primary"] = entry["primary"] or doc["Id"]
            self._write_etc(state, record.id)
            self._refresh_peers(state, {doc["Id"]}, skip=record.id)
            self._sync(state)
            self._event("connect", doc, container=record.id)

    def disconnect(self, network: str, record: ContainerRecord, force: bool = False) -> None:
        from .netlink import Netlink

        with self._locked_state() as state:
            doc = self._find(state, network)
            entry = state["containers"].get(record.id)
            attached = entry is not None and doc["Id"] in entry["endpoints"]
            configured = any(d["Id"] == doc["Id"] for d, _settings in self.desired_networks(record, state))
            if not attached and not configured and not force:
                raise Conflict(f"container {record.id} is not connected to network {doc['Name']}")
            state["attach"].setdefault(record.id, {})[doc["Name"]] = None
            if not attached:
                return
            ep = entry["endpoints"].pop(doc["Id"])
            if entry["primary"] == doc["Id"]:
                entry["primary"] = next(iter(entry["endpoints"]), "")
                entry["ports"] = [] if not entry["primary"] else entry["ports"]
            with Netlink() as nl, contextlib.suppress(OSError):
                index = nl.index_of(ep["veth"])
                if index:
                    nl.delete_link(index)
            self._write_etc(state, record.id)
            self._refresh_peers(state, {doc["Id"]})
            self._sync(state)
            self._event("disconnect", doc, container=record.id)

    def _event(self, action: str, doc: dict, **extra: str) -> None:
        """Docker's network events; connect/disconnect name the container too."""
        if self.events is not None:
            self.events.record("network", action, doc["Id"], {**extra, "name": doc["Name"], "type": doc["Driver"]})


# --- host helpers ------------------------------------------------------------------------------------

def etcfiles_display(host_ip: str) -> str:
    return f"[{host_ip}]" if ":" in host_ip else host_ip or "0.0.0.0"


def _bridge_ports(bridge: str) -> list[str]:
    try:
        return os.listdir(f"/sys/class/net/{bridge}/brif")
    except OSError:
        return []


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _bind_problem(proto: str, host_ip: str, port: int) -> str:
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


def _host_routes(exclude_bridges: set[str]) -> list[ipaddress.IPv4Network]:
    """The host's IPv4 addresses and routes (pyroute2), except on this root's own bridges."""
    from .claims import host_networks

    return host_networks(exclude_bridges)
