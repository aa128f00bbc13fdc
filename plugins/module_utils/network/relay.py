"""Published ports on IPv6 host addresses (``-p [::1]:8080:80``, ``-p [::]:8080:80``): a userland relay.

Containers are IPv4-only, and IPv6 traffic to ``::1`` cannot be DNATed out of the host (the kernel drops
loopback-sourced IPv6 packets on other interfaces; there is no ``route_localnet`` for IPv6), which is why
Docker, too, serves these through its userland proxy. The engine binds the listening socket while it
reserves the port (``NetworkService.prepare``: a taken port is refused before anything starts), and the
monitor, the container's parent for its whole life, relays connections from its select loop: no thread per
connection, connections to the container's IPv4 address. The sockets close when the container stops (or
with the monitor, should it die), so nothing outlives the container. IPv4 host addresses keep the nftables
DNAT path, which costs nothing per connection.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

from ..errors import PortConflict

BUFFER_LIMIT = 256 << 10     # per direction: reading pauses while this much waits for the other side
UDP_FLOW_IDLE = 120.0        # seconds without traffic before a UDP flow's upstream socket is dropped
UDP_MAX_FLOWS = 4096


@dataclass
class RelayListener:
    sock: socket.socket
    proto: str            # tcp | udp
    container_ip: str
    container_port: int


def bind_listener(proto: str, host_ip: str, host_port: int) -> socket.socket:
    """The listening socket for ``[host_ip]:host_port``; PortConflict (Docker's wording) when it is taken."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET6, kind)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # [::] is IPv6 only: IPv4 has the DNAT path
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, host_port))
        if proto == "tcp":
            sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = "cannot assign requested address" if exc.errno == errno.EADDRNOTAVAIL else \
            (exc.strerror or str(exc)).lower()
        raise PortConflict(f"driver failed programming external connectivity: Error starting userland proxy: "
                           f"listen {proto}6 [{host_ip}]:{host_port}: bind: {reason}") from None
    return sock


class Relay:
    """Relays one container's IPv6 listeners from a select loop ``loop`` (``watch_fd(fd, mask, callback)``,
    ``unwatch_fd(fd)``: callbacks get the event mask; the monitor's interface)."""

    def __init__(self, loop: Any, listeners: list[RelayListener]) -> None:
        self.loop = loop
        self.listeners = list(listeners)
        self.pipes: set[_Pipe] = set()
        self.flows: dict[tuple, _Flow] = {}
        for listener in self.listeners:
            handler = self._accept if listener.proto == "tcp" else self._datagram
            loop.watch_fd(listener.sock.fileno(), selectors.EVENT_READ, functools.partial(handler, listener))

    def close(self) -> None:
        for listener in self.listeners:
            self.loop.unwatch_fd(listener.sock.fileno())
            listener.sock.close()
        self.listeners = []
        for pipe in list(self.pipes):
            pipe.close()
        for flow in list(self.flows.values()):
            flow.close()

    # --- TCP ---
    def _accept(self, listener: RelayListener, _mask: int) -> None:
        while True:
            try:
                client, _addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. EMFILE: the client waits in the backlog for a later round
            client.setblocking(False)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            err = upstream.connect_ex((listener.container_ip, listener.container_port))
            if err not in (0, errno.EINPROGRESS):
                client.close()
                upstream.close()
                continue
            self.pipes.add(_Pipe(self, client, upstream))

    # --- UDP ---
    def _datagram(self, listener: RelayListener, _mask: int) -> None:
        now = time.monotonic()
        for _i in range(64):  # bounded: other containers' I/O shares the loop
            try:
                data, addr = listener.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            key = (listener.sock.fileno(), addr)
            flow = self.flows.get(key)
            if flow is None:
                if len(self.flows) >= UDP_MAX_FLOWS:
                    min(self.flows.values(), key=lambda f: f.last).close()
                flow = _Flow(self, key, listener, addr)
            flow.last = now
            with contextlib.suppress(OSError):
                flow.sock.send(data)
        for flow in [f for f in self.flows.values() if now - f.last > UDP_FLOW_IDLE]:
            flow.close()


class _Flow:
    """One UDP client: a connected socket to the container, replies sent back from the listener."""

    def __init__(self, relay: Relay, key: tuple, listener: RelayListener, addr: tuple) -> None:
        self.relay, self.key, self.listener, self.addr = relay, key, listener, addr
        self.last = time.monotonic()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((listener.container_ip, listener.container_port))
        relay.flows[key] = self
        relay.loop.watch_fd(self.sock.fileno(), selectors.EVENT_READ, self.on_reply)

    def on_reply(self, _mask: int) -> None:
        for _i in range(64):
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ICMP unreachable from the container: the client sees silence, as with a real server
            self.last = time.monotonic()
            with contextlib.suppress(OSError):
                self.listener.sock.sendto(data, self.addr)

    def close(self) -> None:
        self.relay.flows.pop(self.key, None)
        self.relay.loop.unwatch_fd(self.sock.fileno())
        self.sock.close()


class _Pipe:
    """One relayed TCP connection: socks[0] the client, socks[1] the container; bufs[i] was read from socks[i]."""

    def __init__(self, relay: Relay, client: socket.socket, upstream: socket.socket) -> None:
        self.relay = relay
        self.socks = [client, upstream]
        self.bufs = [bytearray(), bytearray()]
        self.eof = [False, False]    # socks[i] sent end-of-file
        self.shut = [False, False]   # writing to socks[i] was shut down
        self.connected = False
        self.closed = False
        self.callbacks = [functools.partial(self.on_event, 0), functools.partial(self.on_event, 1)]
        self._watch()

    def _watch(self) -> None:
        for i, sock in enumerate(self.socks):
            if i == 1 and not self.connected:
                mask = selectors.EVENT_WRITE  # the connect's outcome first
            else:
                mask = selectors.EVENT_READ if not self.eof[i] and len(self.bufs[i]) < BUFFER_LIMIT else 0
                if self.bufs[1 - i]:
                    mask |= selectors.EVENT_WRITE
            self.relay.loop.watch_fd(sock.fileno(), mask, self.callbacks[i])

    def on_event(self, i: int, mask: int) -> None:
        if self.closed:
            return
        sock = self.socks[i]
        if i == 1 and not self.connected:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.close()  # refused by the container: the client sees its connection closed
                return
            self.connected = True
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self.close()
                return
            if data == b"":
                self.eof[i] = True
            elif data:
                self.bufs[i] += data
        for j in (0, 1):
            buf, dst = self.bufs[j], self.socks[1 - j]
            if buf and (j == 1 or self.connected):
                try:
                    del buf[: dst.send(buf)]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.close()
                    return
            if not buf and self.eof[j] and not self.shut[1 - j] and (j == 1 or self.connected):
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                self.shut[1 - j] = True
        if all(self.shut):
            self.close()
        else:
            self._watch()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.relay.pipes.discard(self)
        for sock in self.socks:
            self.relay.loop.unwatch_fd(sock.fileno())
            sock.close()
