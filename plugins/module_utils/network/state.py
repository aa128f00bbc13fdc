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
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import Conflict, EngineError, NetworkNotFound
from ..fsutil import atomic_write_json, ensure_dir, locked, read_json
from ..timefmt import utc_now_rfc3339
from . import etcfiles
from .claims import CLAIMS_DIR

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")
BRIDGE_OPTION = "com.docker.network.bridge.name"


def holder_alive(holder: list[int] | None) -> bool:
    """Whether the process of an allocation's ``holder`` (pid + start time) still runs."""
    from ..records.containers import process_start_time

    if not holder:
        return False
    pid, start = holder
    return pid > 0 and process_start_time(pid) == start


def holder_of(pid: int) -> list[int]:
    """The ``holder`` of an allocation: the pid and its start time (a reused pid is not the holder)."""
    from ..records.containers import process_start_time

    return [pid, process_start_time(pid)]


def is_internal(state: dict, network_id: str) -> bool:
    """An --internal network: no route out, nothing forwarded beyond its bridge."""
    return bool(state["networks"].get(network_id, {}).get("Internal"))


def mac_for(ip: str) -> str:
    """Docker's MAC for an address: 02:42 followed by the IPv4 bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def write_sysctl(path: str, value: str) -> str:
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


def bridge_ports(bridge: str) -> list[str]:
    """The interfaces enslaved to a bridge (none when it does not exist)."""
    try:
        return os.listdir(f"/sys/class/net/{bridge}/brif")
    except OSError:
        return []


class NetworkState:
    """The state file under its lock, the host-wide claims, reconciliation and the kernel sync.

    The bridge driver (``network/bridge.py``) and the network verbs (``network/service.py``) build on it.
    """

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
                    host_nets = self.host_routes((ours | {names.bridge_name}) - {""})
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
        stale = [cid for cid, entry in state["containers"].items() if not holder_alive(entry.get("holder"))]
        for cid in stale:
            self._drop_entry(state, cid)
        containers_dir = self.config.paths.containers
        for cid in [c for c in state["attach"] if not os.path.isdir(os.path.join(containers_dir, c))]:
            del state["attach"][cid]
        if stale:
            self._sync(state, cleanup_only=True)
        return bool(stale)

    def reconcile(self) -> None:
        """Release whatever crashed supervisors left (the runtime's reconciliation calls this too)."""
        if not os.path.exists(self.state_path):
            return
        with self._locked_state():
            pass

    def _resync(self, keep_idle_bridges: bool = False) -> None:
        with self._locked_state() as state:
            self._sync(state, keep_idle_bridges=keep_idle_bridges)

    def tidy(self) -> None:
        """Remove the bridges no container uses any more (the monitor, when it leaves: it keeps them between
        back-to-back runs, where deleting and recreating one cost ~40 ms per run). Those it kept are removed
        even when the root went away meanwhile (a test's teardown, ``rm -rf``): nothing else knows them."""
        if os.path.exists(self.state_path):
            self._resync()
        orphans = [b for b in sorted(_kept_idle) if not bridge_ports(b) and os.path.isdir(f"/sys/class/net/{b}")]
        _kept_idle.clear()
        if orphans and not os.path.exists(self.state_path):
            delete_links(orphans)

    def _drop_entry(self, state: dict, cid: str) -> dict | None:
        entry = state["containers"].pop(cid, None)
        if entry is None:
            return None
        # The container's end lives in its namespace; the host end goes with it, unless the namespace is
        # still held (a process that survived, or `rm -f` racing the kernel): delete it explicitly.
        names = [ep["veth"] for ep in entry["endpoints"].values() if ep.get("veth")]
        if names and entry.get("wired"):
            delete_links(names)
        self._refresh_peers(state, {ep["network"] for ep in entry["endpoints"].values()})
        # The one place an allocation ends (release, or reconciliation after the holder died): Docker's event.
        if entry.get("wired"):
            for network_id in entry["endpoints"]:
                if network_id in state["networks"]:
                    self._event("disconnect", state["networks"][network_id], container=cid)
        return entry

    # --- kernel sync ---------------------------------------------------------------------------------
    def _sync(self, state: dict, cleanup_only: bool = False, keep_idle_bridges: bool = False) -> None:
        """Make bridges and the nftables table match the wired containers. ``cleanup_only`` (a release): may be
        queued on a ``deferred_cleanup``, to run against the state as it is then. ``keep_idle_bridges``: leave
        the bridges of networks no container uses (``tidy`` removes them)."""
        if cleanup_only and _pending is not None:
            _pending.resyncs.append(self._resync)
            return
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
            elif keep_idle_bridges:
                _kept_idle.add(bridge)
            elif not bridge_ports(bridge):
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
            delete_links(stale_bridges)

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
        write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
        return index

    def ip_forward_problem(self) -> str:
        """Why net.ipv4.ip_forward cannot be enabled ("" when it is on): `info` reports it."""
        return write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")

    def host_routes(self, exclude_bridges: set[str]) -> list[ipaddress.IPv4Network]:
        """The host's IPv4 addresses and routes (pyroute2), except on this root's own bridges."""
        from .claims import host_networks

        return host_networks(exclude_bridges)

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

    def _predefined(self, name: str) -> dict:
        nid = hashlib.sha256(f"{self.config.root}:{name}".encode()).hexdigest()
        return {"Name": name, "Id": nid, "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": name,
                "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
                "Internal": False, "Attachable": False, "Ingress": False, "Options": {}, "Labels": {}}

    def _event(self, action: str, doc: dict, **extra: str) -> None:
        """Docker's network events; connect/disconnect name the container too."""
        if self.events is not None:
            self.events.record("network", action, doc["Id"], {**extra, "name": doc["Name"], "type": doc["Driver"]})


class PendingCleanup:
    """Kernel work that only cleans up after a container that exited, queued by ``deferred_cleanup`` and done
    after its caller has its answer. Deleting a veth or a bridge waits for the kernel's RCU grace periods
    (~25 ms each here) and one nftables transaction another ~10 ms: the exit of a bridged `run --rm` went from
    ~50 ms of that to ~1. Safe to delay: the veth's name belongs to that container, the kernel removes the
    pair with its namespace anyway, and a resync renders the ruleset and the unused bridges from the state
    file under its lock, whatever was allocated in between."""

    def __init__(self) -> None:
        self.links: list[str] = []
        self.resyncs: list = []

    def run(self) -> None:
        """Do it now (outside any ``deferred_cleanup``: queued work must not queue itself again)."""
        global _pending
        links, self.links = self.links, []
        resyncs, self.resyncs = self.resyncs, []
        previous, _pending = _pending, None
        try:
            if links:
                delete_links(links)
            for resync in resyncs:
                try:
                    resync(keep_idle_bridges=True)
                except Exception:  # the next sync of this root's networks redoes it; say why it failed
                    import traceback

                    traceback.print_exc()
        finally:
            _pending = previous


_pending: PendingCleanup | None = None
_kept_idle: set[str] = set()  # bridges this process left idle for the next run (``tidy`` removes them)


@contextlib.contextmanager
def deferred_cleanup():
    """Within this block, link deletions and the ruleset sync of a release are queued on the PendingCleanup
    it yields (the monitor runs it once the exit is answered)."""
    global _pending
    previous, _pending = _pending, PendingCleanup()
    try:
        yield _pending
    finally:
        _pending = previous


def delete_links(names) -> None:
    """Delete these links if they exist; one that is already gone (or going) is no error."""
    if _pending is not None:
        _pending.links.extend(names)
        return
    from .netlink import Netlink

    with Netlink() as nl:
        for name in names:
            with contextlib.suppress(OSError):
                index = nl.index_of(name)
                if index:
                    nl.delete_link(index)
