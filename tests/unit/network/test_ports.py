"""Parsing of -p specs and Docker's renderings of published ports."""

from __future__ import annotations

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.network.ports import (
    PublishedPort,
    merge_bindings,
    parse_publish,
    ports_column,
    ports_column_from_view,
    ports_view,
)


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("0:80", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("8080:80", {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("127.0.0.1:8080:80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}),
    ("0.0.0.0:8080:80", {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("127.0.0.1::80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
    ("53/udp", {"53/udp": [{"HostIp": "", "HostPort": ""}]}),
    ("5353:53/UDP", {"53/udp": [{"HostIp": "", "HostPort": "5353"}]}),
    ("[::1]:8080:80", {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}),
    ("[::]:8080:80", {"80/tcp": [{"HostIp": "::", "HostPort": "8080"}]}),
    ("[::1]::80/udp", {"80/udp": [{"HostIp": "::1", "HostPort": ""}]}),
    ("8000-8001:80-81", {"80/tcp": [{"HostIp": "", "HostPort": "8000"}],
                         "81/tcp": [{"HostIp": "", "HostPort": "8001"}]}),
    ("8000-8010:80", {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
    ("80-81", {"80/tcp": [{"HostIp": "", "HostPort": ""}], "81/tcp": [{"HostIp": "", "HostPort": ""}]}),
])
def test_parse_publish(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec", ["", "abc", "0", "80/icmp", "8000-8002:80-81", "1.2.3:80:80", "[::1:80:80",
                                  "70000:80", "81-80", "a:b:c:d"])
def test_parse_publish_refuses(spec):
    with pytest.raises(InvalidArgument):
        parse_publish(spec)


def test_merge_bindings_keeps_every_host_binding():
    assert merge_bindings(["8080:80", "127.0.0.1:9090:80"]) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "9090"}]}


def test_ports_column_groups_consecutive_ports_like_docker():
    ports = [PublishedPort("tcp", "", 8000 + i, 80 + i) for i in range(3)]
    ports += [PublishedPort("udp", "127.0.0.1", 5353, 53), PublishedPort("tcp", "", 9000, 443)]
    assert ports_column(ports, ["90/tcp"]) == (
        "0.0.0.0:8000-8002->80-82/tcp, 0.0.0.0:9000->443/tcp, 127.0.0.1:5353->53/udp, 90/tcp")


def test_ports_view_and_back():
    ports = [PublishedPort("tcp", "", 8080, 80), PublishedPort("tcp", "127.0.0.1", 8081, 80)]
    view = ports_view(ports, ["80/tcp", "53/udp"])
    assert view == {"53/udp": None, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                               {"HostIp": "127.0.0.1", "HostPort": "8081"}]}
    assert ports_column_from_view(view) == "0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp, 53/udp"
    assert ports_column_from_view(None) == ""


def test_stopped_container_keeps_its_networks_without_addresses():
    from ansible_collections.pycontainer.engine.plugins.module_utils.network.views import network_settings

    saved = {"IPAddress": "10.99.0.2", "Gateway": "10.99.0.1", "Ports": {"80/tcp": [{"HostPort": "8080"}]},
             "Networks": {"bridge": {"NetworkID": "n1", "IPAddress": "10.99.0.2", "MacAddress": "02:42:0a:63:00:02",
                                     "Aliases": None}}}
    assert network_settings(saved, True) == saved
    stopped = network_settings(saved, False)
    assert stopped["IPAddress"] == "" and stopped["Ports"] == {}
    assert stopped["Networks"]["bridge"]["NetworkID"] == "n1"
    assert stopped["Networks"]["bridge"]["IPAddress"] == "" and stopped["Networks"]["bridge"]["MacAddress"] == ""
    assert network_settings(None, False) == {"Networks": {}}
