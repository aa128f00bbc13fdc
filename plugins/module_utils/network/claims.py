"""Host-wide claims: which engine root uses which bridge name, nftables table and subnet.

Several engine roots may live on one host; each has its own state, so they coordinate through one file,
``/run/pycontainer/subnets.json``, rewritten atomically under ``subnets.lock`` (flock). ``/run`` is right: the
bridges die with a reboot too, and a root re-claims what its state persisted at its next use. Claims of a root
whose directory is gone are dropped. Shape::

    {"roots": {"<real path of the root>": {"bridge": "pycontainer0", "table": "pycontainer",
                                           "subnets": {"10.99.0.0/16": "pycontainer0", ...}}}}

(each subnet maps to the bridge that carries it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..fsutil import atomic_write_json, ensure_dir, locked, read_json

CLAIMS_DIR = "/run/pycontainer"


@dataclass(frozen=True)
class Owner:
    """Another root's claim on something this root wants."""

    root: str
    bridge: str


class HostClaims:
    """The claims file, read under its lock (``HostClaims.open``); ``save`` writes it back if changed."""

    def __init__(self, data: dict, directory: str) -> None:
        self.data = data
        self.directory = directory
        self.before = repr(data)

    @classmethod
    @contextlib.contextmanager
    def open(cls, directory: str = CLAIMS_DIR) -> Iterator[HostClaims]:
        """Hold the host-wide lock; the claims are saved when the block ends without an exception."""
        ensure_dir(directory, 0o755)
        with locked(os.path.join(directory, "subnets.lock")):
            data = read_json(os.path.join(directory, "subnets.json"), {}) or {}
            roots = data.get("roots") if isinstance(data.get("roots"), dict) else {}
            # A root that no longer exists holds nothing.
            data = {"roots": {r: c for r, c in roots.items() if isinstance(c, dict) and os.path.isdir(r)}}
            claims = cls(data, directory)
            yield claims
            claims.save()

    def save(self) -> None:
        if repr(self.data) != self.before:
            atomic_write_json(os.path.join(self.directory, "subnets.json"), self.data)
            self.before = repr(self.data)

    def _others(self, root: str) -> Iterator[tuple[str, dict]]:
        for other, claim in self.data["roots"].items():
            if other != root:
                yield other, claim

    def mine(self, root: str) -> dict:
        claim = self.data["roots"].setdefault(root, {})
        claim.setdefault("subnets", {})
        return claim

    def bridge_owner(self, root: str, name: str) -> Owner | None:
        for other, claim in self._others(root):
            if claim.get("bridge") == name or name in (claim.get("subnets") or {}).values():
                return Owner(other, name)
        return None

    def table_owner(self, root: str, table: str) -> Owner | None:
        for other, claim in self._others(root):
            if claim.get("table") == table:
                return Owner(other, claim.get("bridge", ""))
        return None

    def subnet_owner(self, root: str, subnet: ipaddress.IPv4Network) -> tuple[Owner, str] | None:
        """(owner, its overlapping subnet) when another root claimed a subnet that overlaps ``subnet``."""
        for other, claim in self._others(root):
            for cidr, bridge in (claim.get("subnets") or {}).items():
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_network(cidr).overlaps(subnet):
                        return Owner(other, bridge), cidr
        return None

    def others_subnets(self, root: str) -> list[ipaddress.IPv4Network]:
        nets = []
        for _other, claim in self._others(root):
            for cidr in claim.get("subnets") or {}:
                with contextlib.suppress(ValueError):
                    nets.append(ipaddress.ip_network(cidr))
        return nets


def configured_conflict(root: str, settings: dict, directory: str | None = None) -> str | None:
    """What another root already claims among the bridge name, nftables table and subnet a config file sets
    (``settings``: the file's normalized keys), as an error text; None when nothing collides. The config-time
    face of the check every allocation repeats under the lock (values left to their defaults derive from the
    root's path and are checked there)."""
    root = os.path.realpath(root)
    bridge, table, subnet = (settings.get(k) or "" for k in ("bridge_name", "nft_table", "bridge_subnet"))
    if not (bridge or table or subnet):
        return None
    try:
        with HostClaims.open(directory or CLAIMS_DIR) as claims:
            return _conflict(claims, root, bridge, table, subnet)
    except PermissionError:
        return None  # not root (a config written for later): create checks again under the lock


def _conflict(claims: HostClaims, root: str, bridge: str, table: str, subnet: str) -> str | None:
    owner = claims.bridge_owner(root, bridge) if bridge else None
    if owner:
        return f"bridge_name {bridge} is used by engine root {owner.root}"
    owner = claims.table_owner(root, table) if table else None
    if owner:
        return f"nft_table {table} is used by engine root {owner.root} (bridge {owner.bridge})"
    taken = claims.subnet_owner(root, ipaddress.ip_network(subnet, strict=False)) if subnet else None
    if taken:
        return f"bridge_subnet {subnet} is used by engine root {taken[0].root} (bridge {taken[0].bridge})"
    return None


def host_networks(exclude_bridges: set[str]) -> list[ipaddress.IPv4Network]:
    """Subnets of the host's addresses and routes (pyroute2), except those on ``exclude_bridges`` (ours)."""
    from .netlink import Netlink

    with Netlink() as nl:
        skip = {nl.index_of(name) for name in exclude_bridges} - {0}
        found = nl.ipv4_networks()
    nets = []
    for cidr, index in found:
        if index not in skip:
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(cidr, strict=False))
    return nets
