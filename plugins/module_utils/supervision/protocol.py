"""The wire format between commands and the monitor: framed messages on a Unix stream socket.

A frame is one type byte, a 4-byte big-endian length, then the payload:
``J`` a JSON control message (requests, replies, ``{"exit": n}``), ``1``/``2`` container stdout/stderr,
``0`` data for the container's stdin, ``C`` close the container's stdin.
"""

from __future__ import annotations

import json
import os
import socket
import struct

CONTROL, STDIN, STDOUT, STDERR, CLOSE_STDIN = b"J", b"0", b"1", b"2", b"C"
HEADER = struct.Struct(">cI")
SOCKET_NAME = "monitor.sock"


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def control(message: dict) -> bytes:
    return frame(CONTROL, json.dumps(message, separators=(",", ":")).encode())


def split_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Remove and return the complete frames at the start of ``buffer``."""
    frames = []
    offset = 0
    while len(buffer) - offset >= HEADER.size:
        kind, length = HEADER.unpack_from(buffer, offset)
        end = offset + HEADER.size + length
        if len(buffer) < end:
            break
        frames.append((kind, bytes(buffer[offset + HEADER.size:end])))
        offset = end
    del buffer[:offset]
    return frames


class Connection:
    """The command's side: blocking frame I/O on a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.queue: list[tuple[bytes, bytes]] = []

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(frame(kind, payload))

    def send_control(self, message: dict) -> None:
        self.sock.sendall(control(message))

    def fill(self) -> bool:
        """Read once from the socket; False at end-of-file."""
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buffer += data
        self.queue += split_frames(self.buffer)
        return True

    def next_frame(self) -> tuple[bytes, bytes] | None:
        """The next frame (blocking), or None at end-of-file."""
        while not self.queue:
            if not self.fill():
                return None
        return self.queue.pop(0)

    def next_control(self) -> dict | None:
        """The next control message, skipping nothing: a data frame here is a protocol error."""
        item = self.next_frame()
        if item is None:
            return None
        kind, payload = item
        if kind != CONTROL:
            raise ValueError(f"unexpected frame {kind!r} from the monitor")
        return json.loads(payload)

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()


def socket_path(run_dir: str) -> str:
    return os.path.join(run_dir, SOCKET_NAME)
