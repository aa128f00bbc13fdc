"""rtnetlink requests as the kernel receives them (a fake socket captures them and acknowledges)."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.network import netlink


class FakeSocket:
    """Records each request and answers with an NLMSG_ERROR acknowledgement carrying ``code``."""

    def __init__(self, code: int = 0) -> None:
        self.sent: list[bytes] = []
        self.code = code

    def bind(self, _addr) -> None:
        pass

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, _size: int) -> bytes:
        seq = struct.unpack_from("=I", self.sent[-1], 8)[0]
        return struct.pack("=IHHIIi", 36, netlink.NLMSG_ERROR, 0, seq, 0, self.code) + self.sent[-1][:16]

    def close(self) -> None:
        pass


def _decoded(data: bytes):
    msg = netlink._pyroute2_codecs().ifinfmsg(data)
    msg.decode()
    return msg


def test_veth_peer_is_created_in_the_namespace_with_its_name_and_mac():
    sock = FakeSocket()
    nl = netlink.Netlink(sock)
    nl.create_veth("veth1234567", "eth0", 42, "02:42:0a:63:00:02", master=7)
    msg = _decoded(sock.sent[0])
    assert msg["header"]["type"] == netlink.RTM_NEWLINK
    flags = msg["header"]["flags"]
    assert flags & netlink.NLM_F_CREATE and flags & netlink.NLM_F_EXCL and flags & netlink.NLM_F_ACK
    assert msg.get_attr("IFLA_IFNAME") == "veth1234567"
    assert msg.get_attr("IFLA_MASTER") == 7
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_ADDRESS") == "02:42:0a:63:00:02"


def test_kernel_errors_become_oserror():
    nl = netlink.Netlink(FakeSocket(code=-17))
    with pytest.raises(netlink.NetlinkError) as info:
        nl.create_bridge("br0")
    assert info.value.errno == 17


def test_existing_address_is_not_an_error():
    nl = netlink.Netlink(FakeSocket(code=-17))
    nl.add_address(3, "10.99.0.1", 16, "10.99.255.255")  # EEXIST: already there
