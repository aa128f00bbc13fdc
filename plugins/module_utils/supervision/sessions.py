"""The monitor's two kinds of session: a ``Client`` (one connection from a command) and a ``Supervised``
container (its process, stdio ends, log and attached clients). ``monitor.py`` runs the loop they live in."""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import socket
from collections.abc import Callable
from typing import Any, Protocol

from ..records.containers import ContainerRecord
from . import protocol

CLIENT_BUFFER_LIMIT = 16 << 20
RESTART_BACKOFF_START = 0.1  # Docker's restart manager: 100 ms, doubling, at most a minute,


class Loop(Protocol):
    """What a session needs of the monitor: its selector and its set of clients."""

    clients: set[Client]

    def watch(self, sock: socket.socket, mask: int, callback: Callable[[int], None]) -> None: ...

    def unwatch(self, sock: socket.socket) -> None: ...

    def watch_fd(self, fd: int, mask: int, callback) -> None: ...

    def unwatch_fd(self, fd: int) -> None: ...

    def handle_frame(self, client: Client, kind: bytes, payload: bytes) -> None: ...


class Client:
    """One connection from a command."""

    def __init__(self, monitor: Loop, sock: socket.socket) -> None:
        self.monitor = monitor
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.attached: Supervised | None = None
        self.closing = False
        sock.setblocking(False)

    def send(self, data: bytes) -> None:
        if self.sock.fileno() < 0:
            return
        if len(self.outbuf) > CLIENT_BUFFER_LIMIT:
            self.close()  # a client that stopped reading must not hold up the container
            return
        self.outbuf += data
        self.flush()

    def reply(self, message: dict) -> None:
        self.send(protocol.control(message))

    def flush(self) -> None:
        while self.outbuf:
            try:
                sent = self.sock.send(self.outbuf)
            except BlockingIOError:
                break
            except OSError:
                self.close()
                return
            del self.outbuf[:sent]
        if self.closing and not self.outbuf:
            self.close()
            return
        self.monitor.watch(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbuf else 0),
                           self.on_event)

    def finish(self) -> None:
        """Close once everything queued has been sent."""
        self.closing = True
        self.flush()

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.flush()
        if mask & selectors.EVENT_READ and self.sock.fileno() >= 0:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self.inbuf += data
            for kind, payload in protocol.split_frames(self.inbuf):
                self.monitor.handle_frame(self, kind, payload)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.monitor.unwatch(self.sock)
            self.sock.close()
        self.monitor.clients.discard(self)
        if self.attached is not None:
            self.attached.detach_client(self)
            self.attached = None


class Supervised:
    """A container the monitor started: its process, its stdio ends, its log, its clients."""

    def __init__(self, monitor: Loop, record: ContainerRecord) -> None:
        self.monitor = monitor
        self.id = record.id
        self.record = record
        self.process: Any = None
        self.spec: Any = None
        self.outputs: dict[int, str] = {}   # fd -> "stdout" | "stderr"
        self.stdin_fd: int | None = None
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.stdin_once = False
        self.tty_master: int | None = None
        self.tty_size: tuple[int, int] | None = None  # the terminal's window, kept for a restart's new one
        self.log: Any = None
        self.clients: set[Client] = set()
        self.waiters: list[Client] = []
        self.stoppers: list[Client] = []
        self.kill_deadline: float | None = None
        self.restart_at: float | None = None
        self.backoff = RESTART_BACKOFF_START
        self.started_mono = 0.0
        self.traced = False  # its attached caller asked for PYCONTAINER_TRACE phases: the exit's go back too
        self.relay: Any = None  # ports published on IPv6 host addresses (network/relay.py)

    # -- I/O --
    def on_output(self, fd: int, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and fd == self.stdin_fd:
            self.flush_stdin()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the terminal's last slave end closed
        if not data:
            self.close_output(fd)
            return
        self.deliver(self.outputs[fd], data)

    def deliver(self, stream: str, data: bytes) -> None:
        if self.log is not None:
            self.log.write(stream, data)
        frame = protocol.frame(protocol.STDOUT if stream == "stdout" else protocol.STDERR, data)
        for client in list(self.clients):
            client.send(frame)

    def close_output(self, fd: int) -> None:
        if fd in self.outputs:
            del self.outputs[fd]
            if fd == self.tty_master:
                self.monitor.unwatch_fd(fd)
                self.tty_master = None
                if self.stdin_fd == fd:
                    self.stdin_fd = None
            else:
                self.monitor.unwatch_fd(fd)
            os.close(fd)

    def drain(self) -> None:
        """Read what the exited container left in its pipes (its other processes are gone with it)."""
        for fd in list(self.outputs):
            os.set_blocking(fd, False)
            while True:
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    break
                self.deliver(self.outputs[fd], data)
            self.close_output(fd)
        if self.stdin_fd is not None:
            with contextlib.suppress(OSError):
                self.monitor.unwatch_fd(self.stdin_fd)
                os.close(self.stdin_fd)
            self.stdin_fd = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd is None:
            return
        self.stdin_buf += data
        self.flush_stdin()

    def flush_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None:
            return
        while self.stdin_buf:
            try:
                written = os.write(fd, self.stdin_buf)
            except BlockingIOError:
                break
            except OSError:
                self.stdin_buf.clear()
                break
            del self.stdin_buf[:written]
        if not self.stdin_buf and self.stdin_close_pending:
            self.close_stdin()
            return
        self.monitor.watch_fd(fd, self._stdin_mask(), self.on_output)

    def _stdin_mask(self) -> int:
        mask = selectors.EVENT_WRITE if self.stdin_buf else 0
        if self.stdin_fd is not None and self.stdin_fd in self.outputs:
            mask |= selectors.EVENT_READ  # the terminal master carries both directions
        return mask

    def close_stdin(self) -> None:
        if self.stdin_fd is None:
            return
        if self.stdin_buf:
            self.stdin_close_pending = True
            return
        if self.stdin_fd == self.tty_master:
            self.write_stdin(b"\x04")  # a terminal has no half-close: send EOF (VEOF) as a keyboard would
            return
        self.monitor.unwatch_fd(self.stdin_fd)
        os.close(self.stdin_fd)
        self.stdin_fd = None

    def resize(self, rows: int, cols: int) -> None:
        if self.tty_master is None:
            return
        self.tty_size = (rows, cols)
        import struct
        import termios

        with contextlib.suppress(OSError):
            fcntl.ioctl(self.tty_master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def attach_client(self, client: Client) -> None:
        self.clients.add(client)
        client.attached = self

    def detach_client(self, client: Client) -> None:
        self.clients.discard(client)
        if client in self.waiters:
            self.waiters.remove(client)
        if self.stdin_once and not self.clients:
            self.close_stdin()  # Docker's StdinOnce: `run -i` closes stdin when its client goes
