"""The engine's nftables table, written through libnftables (cffi, out-of-line ABI mode) as JSON commands.

The whole table is rendered from the network state and rewritten in one transaction (``add`` table and
chains, ``flush table``, the rules, in one batch: the kernel applies all of it or none), so the rules always
match the state file, a crashed engine leaves nothing half-written, and other tables (Docker's, firewalld's,
the admin's) are never touched. libnftables 1.0.6 parses JSON input only when the context's output flags
include JSON (as ``nft -j`` sets them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError, MissingLibrary

NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_JSON = 1 << 4

_lib: Any = None
_ffi: Any = None


def _nft() -> tuple[Any, Any]:
    global _lib, _ffi
    if _lib is None:
        from ._nft_ffi import BACKEND_ERROR, ffi  # imports anywhere: ffi is None without cffi's backend

        if ffi is None:
            raise MissingLibrary(f"port publishing and bridge networks need cffi's backend: {BACKEND_ERROR}",
                                 library="cffi", purpose="port publishing and bridge networks")
        try:
            _lib = ffi.dlopen("libnftables.so.1")
        except OSError as exc:
            raise EngineError(f"port publishing and bridge networks need libnftables (Debian: libnftables1) "
                              f"and cffi's backend: {exc}") from None
        _ffi = ffi
    return _lib, _ffi


def run(commands: list[dict]) -> dict:
    """Run a JSON command batch; return libnftables' JSON output (``{}`` when there is none)."""
    lib, ffi = _nft()
    ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
    if ctx == ffi.NULL:
        raise EngineError("libnftables: cannot create a context")
    try:
        lib.nft_ctx_output_set_flags(ctx, lib.nft_ctx_output_get_flags(ctx) | NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, json.dumps({"nftables": commands}).encode())
        if rc != 0:
            error = ffi.string(lib.nft_ctx_get_error_buffer(ctx)).decode(errors="replace").strip()
            raise EngineError(f"nftables: {error or 'command failed'}")
        output = ffi.string(lib.nft_ctx_get_output_buffer(ctx)).decode(errors="replace").strip()
        return json.loads(output) if output else {}
    finally:
        lib.nft_ctx_free(ctx)


# --- expression helpers (libnftables' JSON schema, see libnftables-json(5)) ---

def _match(left: dict, right: Any, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, name: str) -> dict:
    return {"payload": {"protocol": protocol, "field": name}}


def _prefix(cidr: str) -> dict:
    addr, _sep, length = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(length)}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


@dataclass
class BridgeRules:
    bridge: str
    subnet: str      # "10.99.0.0/16"
    masquerade: bool = True   # outbound NAT (not for internal networks)
    gateway: str = ""         # the bridge's own address (a host address, reachable as any other)
    internal: bool = False    # --internal: nothing is forwarded to or from anything but the bridge itself


@dataclass
class PortRule:
    proto: str       # tcp | udp
    host_ip: str     # "" = every local address
    host_port: int
    container_ip: str
    container_port: int


