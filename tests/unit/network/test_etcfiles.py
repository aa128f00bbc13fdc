"""/etc/hosts and /etc/resolv.conf as Docker writes them for a container."""

from __future__ import annotations

import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.network import etcfiles

HOST_RESOLV = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"


def test_resolv_conf_drops_loopback_nameservers():
    assert etcfiles.resolv_conf_content(HOST_RESOLV, [], [], []) == (
        "# generated\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n")


def test_resolv_conf_falls_back_to_public_resolvers_when_only_loopback():
    text = etcfiles.resolv_conf_content("nameserver 127.0.0.53\nnameserver ::1\n", [], [], [])
    assert text == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_dns_options_replace_the_hosts():
    text = etcfiles.resolv_conf_content(HOST_RESOLV, ["192.0.2.53"], ["a.test", "b.test"], ["ndots:2"])
    assert text.splitlines() == ["# generated", "nameserver 192.0.2.53", "search a.test b.test", "options ndots:2"]


def test_hosts_order_extra_then_own_then_peers():
    text = etcfiles.hosts_content([("10.1.0.2", "web")], [("db", "192.0.2.10")],
                                  [("10.1.0.3", ["cache", "redis", "0123456789ab"])])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-3:] == ["192.0.2.10\tdb", "10.1.0.2\tweb", "10.1.0.3\tcache redis 0123456789ab"]


@pytest.mark.parametrize(("item", "expected"), [("db:192.0.2.1", ("db", "192.0.2.1")),
                                                ("db=192.0.2.1", ("db", "192.0.2.1")),
                                                ("v6:[2001:db8::1]", ("v6", "2001:db8::1")),
                                                ("v6:2001:db8::1", ("v6", "2001:db8::1")),
                                                ("gw:host-gateway", ("gw", "host-gateway"))])
def test_parse_extra_host(item, expected):
    assert etcfiles.parse_extra_host(item) == expected


def test_parse_extra_host_refuses_malformed():
    with pytest.raises(InvalidArgument):
        etcfiles.parse_extra_host("justaname")


def test_write_in_place_keeps_the_inode(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("a much longer first content\n")
    inode = os.stat(path).st_ino
    etcfiles.write_in_place(str(path), "short\n")
    assert path.read_text() == "short\n"
    assert os.stat(path).st_ino == inode
