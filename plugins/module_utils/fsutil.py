"""Crash-safe file helpers: atomic, durable writes and advisory locks shared by every store.

Durability: a command that reported something done must not lose it to a power cut. A rename is the
commit point of every record, so the new content is fsynced before it, and the directory holding the
new name after it (the rename itself is only durable once its directory is).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

# Engine state is root's alone: every directory the engine creates under its root gets this mode.
STATE_DIR_MODE = 0o700


def fsync_dir(path: str) -> None:
    """Make the entries of ``path`` (names created, renamed or removed in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """fsync every regular file and directory under ``path`` (not following symlinks), children first.

    For trees the engine wrote itself (an unpacked layer) just before committing them with a rename.
    """
    for _dirpath, _dirs, files, dir_fd in os.fwalk(path, topdown=False, follow_symlinks=False):
        for name in files:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue  # symlinks, devices, fifos: their inode is in the directory's journal commit
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.fsync(dir_fd)


def durable_rename(src: str, dst: str) -> None:
    """Rename ``src`` (already synced) to ``dst`` and make the new name durable."""
    os.rename(src, dst)
    fsync_dir(os.path.dirname(dst) or ".")


@contextlib.contextmanager
def atomic_file(path: str, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` complete, or not at all: written aside, synced, renamed into place,
    and the directory synced so the new name survives a power cut."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        durable_rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new content, never a mix."""
    with atomic_file(path, mode) as f:
        f.write(data)


def atomic_write_json(path: str, obj: Any, mode: int = 0o644) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n", mode)


def read_json(path: str, default: Any = None) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def locked(path: str, shared: bool = False) -> Iterator[int]:
    """Hold an flock on ``path`` (created if missing) for the duration of the block.

    flock locks die with their process, so a crashed command never leaves a stale lock behind.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def make_dir(path: str, mode: int = STATE_DIR_MODE) -> None:
    """mkdir with exactly ``mode`` whatever the caller's umask (FileExistsError if it exists), made durable.

    The chmod follows the mkdir: in between the mode is ``mode`` minus umask bits, never looser.
    """
    os.mkdir(path, mode)
    os.chmod(path, mode)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def ensure_dir(path: str, mode: int = STATE_DIR_MODE) -> str:
    """``path`` as a directory: missing components are made with exact modes (``mode`` for the last,
    root-only for the ones above it), whatever the umask. An existing directory is left as it is."""
    if os.path.isdir(path):
        return path
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        ensure_dir(parent, STATE_DIR_MODE)
    try:
        make_dir(path, mode)
    except FileExistsError:  # another command made it meanwhile (a file there is an error, as with makedirs)
        if not os.path.isdir(path):
            raise
    return path
