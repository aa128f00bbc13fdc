"""A recording ``Syscalls`` for unit tests of the mount/rootfs code: no root, no kernel.

Every call is recorded (name, args, kwargs) and none reaches the kernel. A small in-memory tree (path ->
st_mode) answers stat/lstat/fstat/openat2 and is updated by mkdir/open(O_CREAT)/symlink/mknod/unlink, so
the code's decisions (make a directory, replace a symlink, mask a file or a directory) can be driven.
Fds are fake numbers (from 1000) that name a path; ``open_fds`` is what was never closed. ``fail(name,
errno)`` makes a call fail the way libc's wrappers do: ``OSError(errno, ...)`` (FileNotFoundError for
ENOENT and so on, as the os module raises).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from typing import Any

DIR = stat.S_IFDIR | 0o755
FILE = stat.S_IFREG | 0o644


@dataclass
class Call:
    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass
class _Failure:
    name: str
    err: int
    target: Any = None  # fail only calls naming this argument (a path, an fd); None: every call


class RecordingSyscalls:
    def __init__(self, tree: dict[str, int] | None = None, devs: dict[str, int] | None = None) -> None:
        self.calls: list[Call] = []
        self.tree: dict[str, int] = {"/": DIR, **(tree or {})}
        self.devs: dict[str, int] = dict(devs or {})  # st_dev per path (default 1)
        self.links: dict[str, str] = {}
        self.fds: dict[int, str] = {}
        self._next_fd = 1000
        self._failures: list[_Failure] = []

    # --- test API ---

    def fail(self, name: str, err: int, target: Any = None) -> None:
        self._failures.append(_Failure(name, err, target))

    def named(self, *names: str) -> list[tuple]:
        """(name, *args) of the calls with these names, in order (kwargs appended as a dict when present)."""
        return [(c.name, *c.args, *([c.kwargs] if c.kwargs else [])) for c in self.calls if c.name in names]

    def mounts(self) -> list[tuple]:
        return [c.args for c in self.calls if c.name == "mount"]

    def open_fds(self) -> dict[int, str]:
        return dict(self.fds)

    # --- plumbing ---

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(name, args, kwargs))
        for f in self._failures:
            if f.name == name and (f.target is None or f.target in args):
                raise OSError(f.err, f"{name}: {os.strerror(f.err)}")

    def _path(self, path: str, dir_fd: int | None = None) -> str:
        if dir_fd is not None and not path.startswith("/"):
            path = self.fds[dir_fd].rstrip("/") + "/" + path
        return os.path.normpath(path) if path != "/" else "/"

    def _fd(self, what: str) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = what
        return fd

    def _stat(self, path: str) -> os.stat_result:
        if path not in self.tree:
            raise OSError(errno.ENOENT, f"stat: {os.strerror(errno.ENOENT)}", path)
        return os.stat_result((self.tree[path], 1, self.devs.get(path, 1), 1, 0, 0, 0, 0, 0, 0))

    # --- mounts ---

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def open_tree(self, dfd: int, path: str, flags: int) -> int:
        self._record("open_tree", dfd, path, flags)
        return self._fd(path)

    def move_mount(self, from_dfd: int, from_path: str, to_dfd: int, to_path: str, flags: int) -> None:
        self._record("move_mount", from_dfd, from_path, to_dfd, to_path, flags)

    def mount_setattr(self, dfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                      propagation: int = 0) -> None:
        self._record("mount_setattr", dfd, path, flags, attr_set, attr_clr, propagation)

    def fsopen(self, fstype: str, flags: int = 1) -> int:
        self._record("fsopen", fstype, flags)
        return self._fd(f"fs:{fstype}")

    def fsconfig(self, fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
        self._record("fsconfig", fd, cmd, key, value, aux)

    def fsmount(self, fd: int, flags: int = 1, attr_flags: int = 0) -> int:
        self._record("fsmount", fd, flags, attr_flags)
        return self._fd(f"mnt:{self.fds[fd]}")

    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
        self._record("openat2", dirfd, path, flags, mode, resolve)
        full = self._path(path, dirfd)
        self._stat(full)
        return self._fd(full)

    # --- files and directories ---

    def open(self, path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        self._record("open", path, flags, mode, dir_fd=dir_fd)
        full = self._path(path, dir_fd)
        if full in self.tree and flags & os.O_CREAT and flags & os.O_EXCL:
            raise OSError(errno.EEXIST, "open: exists", full)
        if full not in self.tree:
            if not flags & os.O_CREAT:
                self._stat(full)
            self.tree[full] = stat.S_IFREG | mode
        return self._fd(full)

    def close(self, fd: int) -> None:
        self._record("close", fd)
        if self.fds.pop(fd, None) is None:
            raise OSError(errno.EBADF, f"close: fd {fd} is not open")

    def read(self, fd: int, length: int) -> bytes:
        self._record("read", fd, length)
        return b""

    def stat(self, path: str, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> os.stat_result:
        self._record("stat", path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        return self._stat(self._path(path, dir_fd))

    def lstat(self, path: str, *, dir_fd: int | None = None) -> os.stat_result:
        self._record("lstat", path, dir_fd=dir_fd)
        return self._stat(self._path(path, dir_fd))

    def fstat(self, fd: int) -> os.stat_result:
        self._record("fstat", fd)
        return self._stat(self.fds[fd])

    def mkdir(self, path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        self._record("mkdir", path, mode, dir_fd=dir_fd)
        full = self._path(path, dir_fd)
        if full in self.tree:
            raise OSError(errno.EEXIST, "mkdir: exists", full)
        self.tree[full] = stat.S_IFDIR | mode

    def makedirs(self, name: str, mode: int = 0o777, exist_ok: bool = False) -> None:
        self._record("makedirs", name, mode, exist_ok)
        parts = self._path(name).strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.tree.setdefault("/" + "/".join(parts[:i]), stat.S_IFDIR | mode)

    def rmdir(self, path: str, *, dir_fd: int | None = None) -> None:
        self._record("rmdir", path, dir_fd=dir_fd)
        self.tree.pop(self._path(path, dir_fd), None)

    def unlink(self, path: str, *, dir_fd: int | None = None) -> None:
        self._record("unlink", path, dir_fd=dir_fd)
        full = self._path(path, dir_fd)
        self._stat(full)
        del self.tree[full]
        self.links.pop(full, None)

    def symlink(self, src: str, dst: str, target_is_directory: bool = False, *, dir_fd: int | None = None) -> None:
        self._record("symlink", src, dst, dir_fd=dir_fd)
        full = self._path(dst, dir_fd)
        self.tree[full] = stat.S_IFLNK | 0o777
        self.links[full] = src

    def readlink(self, path: str, *, dir_fd: int | None = None) -> str:
        self._record("readlink", path, dir_fd=dir_fd)
        full = self._path(path, dir_fd)
        if full not in self.links:
            raise OSError(errno.EINVAL, "readlink: not a link", full)
        return self.links[full]

    def mknod(self, path: str, mode: int = 0o600, device: int = 0, *, dir_fd: int | None = None) -> None:
        self._record("mknod", path, mode, device, dir_fd=dir_fd)
        self.tree[self._path(path, dir_fd)] = mode

    def chown(self, path: str, uid: int, gid: int, *, dir_fd: int | None = None,
              follow_symlinks: bool = True) -> None:
        self._record("chown", path, uid, gid, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    def chdir(self, path: str) -> None:
        self._record("chdir", path)

    def fchdir(self, fd: int) -> None:
        self._record("fchdir", fd)
