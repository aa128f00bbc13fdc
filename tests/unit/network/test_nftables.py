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
    # Local destinations only (any local address, loopback included) jump to the published chain.
    for chain in ("prerouting", "output"):
        (rule,) = _rules(cmds, chain)
        assert rule[0]["match"]["left"] == {"fib": {"result": "type", "flags": ["daddr"]}}
        assert rule[1] == {"jump": {"target": "published"}}


def test_masquerade_rules_per_bridge():
    cmds = Ruleset("t", [BridgeRules("br0", "10.9.0.0/24"), BridgeRules("br1", "10.8.0.0/24", masquerade=False)],
                   []).commands()
    post = _rules(cmds, "postrouting")
    outbound = [r for r in post if r[0]["match"]["op"] == "!="]
    assert len(outbound) == 1 and outbound[0][0]["match"]["right"] == "br0"  # internal networks: none
    hairpin = [r for r in post if any("ct" in m.get("match", {}).get("left", {}) for m in r)]
    assert {r[0]["match"]["right"] for r in hairpin} == {"br0", "br1"}
