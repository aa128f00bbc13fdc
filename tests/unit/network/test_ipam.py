"""Address and subnet choices of the network service, on a state file only (no kernel)."""

from __future__ import annotations

import ipaddress

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import Conflict, InvalidArgument, PortConflict
from ansible_collections.pycontainer.engine.plugins.module_utils.network import bridge
from ansible_collections.pycontainer.engine.plugins.module_utils.network import service as net
from ansible_collections.pycontainer.engine.plugins.module_utils.network.ports import PublishedPort


@pytest.fixture
def svc(tmp_path, monkeypatch):
    service = net.NetworkService(EngineConfig(root=str(tmp_path), network_pool="10.100.0.0/16",
                                              bridge_subnet="10.99.0.0/16"))
    monkeypatch.setattr(service, "host_routes", lambda exclude: [ipaddress.ip_network("10.100.0.0/24")])
    service.claims_dir = str(tmp_path / "claims")  # not the host's /run/pycontainer
    return service


def test_mac_is_derived_from_the_address_as_docker_does():
    assert net.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_default_bridge_network_exists_with_the_configured_subnet(svc):
    docs = {d["Name"]: d for d in svc.list()}
    assert set(docs) == {"bridge", "host", "none"}
    assert docs["bridge"]["IPAM"]["Config"] == [{"Subnet": "10.99.0.0/16", "Gateway": "10.99.0.1"}]
    # Not the default root: a bridge of its own (pyc-<digest of the root's path>).
    assert docs["bridge"]["Options"]["com.docker.network.bridge.name"] == svc.names.bridge_name
    assert svc.names.bridge_name.startswith("pyc-") and len(svc.names.bridge_name) == 12


def test_user_networks_take_free_subnets_from_the_pool(svc):
    first = svc.create("one")
    second = svc.create("two")
    # 10.100.0.0/24 is a host route: skipped.
    assert first["IPAM"]["Config"][0] == {"Subnet": "10.100.1.0/24", "Gateway": "10.100.1.1"}
    assert second["IPAM"]["Config"][0]["Subnet"] == "10.100.2.0/24"
    assert first["Options"]["com.docker.network.bridge.name"] == "br-" + first["Id"][:12]
    with pytest.raises(Conflict):
        svc.create("three", subnet="10.100.1.128/25")
    with pytest.raises(InvalidArgument):
        svc.create("four", subnet="10.200.0.0/24", gateway="10.201.0.1")
    with pytest.raises(Conflict):
        svc.create("one")


def test_addresses_are_handed_out_in_order_and_never_twice(svc):
    state = svc._read()
    svc._ensure_default(state)
    doc = svc._find(state, "bridge")
    taken: dict = {}
    ips = []
    for i in range(3):
        ip, prefix = svc._allocate_ip(state, doc, "", taken)
        ips.append(ip)
        state["containers"][f"c{i}"] = {"endpoints": {doc["Id"]: {"network": doc["Id"], "ip": ip}}}
    assert ips == ["10.99.0.2", "10.99.0.3", "10.99.0.4"] and prefix == 16
    with pytest.raises(InvalidArgument, match="user defined networks"):
        svc._allocate_ip(state, doc, "10.99.0.9", taken)


def test_requested_address_must_be_free_and_inside(svc):
    svc.create("fixed", subnet="10.120.0.0/24")
    state = svc._read()
    doc = svc._find(state, "fixed")
    assert svc._allocate_ip(state, doc, "10.120.0.9", {}) == ("10.120.0.9", 24)
    state["containers"]["x"] = {"endpoints": {doc["Id"]: {"network": doc["Id"], "ip": "10.120.0.9"}}}
    with pytest.raises(Conflict):
        svc._allocate_ip(state, doc, "10.120.0.9", {})
    with pytest.raises(InvalidArgument):
        svc._allocate_ip(state, doc, "10.121.0.9", {})


def test_fixed_port_conflicts(svc, monkeypatch):
    monkeypatch.setattr(bridge, "bind_problem", lambda proto, ip, port: "")
    taken = [PublishedPort("tcp", "", 8080, 80), PublishedPort("tcp", "127.0.0.1", 9090, 80)]
    with pytest.raises(PortConflict, match="already allocated"):
        svc._pick_port("tcp", "127.0.0.1", "8080", taken)  # 0.0.0.0:8080 covers every address
    with pytest.raises(PortConflict):
        svc._pick_port("tcp", "", "9090", taken)
    assert svc._pick_port("udp", "", "8080", taken) == 8080  # another protocol
    assert svc._pick_port("tcp", "10.0.0.1", "9090", taken) == 9090  # another address
    assert 8081 <= svc._pick_port("tcp", "", "8080-8082", taken) <= 8082


def test_host_process_conflict(svc, monkeypatch):
    monkeypatch.setattr(bridge, "bind_problem", lambda proto, ip, port: "address already in use")
    with pytest.raises(PortConflict, match="address already in use"):
        svc._pick_port("tcp", "", "8080", [])
