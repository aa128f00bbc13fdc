"""The caller's end of an attach: copy between our stdio and the container's, through the monitor.

``pump`` serves foreground ``run``, ``start -a`` and ``attach``: terminal in raw mode with ``-t`` (window
size followed on SIGWINCH), detach keys (ctrl-p ctrl-q), and Docker's sig-proxy (signals we get go to the
container) without a terminal. ``collect`` gathers output for callers without a terminal (the module).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from typing import TYPE_CHECKING

from ..errors import EngineError
from . import protocol

if TYPE_CHECKING:
    from ..records.containers import ContainerRecord

DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class AttachSession:
    """A command attached to a container's stdio through the monitor (``pump``/``collect`` copy it)."""

    def __init__(self, conn, record: ContainerRecord, pid: int) -> None:
        self.conn = conn
        self.record = record
        self.pid = pid

    @property
    def tty(self) -> bool:
        return self.record.config.tty

    def close(self) -> None:
        self.conn.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[written:]


def _window_size(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def terminal_size(stdin_fd: int | None) -> tuple[int, int] | None:
    """(rows, columns) of our terminal: stdin's when it is one, else stdout's; None without a terminal."""
    if stdin_fd is not None and os.isatty(stdin_fd):
        return _window_size(stdin_fd)
    return _window_size(1)


def pump(session: AttachSession, stdin_fd: int | None, stdout_fd: int = 1, stderr_fd: int = 2,
         detach_keys: bytes = DETACH_KEYS, proxy_signals: bool = True) -> int | None:
    """Run until the container exits (its exit code) or the user detaches (None)."""
    conn = session.conn
    tty = session.tty
    terminal_fd = stdin_fd if stdin_fd is not None and os.isatty(stdin_fd) else None
    saved_handlers: dict[int, object] = {}
    restore_mode = None

    def send_resize(*_args) -> None:
        size = _window_size(terminal_fd if terminal_fd is not None else stdout_fd)
        if size:
            with contextlib.suppress(OSError):
                conn.send_control({"op": "resize", "rows": size[0], "cols": size[1]})

    def forward(signum, _frame) -> None:
        with contextlib.suppress(OSError):
            conn.send_control({"op": "kill", "signal": signum, "manual": False})

    try:
        if tty:
            if terminal_fd is not None:
                import termios
                import tty as ttymod

                restore_mode = termios.tcgetattr(terminal_fd)
                ttymod.setraw(terminal_fd)
            send_resize()
            with contextlib.suppress(ValueError):
                saved_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, send_resize)
        elif proxy_signals:
            for sig in PROXIED_SIGNALS:
                with contextlib.suppress(ValueError):  # not the main thread: no proxy, fine
                    saved_handlers[sig] = signal.signal(sig, forward)
        return _loop(conn, stdin_fd, stdout_fd, stderr_fd, detach_keys if tty else b"")
    finally:
        for sig, handler in saved_handlers.items():
            signal.signal(sig, handler)
        if restore_mode is not None:
            import termios

            termios.tcsetattr(terminal_fd, termios.TCSADRAIN, restore_mode)


def _loop(conn: protocol.Connection, stdin_fd: int | None, stdout_fd: int, stderr_fd: int,
          detach_keys: bytes) -> int | None:
    held = b""
    while True:
        while conn.queue:
            kind, payload = conn.queue.pop(0)
            if kind == protocol.STDOUT:
                _write_all(stdout_fd, payload)
            elif kind == protocol.STDERR:
                _write_all(stderr_fd, payload)
            elif kind == protocol.CONTROL:
                import json

                message = json.loads(payload)
                if "exit" in message:
                    from .. import trace

                    trace.add(message.get("trace") or [], "monitor exit: ")
                    return int(message["exit"])
                if message.get("ok") is False:
                    raise EngineError(message.get("error") or "attach failed")
        readable = [conn.fileno()] + ([stdin_fd] if stdin_fd is not None else [])
        ready, _writable, _exceptional = select.select(readable, [], [])
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, 1 << 16)
            if not data:
                stdin_fd = None
                with contextlib.suppress(OSError):
                    conn.send(protocol.CLOSE_STDIN)
            else:
                if detach_keys:
                    data = held + data
                    if detach_keys in data:
                        before = data[: data.index(detach_keys)]
                        if before:
                            conn.send(protocol.STDIN, before)
                        return None
                    held = b""
                    if data.endswith(detach_keys[:1]):
                        data, held = data[:-1], data[-1:]
                if data:
                    with contextlib.suppress(OSError):
                        conn.send(protocol.STDIN, data)
        if conn.fileno() in ready:
            try:
                alive = conn.fill()
            except ConnectionResetError:
                alive = False
            if not alive and not conn.queue:
                raise EngineError("lost the connection to the container monitor")


def collect(session: AttachSession) -> tuple[int, bytes]:
    """Wait for the exit; stdout and stderr interleaved as they arrived."""
    chunks: list[bytes] = []
    conn = session.conn
    while True:
        item = conn.next_frame()
        if item is None:
            raise EngineError("lost the connection to the container monitor")
        kind, payload = item
        if kind in (protocol.STDOUT, protocol.STDERR):
            chunks.append(payload)
        elif kind == protocol.CONTROL:
            import json

            message = json.loads(payload)
            if "exit" in message:
                return int(message["exit"]), b"".join(chunks)


def relay_terminal(master: int, pid: int, stdin_fd: int | None, detach_keys: bytes = DETACH_KEYS) -> bool:
    """`exec -t`: copy between our terminal and the process's pty until the process closes it.

    True when the user detached (the process goes on)."""
    import struct
    import termios

    terminal_fd = stdin_fd if stdin_fd is not None and os.isatty(stdin_fd) else None
    restore_mode = None

    def resize(*_args) -> None:
        size = _window_size(terminal_fd if terminal_fd is not None else 1)
        if size:
            with contextlib.suppress(OSError):
                import fcntl

                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))

    saved = None
    try:
        if terminal_fd is not None:
            import tty as ttymod

            restore_mode = termios.tcgetattr(terminal_fd)
            ttymod.setraw(terminal_fd)
        resize()
        with contextlib.suppress(ValueError):
            saved = signal.signal(signal.SIGWINCH, resize)
        while True:
            readable = [master] + ([stdin_fd] if stdin_fd is not None else [])
            ready, _writable, _exceptional = select.select(readable, [], [])
            if master in ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:
                    data = b""
                if not data:
                    return False
                _write_all(1, data)
            if stdin_fd is not None and stdin_fd in ready:
                data = os.read(stdin_fd, 1 << 16)
                if not data:
                    stdin_fd = None
                    _write_all(master, b"\x04")
                    continue
                if detach_keys and detach_keys in data:
                    return True
                _write_all(master, data)
    finally:
        os.close(master)
        if saved is not None:
            signal.signal(signal.SIGWINCH, saved)
        if restore_mode is not None:
            termios.tcsetattr(terminal_fd, termios.TCSADRAIN, restore_mode)