@dataclass
class Ruleset:
    table: str
    bridges: list[BridgeRules] = field(default_factory=list)
    ports: list[PortRule] = field(default_factory=list)

    def commands(self) -> list[dict]:
        """Make the engine's table hold exactly this (or delete it when there is nothing to hold)."""
        t = {"family": "ip", "name": self.table}
        if not self.bridges and not self.ports:
            return [{"add": {"table": dict(t)}}, {"delete": {"table": dict(t)}}]
        # Chains are added (a no-op when present) and flushed rather than deleted: deleting base chains
        # costs an RCU grace period (~10 ms) per transaction.
        cmds: list[dict] = [{"add": {"table": dict(t)}}]

        def chain(name: str, kind: str | None = None, hook: str | None = None, prio: int = 0) -> None:
            body: dict[str, Any] = {"family": "ip", "table": self.table, "name": name}
            if kind:
                body.update(type=kind, hook=hook, prio=prio, policy="accept")
            cmds.append({"add": {"chain": body}})

        def rule(chain_name: str, *expr: dict) -> None:
            cmds.append({"add": {"rule": {"family": "ip", "table": self.table, "chain": chain_name,
                                          "expr": list(expr)}}})

        chain("guard", "filter", "prerouting", -300)  # raw priority: before conntrack and DNAT
        chain("prerouting", "nat", "prerouting", -100)
        chain("output", "nat", "output", -100)
        chain("postrouting", "nat", "postrouting", 100)
        chain("forward", "filter", "forward", 0)
        chain("published")
        cmds.append({"flush": {"table": dict(t)}})
        iif, oif, src, dst = _meta("iifname"), _meta("oifname"), _payload("ip", "saddr"), _payload("ip", "daddr")
        loopback = _prefix("127.0.0.0/8")
        # route_localnet on the bridges lets 127.0.0.0/8 in from outside the host (CVE-2020-8558): a container
        # would reach the host's loopback-only services, a neighbour the ports published on 127.0.0.1. Only lo
        # carries loopback destinations (as Docker's and kube-proxy's raw PREROUTING drop).
        rule("guard", _match(dst, loopback), _match(iif, "lo", "!="), {"drop": None})
        # A container address is reached through its bridge (or from the host itself, which does not pass
        # prerouting); from anywhere else only through a published port, whose DNAT comes after this chain
        # (Docker 28's direct-access drop). The gateway is a host address like any other.
        for b in self.bridges:
            expr = [_match(dst, _prefix(b.subnet)), _match(iif, b.bridge, "!=")]
            if b.gateway:
                expr.insert(1, _match(dst, b.gateway, "!="))
            rule("guard", *expr, {"drop": None})
        local = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
        # Published ports: traffic to a local address is DNATed; to 127.0.0.1 only when it is the host's own
        # (output), never what arrives from outside (prerouting).
        rule("prerouting", local, _match(dst, loopback, "!="), {"jump": {"target": "published"}})
        rule("output", local, {"jump": {"target": "published"}})
        for p in self.ports:
            expr = []
            if p.host_ip:
                expr.append(_match(dst, p.host_ip))
            expr += [_match(_payload(p.proto, "dport"), p.host_port),
                     {"dnat": {"addr": p.container_ip, "port": p.container_port}}]
            rule("published", *expr)
        # Internal networks: nothing crosses their bridge, not even replies or published ports (as Docker's
        # isolation rules for internal networks).
        for b in self.bridges:
            if b.internal:
                rule("forward", _match(iif, b.bridge), _match(oif, b.bridge, "!="), {"drop": None})
                rule("forward", _match(oif, b.bridge), _match(iif, b.bridge, "!="), {"drop": None})
        rule("forward", _match({"ct": {"key": "state"}}, ["established", "related"], "in"), {"accept": None})
        rule("forward", _match({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None})
        # Networks are isolated from each other and from the outside (Docker's DOCKER-ISOLATION chains): what
        # enters a bridge comes from that bridge, or was DNATed from a published port (accepted above).
        for b in self.bridges:
            rule("forward", _match(oif, b.bridge), _match(iif, b.bridge, "!="), {"drop": None})
        for b in self.bridges:
            rule("forward", _match(iif, b.bridge), {"accept": None})
            # Loopback sources DNATed to a container must leave with a routable address.
            rule("postrouting", _match(oif, b.bridge), _match(src, loopback), {"masquerade": None})
            # Hairpin: a container reaching a published port (its own included) through the host gets the
            # reply back through the host too, so that conntrack can undo the DNAT.
            rule("postrouting", _match(oif, b.bridge), _match(src, _prefix(b.subnet)),
                 _match({"ct": {"key": "status"}}, "dnat", "in"), {"masquerade": None})
            if b.masquerade:
                rule("postrouting", _match(oif, b.bridge, "!="), _match(src, _prefix(b.subnet)),
                     {"masquerade": None})
        return cmds

    def apply(self) -> None:
        run(self.commands())


def list_table(table: str) -> dict | None:
    """The table as libnftables lists it (JSON), or None when it does not exist."""
    try:
        return run([{"list": {"table": {"family": "ip", "name": table}}}])
    except EngineError:
        return None
