"""The engine's nftables table as JSON commands (rendered without the kernel)."""

from __future__ import annotations

from ansible_collections.pycontainer.engine.plugins.module_utils.network.nftables import (
    BridgeRules,
    PortRule,
    Ruleset,
)


def _rules(cmds: list[dict], chain: str) -> list[list[dict]]:
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain]


def test_empty_ruleset_deletes_the_table():
    assert Ruleset("t").commands() == [{"add": {"table": {"family": "ip", "name": "t"}}},
                                       {"delete": {"table": {"family": "ip", "name": "t"}}}]


def test_one_transaction_adds_chains_flushes_then_adds_rules():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24")], [PortRule("tcp", "", 8080, "10.9.0.2", 80)]).commands()
    kinds = [next(iter(c)) + ":" + next(iter(next(iter(c.values())))) for c in cmds]
    flush = kinds.index("flush:table")
    assert kinds[0] == "add:table" and all(k == "add:chain" for k in kinds[1:flush])
    assert all(k == "add:rule" for k in kinds[flush + 1:])
    base = {c["add"]["chain"]["name"]: c["add"]["chain"] for c in cmds if "chain" in c.get("add", {})}
    assert base["prerouting"]["hook"] == "prerouting" and base["prerouting"]["type"] == "nat"
    assert base["output"]["hook"] == "output" and base["postrouting"]["prio"] == 100
    assert "hook" not in base["published"]


def test_port_rules_dnat_with_optional_host_address():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24")], [
        PortRule("tcp", "", 8080, "10.9.0.2", 80), PortRule("udp", "127.0.0.1", 5353, "10.9.0.3", 53)]).commands()
    published = _rules(cmds, "published")
    assert published[0] == [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
        {"dnat": {"addr": "10.9.0.2", "port": 80}}]
    assert published[1][0] == {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                         "right": "127.0.0.1"}}
    # Local destinations only jump to the published chain; loopback ones only for the host's own traffic
    # (output): what arrives from outside (prerouting) never reaches a port published on 127.0.0.1.
    for chain in ("prerouting", "output"):
        (rule,) = _rules(cmds, chain)
        assert rule[0]["match"]["left"] == {"fib": {"result": "type", "flags": ["daddr"]}}
        assert rule[-1] == {"jump": {"target": "published"}}
    (pre,) = _rules(cmds, "prerouting")
    assert pre[1] == {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}}
    (out,) = _rules(cmds, "output")
    assert len(out) == 2


def test_masquerade_rules_per_bridge():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24"), BridgeRules("br1", "10.8.0.0/24", masquerade=False)],
                   []).commands()
    post = _rules(cmds, "postrouting")
    outbound = [r for r in post if r[0]["match"]["op"] == "!="]
    assert len(outbound) == 1 and outbound[0][0]["match"]["right"] == "br0"  # internal networks: none
    hairpin = [r for r in post if any("ct" in m.get("match", {}).get("left", {}) for m in r)]
    assert {r[0]["match"]["right"] for r in hairpin} == {"br0", "br1"}


DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
IIF, OIF = {"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}
DROP = {"drop": None}


def _m(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def test_guard_chain_drops_loopback_and_container_destinations_from_elsewhere():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24", gateway="10.9.0.1"),
                         BridgeRules("br1", "10.8.0.0/24")], []).commands()
    chains = {c["add"]["chain"]["name"]: c["add"]["chain"] for c in cmds if "chain" in c.get("add", {})}
    # Raw priority, before conntrack (-200) and DNAT (-100): it sees the destination as it arrived.
    assert chains["guard"]["hook"] == "prerouting" and chains["guard"]["prio"] == -300
    assert chains["guard"]["type"] == "filter"
    guard = _rules(cmds, "guard")
    assert guard[0] == [_m(DADDR, {"prefix": {"addr": "127.0.0.0", "len": 8}}), _m(IIF, "lo", "!="), DROP]
    # The gateway is a host address: only the containers' addresses are kept to their bridge.
    assert guard[1] == [_m(DADDR, {"prefix": {"addr": "10.9.0.0", "len": 24}}), _m(DADDR, "10.9.0.1", "!="),
                        _m(IIF, "br0", "!="), DROP]
    assert guard[2] == [_m(DADDR, {"prefix": {"addr": "10.8.0.0", "len": 24}}), _m(IIF, "br1", "!="), DROP]


def test_forward_isolates_bridges_after_published_ports():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24"), BridgeRules("br1", "10.8.0.0/24")], []).commands()
    forward = _rules(cmds, "forward")
    dnat = next(i for i, r in enumerate(forward) if r[0]["match"]["left"] == {"ct": {"key": "status"}})
    isolation = [i for i, r in enumerate(forward) if r[-1] == DROP]
    # Into a bridge only from that bridge, unless DNATed from a published port (accepted before).
    assert [forward[i] for i in isolation] == [[_m(OIF, "br0"), _m(IIF, "br0", "!="), DROP],
                                               [_m(OIF, "br1"), _m(IIF, "br1", "!="), DROP]]
    assert all(i > dnat for i in isolation)


def test_internal_network_forwards_nothing_beyond_its_bridge():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24"),
                         BridgeRules("int0", "10.7.0.0/24", masquerade=False, internal=True)], []).commands()
    forward = _rules(cmds, "forward")
    # First, before established replies and DNATed published ports are accepted.
    assert forward[0] == [_m(IIF, "int0"), _m(OIF, "int0", "!="), DROP]
    assert forward[1] == [_m(OIF, "int0"), _m(IIF, "int0", "!="), DROP]
    assert not any(_m(IIF, "br0") in r and r[-1] == DROP for r in forward)
    post = _rules(cmds, "postrouting")
    assert not any(r[0] == _m(OIF, "int0", "!=") for r in post)  # no outbound masquerade
