"""The network verbs (create, ls, inspect, rm, prune, connect, disconnect) and the choice of a container's
networking by its mode. What they build on: ``state.py`` (state file, claims, kernel sync) and ``bridge.py``
(the bridge driver).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import Conflict, InvalidArgument, NetworkNotFound, UnsupportedError
from .bridge import BridgeNetworking
from .state import BRIDGE_OPTION, DEFAULT_NETWORK, PREDEFINED, delete_links, is_internal, mac_for

if TYPE_CHECKING:
    from ..records.containers import ContainerRecord


class NetworkService(BridgeNetworking):
    """The engine's bridge networks: the verbs here, a container's lifecycle in ``BridgeNetworking``."""

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
        existing += self.host_routes({d["Options"].get(BRIDGE_OPTION, "") for d in state["networks"].values()} - {""})
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
            bridge = doc["Options"].get(BRIDGE_OPTION)
            if bridge:  # kept idle by the monitor for back-to-back runs (state.py's tidy): ours to remove now
                delete_links([bridge])
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
                    routed = any(not is_internal(state, nid) for nid in entry["endpoints"])
                    self._wire_endpoint(state, host_nl, ctr_nl, netns, ep,
                                        default_route=not routed and not is_internal(state, doc["Id"]))
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
