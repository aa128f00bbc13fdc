"""The engine's one events API: a journal on disk that every command appends to.

Daemonless, so there is no event bus: each action appends one JSON line (Docker's event shape) to
``<root>/events/events.jsonl`` with a single O_APPEND write, which the kernel never interleaves with another
process's. The journal is bounded: past ``max_bytes`` it is rotated (under a lock) to ``events.1.jsonl``,
and the older generation is dropped, so readers see at most two files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .fsutil import ensure_dir, locked

DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class DirectoryWaiter(Protocol):
    """What ``follow`` needs of a directory watch (``linux.inotify.DirectoryWatch``)."""

    def wait(self, timeout: float | None = None) -> bool: ...

    def __enter__(self) -> DirectoryWaiter: ...

    def __exit__(self, *exc: object) -> None: ...


class EventJournal:
    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES, max_age_s: int = 0,
                 on_record: Callable[[dict], None] | None = None) -> None:
        self.directory = directory
        self.on_record = on_record
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s  # 0: events live as long as the size bound lets them
        self.path = os.path.join(directory, "events.jsonl")
        self.rotated_path = os.path.join(directory, "events.1.jsonl")

    def record(self, type: str, action: str, actor_id: str, attributes: dict[str, Any] | None = None) -> dict:
        """Append one event and return it. Recording never fails the action it describes."""
        now_ns = time.time_ns()
        event = {
            "Type": type,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": {k: str(v) for k, v in (attributes or {}).items()}},
            "scope": "local",
            "time": now_ns // 1_000_000_000,
            "timeNano": now_ns,
        }
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        try:
            ensure_dir(self.directory, 0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > self.max_bytes:
                self._rotate()
            if self.max_age_s:
                self._drop_aged_generation(now_ns)
        except OSError:
            pass  # a full disk must not turn a successful `rm` into a failure
        if self.on_record is not None:
            self.on_record(event)
        return event

    def _rotate(self) -> None:
        with locked(os.path.join(self.directory, ".lock")):
            try:
                if os.stat(self.path).st_size > self.max_bytes:
                    os.rename(self.path, self.rotated_path)
            except FileNotFoundError:
                pass

    def _age_floor(self) -> int:
        """The oldest event time still shown: older ones are past the age bound."""
        return time.time_ns() - self.max_age_s * 1_000_000_000 if self.max_age_s else 0

    def _drop_aged_generation(self, now_ns: int) -> None:
        """The older file goes once even its newest event (its mtime) is past the age bound."""
        try:
            if os.stat(self.rotated_path).st_mtime_ns < now_ns - self.max_age_s * 1_000_000_000:
                with locked(os.path.join(self.directory, ".lock")):
                    os.unlink(self.rotated_path)
        except FileNotFoundError:
            pass

    def follow(self, watch_directory: Callable[[str], DirectoryWaiter], since_ns: int = 0) -> Iterator[dict]:
        """Events since ``since_ns``, then each new one as it is appended, until the caller stops iterating.

        Woken by ``watch_directory`` (``linux.inotify.DirectoryWatch``: the caller passes it, as basics sit below
        linux/) on the journal's directory, never by polling; survives rotation.
        """
        since_ns = max(since_ns, self._age_floor())
        ensure_dir(self.directory, 0o700)
        # Watch first, so nothing appended while the backlog is read can be missed.
        with watch_directory(self.directory) as watch:
            current = self._open_current()
            try:
                inode = os.fstat(current.fileno()).st_ino if current else None
                if current is None or inode != _inode(self.rotated_path):
                    yield from self._events_in(self.rotated_path, since_ns)
                pending = b""
                while True:
                    if current is None:
                        current = self._open_current()
                        inode = os.fstat(current.fileno()).st_ino if current else None
                    chunk = current.read() if current else b""
                    if chunk:
                        pending += chunk
                        *lines, pending = pending.split(b"\n")
                        for raw in lines:
                            event = _parse(raw)
                            if event and event.get("timeNano", 0) >= since_ns:
                                yield event
                        continue
                    if current is not None and _inode(self.path) != inode:
                        current.close()  # rotated: what was left in it has been read above
                        current, pending = None, b""
                        continue
                    watch.wait()
            finally:
                if current is not None:
                    current.close()

    def _open_current(self):
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            return None

    def _events_in(self, path: str, since_ns: int) -> Iterator[dict]:
        try:
            with open(path, "rb") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return
        for raw in lines:
            event = _parse(raw)
            if event and event.get("timeNano", 0) >= since_ns:
                yield event

    def read(self, since_ns: int = 0, until_ns: int | None = None) -> Iterator[dict]:
        """Events in the journal between ``since_ns`` and ``until_ns`` (nanoseconds since the epoch)."""
        since_ns = max(since_ns, self._age_floor())
        for path in (self.rotated_path, self.path):
            for event in self._events_in(path, since_ns):
                if until_ns is None or event.get("timeNano", 0) <= until_ns:
                    yield event


def _parse(raw: bytes) -> dict | None:
    try:
        return json.loads(raw)
    except ValueError:
        return None  # a line cut by a crash mid-write


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
