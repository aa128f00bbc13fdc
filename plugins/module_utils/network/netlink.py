"""Links, addresses and routes over rtnetlink, with pyroute2's message classes.

Only pyroute2's message codecs (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``) are used, over a plain netlink socket:
importing the ``pyroute2`` package itself pulls in asyncio, NDB, IPDB... (~0.1 s), its codecs cost ~20 ms.
The codecs have kept their shape from pyroute2 0.7.2 (Debian 12) to 0.9. A socket belongs to the network
namespace it was created in: ``Netlink.in_netns(fd)`` opens one inside a container's namespace from a helper
thread, so no process ever has to move.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import struct
import sys
import threading
import types

NETLINK_ROUTE = 0
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_DUMP = 0x300
RTM_NEWLINK, RTM_DELLINK = 16, 17
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000

_codecs: types.SimpleNamespace | None = None


def require_pyroute2() -> importlib.machinery.ModuleSpec | None:
    """pyroute2's spec (None when already imported); MissingLibrary when it is not installed. Imports nothing."""
    if "pyroute2" in sys.modules:
        return None
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or not spec.submodule_search_locations:
        from ..errors import MissingLibrary

        raise MissingLibrary("bridge networking needs pyroute2 (Debian: python3-pyroute2, PyPI: pyroute2)",
                             library="pyroute2", purpose="bridge networking")
    return spec


def _pyroute2_codecs() -> types.SimpleNamespace:
    """Import the message classes without running ``pyroute2/__init__`` (which imports the whole library)."""
    global _codecs
    if _codecs is None:
        spec = require_pyroute2()
        if spec is not None:
            package = types.ModuleType("pyroute2")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            package.__file__ = spec.origin
            sys.modules["pyroute2"] = package  # a later full ``import pyroute2`` still works: see _complete
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        _codecs = types.SimpleNamespace(ifinfmsg=ifinfmsg, ifaddrmsg=ifaddrmsg, rtmsg=rtmsg)
    return _codecs


class NetlinkError(OSError):
    pass


class Netlink:
    """One rtnetlink socket; each request waits for the kernel's acknowledgement."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0
        self.codecs = _pyroute2_codecs()

    @classmethod
    def in_netns(cls, netns_fd: int) -> Netlink:
        """A socket created inside the network namespace ``netns_fd`` (setns on a short-lived helper thread)."""
        result: list = []

        def make() -> None:
            from ..linux import libc

            try:
                libc.setns(netns_fd, CLONE_NEWNET)
                result.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                            NETLINK_ROUTE))
            except BaseException as exc:  # reported to the caller below
                result.append(exc)

        thread = threading.Thread(target=make, name="netns-socket")
        thread.start()
        thread.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return cls(result[0])

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, msg, msg_type: int, flags: int = 0) -> None:
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = self.seq
        msg["header"]["pid"] = 0
        msg.encode()
        self.sock.send(msg.data)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if kind == NLMSG_ERROR and seq == self.seq:
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return
                offset += max(length, 16)

    # --- links ---
    def _link(self, index: int = 0, attrs: list | None = None, flags: int = 0, change: int = 0):
        msg = self.codecs.ifinfmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["index"] = index
        msg["flags"] = flags
        msg["change"] = change
        msg["attrs"] = attrs or []
        return msg

    def create_bridge(self, name: str) -> None:
        linkinfo = {"attrs": [("IFLA_INFO_KIND", "bridge")]}
        self.request(self._link(attrs=[("IFLA_IFNAME", name), ("IFLA_LINKINFO", linkinfo)]),
                     RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)

    def create_veth(self, name: str, peer_name: str, peer_netns_fd: int, peer_mac: str, master: int) -> None:
        """A veth pair whose peer is born inside another namespace under its final name and MAC."""
        peer = {"attrs": [("IFLA_IFNAME", peer_name), ("IFLA_ADDRESS", peer_mac),
                          ("IFLA_NET_NS_FD", peer_netns_fd)]}
        linkinfo = {"attrs": [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}
        self.request(self._link(attrs=[("IFLA_IFNAME", name), ("IFLA_MASTER", master), ("IFLA_LINKINFO", linkinfo)]),
                     RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index: int) -> None:
        self.request(self._link(index=index, flags=IFF_UP, change=IFF_UP), RTM_NEWLINK)

    def delete_link(self, index: int) -> None:
        self.request(self._link(index=index), RTM_DELLINK)

    def index_of(self, name: str) -> int:
        """The index of ``name`` in this socket's namespace (0 when there is none)."""
        msg = self._link(attrs=[("IFLA_IFNAME", name)])
        self.seq += 1
        msg["header"]["type"] = 18  # RTM_GETLINK
        msg["header"]["flags"] = NLM_F_REQUEST
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        while True:
            data = self.sock.recv(65536)
            _length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, 0)
            if seq != self.seq:
                continue
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, 16)
                if code in (0, -errno.ENODEV):
                    return 0
                raise NetlinkError(-code, os.strerror(-code))
            (index,) = struct.unpack_from("=i", data, 16 + 4)  # struct ifinfomsg: family, pad, type, index
            return index

    # --- addresses and routes ---
    def add_address(self, index: int, address: str, prefixlen: int, broadcast: str | None = None) -> None:
        msg = self.codecs.ifaddrmsg()
        msg["family"] = socket.AF_INET
        msg["prefixlen"] = prefixlen
        msg["index"] = index
        attrs = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        if broadcast:
            attrs.append(("IFA_BROADCAST", broadcast))
        msg["attrs"] = attrs
        try:
            self.request(msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def add_default_route(self, gateway: str, index: int) -> None:
        msg = self.codecs.rtmsg()
        msg["family"] = socket.AF_INET
        msg["dst_len"] = 0
        msg["table"] = 254  # main
        msg["proto"] = 3    # boot, as `ip route add`
        msg["scope"] = 0    # universe
        msg["type"] = 1     # unicast
        msg["attrs"] = [("RTA_TABLE", 254), ("RTA_GATEWAY", gateway), ("RTA_OIF", index)]
        self.request(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)

    # --- dumps ---
    def _dump(self, msg, msg_type: int) -> list:
        """Every object of one kind (NLM_F_DUMP), decoded with the request's own message class."""
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        out = []
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if seq == self.seq:
                    if kind == NLMSG_DONE:
                        return out
                    if kind == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, offset + 16)
                        if code:
                            raise NetlinkError(-code, os.strerror(-code))
                    else:
                        item = type(msg)(data[offset:offset + length])
                        item.decode()
                        out.append(item)
                offset += max(length, 16)

    def ipv4_networks(self) -> list[tuple[str, int]]:
        """(CIDR, interface index) of every IPv4 address and non-default route: what a new subnet must avoid."""
        msg = self.codecs.ifaddrmsg()
        msg["family"] = socket.AF_INET
        found = [(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}", a["index"]) for a in self._dump(msg, RTM_GETADDR)
                 if a.get_attr("IFA_ADDRESS")]
        msg = self.codecs.rtmsg()
        msg["family"] = socket.AF_INET
        for route in self._dump(msg, RTM_GETROUTE):
            if route["dst_len"] and route.get_attr("RTA_DST") and route["type"] == 1:  # unicast
                found.append((f"{route.get_attr('RTA_DST')}/{route['dst_len']}", route.get_attr("RTA_OIF") or 0))
        return found
