"""The userland relay for IPv6 host addresses (network/relay.py), over real loopback sockets and a selector
loop standing in for the monitor's."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

import pytest

from plugins.module_utils.errors import PortConflict
from plugins.module_utils.network.relay import Relay, RelayListener, bind_listener


class Loop:
    """The monitor's select-loop interface: watch_fd(fd, mask, callback(mask)) / unwatch_fd(fd)."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()

    def watch_fd(self, fd, mask, callback) -> None:
        if mask == 0:
            self.unwatch_fd(fd)
            return
        try:
            self.selector.modify(fd, mask, callback)
        except KeyError:
            self.selector.register(fd, mask, callback)

    def unwatch_fd(self, fd) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)

    def spin(self, until, rounds: int = 2000) -> None:
        for _i in range(rounds):
            for key, mask in self.selector.select(0.01):
                key.data(mask)
            if until():
                return
        raise AssertionError("relay made no progress")


def echo_server(kind: int = socket.SOCK_STREAM):
    server = socket.socket(socket.AF_INET, kind)
    server.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_DGRAM:
        def serve_udp():
            data, peer = server.recvfrom(65535)
            server.sendto(b"echo:" + data, peer)
        thread = threading.Thread(target=serve_udp, daemon=True)
    else:
        server.listen()

        def serve_tcp():
            conn, _addr = server.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)
        thread = threading.Thread(target=serve_tcp, daemon=True)
    thread.start()
    return server, server.getsockname()[1]


def test_tcp_relay_carries_both_directions_and_half_close():
    server, port = echo_server()
    loop = Loop()
    listener = bind_listener("tcp", "::1", 0)
    relay = Relay(loop, [RelayListener(listener, "tcp", "127.0.0.1", port)])
    client = socket.create_connection(("::1", listener.getsockname()[1]))
    payload = bytes(range(256)) * 4096  # 1 MiB: more than the relay buffers per direction
    client.setblocking(False)
    sent, received = 0, bytearray()
    client_shut = False

    def progress() -> bool:
        nonlocal sent, client_shut
        if sent < len(payload):
            with contextlib.suppress(BlockingIOError):
                sent += client.send(payload[sent:sent + 65536])
        elif not client_shut:
            client.shutdown(socket.SHUT_WR)
            client_shut = True
        try:
            chunk = client.recv(65536)
            if chunk == b"":
                return True
            received.extend(chunk)
        except BlockingIOError:
            pass
        return False

    loop.spin(progress, rounds=20000)
    assert bytes(received) == payload
    assert not relay.pipes  # both sides closed: the pipe is gone
    relay.close()
    client.close()
    server.close()
    assert listener.fileno() == -1


def test_udp_relay_answers_the_sender():
    server, port = echo_server(socket.SOCK_DGRAM)
    loop = Loop()
    listener = bind_listener("udp", "::1", 0)
    relay = Relay(loop, [RelayListener(listener, "udp", "127.0.0.1", port)])
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        client.sendto(b"hi", ("::1", listener.getsockname()[1]))
        answer = []

        def got() -> bool:
            try:
                answer.append(client.recv(100))
            except BlockingIOError:
                return False
            return True

        loop.spin(got)
    assert answer == [b"echo:hi"]
    relay.close()
    assert not relay.flows
    server.close()


def test_refused_upstream_closes_the_client():
    loop = Loop()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    listener = bind_listener("tcp", "::1", 0)
    relay = Relay(loop, [RelayListener(listener, "tcp", "127.0.0.1", dead_port)])
    client = socket.create_connection(("::1", listener.getsockname()[1]))
    client.setblocking(False)

    def closed() -> bool:
        try:
            return client.recv(10) == b""
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True

    loop.spin(closed)
    assert not relay.pipes
    relay.close()
    client.close()


def test_taken_port_is_a_port_conflict_in_dockers_words():
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortConflict, match=rf"listen tcp6 \[::1\]:{port}: bind: address already in use"):
            bind_listener("tcp", "::1", port)
