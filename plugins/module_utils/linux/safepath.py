"""Path resolution that cannot leave a root directory, for unpacking untrusted layer tarballs.

``openat2(RESOLVE_IN_ROOT)`` makes the kernel treat ``root_fd`` as ``/`` while resolving: ``..`` and
absolute symlinks are clamped at it, so no symlink (or chain of them) planted by an earlier tar entry can
take us outside. Where openat2 is missing (kernel < 5.6, seccomp'd) we fall back to a userspace walk
that follows symlinks itself, one component at a time, with the same clamping semantics.

The syscall itself is ``linux/libc.openat2`` (cffi). Users: the layer unpacker, ``userdb`` (exec in a running
container).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath

from . import libc

RESOLVE_NO_XDEV = libc.RESOLVE_NO_XDEV
RESOLVE_NO_MAGICLINKS = libc.RESOLVE_NO_MAGICLINKS
RESOLVE_NO_SYMLINKS = libc.RESOLVE_NO_SYMLINKS
RESOLVE_BENEATH = libc.RESOLVE_BENEATH
RESOLVE_IN_ROOT = libc.RESOLVE_IN_ROOT

_MAX_SYMLINKS = 40

_have_openat2: bool | None = None


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2) through the engine's cffi layer (``linux/libc.py``)."""
    return libc.openat2(dirfd, path, flags, mode, resolve)


def have_openat2() -> bool:
    global _have_openat2
    if _have_openat2 is None:
        try:
            os.close(openat2(os.open("/", os.O_PATH), ".", os.O_PATH, 0, RESOLVE_IN_ROOT))
            _have_openat2 = True
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EPERM):
                raise
            _have_openat2 = False
    return _have_openat2


def clean(path: str) -> str:
    """Lexically clean a tar member name to a path relative to the root ('' is the root itself).

    ``..`` cannot climb above the root and leading ``/`` is dropped, as containerd's fs.RootPath does.
    """
    cleaned = posixpath.normpath("/" + path)
    # normpath keeps a leading '//' (POSIX allows it a meaning); we do not.
    return cleaned.lstrip("/")


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH | os.O_DIRECTORY) -> int:
    """Open ``path`` (all symlinks resolved as if ``root_fd`` were ``/``); return a new fd."""
    path = clean(path) or "."
    if have_openat2():
        return openat2(root_fd, path, flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    return _walk_in_root(root_fd, path, flags)


def _walk_in_root(root_fd: int, path: str, flags: int) -> int:
    """Userspace RESOLVE_IN_ROOT: every step is openat(O_NOFOLLOW) relative to a directory fd."""
    pending = [c for c in path.split("/") if c and c != "."]
    stack = [os.dup(root_fd)]  # fds of the directories from the root down to the current one
    links = 0
    try:
        while pending:
            comp = pending.pop(0)
            if comp == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not pending
            try:
                st = os.stat(comp, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None
            if posixpath.stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(comp, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending[:0] = [c for c in target.split("/") if c and c != "."]
                continue
            if last:
                return os.open(comp, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            stack.append(os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1]))
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def open_parent(root_fd: int, path: str, create: bool = True, mode: int = 0o755) -> tuple[int, str]:
    """Return (fd of the parent directory of ``path`` inside the root, final component).

    Missing parents are created (tar streams need not list every directory). The final component is
    never resolved, so the caller acts on the entry itself, not on what a symlink there points to.
    """
    rel = clean(path)
    if not rel:
        raise ValueError("the root itself has no parent")
    parent, base = posixpath.split(rel)
    try:
        return open_in_root(root_fd, parent), base
    except FileNotFoundError:
        if not create:
            raise
    # Create the missing directories one by one. Each prefix is resolved again from the root, so a
    # symlink among them means what it would mean inside the container, and can never lead outside.
    comps = parent.split("/")
    fd = os.dup(root_fd)
    try:
        for i, comp in enumerate(comps):
            prefix = "/".join(comps[: i + 1])
            try:
                nfd = open_in_root(root_fd, prefix)
            except FileNotFoundError:
                # FileExistsError: e.g. a dangling symlink; the open below fails then, as it should.
                with contextlib.suppress(FileExistsError):
                    os.mkdir(comp, mode, dir_fd=fd)
                nfd = open_in_root(root_fd, prefix)
            os.close(fd)
            fd = nfd
        return fd, base
    except BaseException:
        os.close(fd)
        raise
