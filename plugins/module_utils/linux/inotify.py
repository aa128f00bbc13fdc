"""inotify: wait for a file to change without polling (used to follow the events journal)."""

from __future__ import annotations

import os
import select

from .libc import _check, _cstr, lib

IN_MODIFY = 0x00000002
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000


class DirectoryWatch:
    """Wakes on writes to, and files created or renamed into, one directory."""

    def __init__(self, directory: str) -> None:
        self.fd = _check(lib().inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
        try:
            _check(lib().inotify_add_watch(self.fd, _cstr(directory), IN_MODIFY | IN_CREATE | IN_MOVED_TO),
                   "inotify_add_watch", directory)
        except OSError:
            os.close(self.fd)
            raise

    def wait(self, timeout: float | None = None) -> bool:
        """Block until something changed (True) or ``timeout`` seconds passed (False)."""
        ready, _writable, _exceptional = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> DirectoryWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
