"""User mounts of a container (-v, --mount, --tmpfs, image VOLUMEs), in the container's PID 1.

Two phases, so that neither side of a mount can be redirected:

1. ``open_sources`` runs BEFORE pivot_root, in the container's (private) mount namespace: each bind source
   (a host path, or a volume's ``_data``) is cloned into a detached mount with
   ``open_tree(OPEN_TREE_CLONE [| AT_RECURSIVE])``. From then on the source is an fd: nothing later done to
   host paths changes what gets mounted.
2. ``attach`` runs AFTER pivot_root and after the old root is detached, so the container's root is all there
   is: each target is opened with ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` (an image symlink
   like ``/data -> /../../etc`` resolves inside the root, and ``/proc/self/fd/N`` tricks are refused),
   missing components are created one ``mkdirat`` at a time the same way, and the mount is moved onto the
   resulting fd with ``move_mount(..., MOVE_MOUNT_T_EMPTY_PATH)``: no path is resolved twice. ``:ro`` is set
   on the detached tree first with ``mount_setattr`` (recursively, so sub-mounts of a bind are read-only
   too). tmpfs mounts are built with ``fsopen``/``fsmount`` and attached the same way.

Copy-up (Docker's volume population): when an empty volume is mounted where the image has a directory, the
image's content there is copied into the volume first, through fds with ``O_NOFOLLOW`` throughout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from . import libc
from .syscalls import REAL, Syscalls

TYPE_CHECKING = False  # typing costs ~4 ms to import; only type checkers need it here
if TYPE_CHECKING:
    from typing import Protocol

    class MountSpec(Protocol):
        """What a user mount must say (runtime/spec.py's MountSpec has it; linux/ may not import runtime/)."""

        type: str  # "bind" | "tmpfs"
        source: str
        target: str
        read_only: bool
        recursive: bool
        copy_up: bool
        options: list[str]

SYS_openat2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
MOVE_MOUNT_T_EMPTY_PATH = 0x40
AT_SYMLINK_NOFOLLOW = 0x100
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_MAX_LINKS = 40
_TMPFS_ATTRS = {
    "ro": libc.MOUNT_ATTR_RDONLY, "nosuid": libc.MOUNT_ATTR_NOSUID, "nodev": libc.MOUNT_ATTR_NODEV,
    "noexec": libc.MOUNT_ATTR_NOEXEC, "noatime": MOUNT_ATTR_NOATIME, "strictatime": MOUNT_ATTR_STRICTATIME,
    "nodiratime": MOUNT_ATTR_NODIRATIME,
}
_TMPFS_CLEARS = {"rw": "ro", "suid": "nosuid", "dev": "nodev", "exec": "noexec", "atime": "noatime",
                 "nostrictatime": "strictatime", "diratime": "nodiratime"}


class MountError(OSError):
    pass


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0, sc: Syscalls = REAL) -> int:
    return sc.openat2(dirfd, path, flags, mode, resolve)


# --- phase 1: before pivot_root ---------------------------------------------------------------------------


def open_sources(mounts: list[MountSpec], sc: Syscalls = REAL) -> list[int | None]:
    """A detached mount fd per bind (None for tmpfs). Closes what it opened if one fails."""
    fds: list[int | None] = []
    try:
        for m in mounts:
            if m.type != "bind":
                fds.append(None)
                continue
            rec = libc.AT_RECURSIVE if m.recursive else 0
            try:
                fd = sc.open_tree(libc.AT_FDCWD, m.source, libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC | rec)
            except OSError as exc:
                raise MountError(exc.errno, f"bind source {m.source}: {os.strerror(exc.errno or 0)}") from None
            fds.append(fd)
    except BaseException:
        close_all(fds, sc)
        raise
    return fds


def close_all(fds: list[int | None], sc: Syscalls = REAL) -> None:
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                sc.close(fd)


# --- phase 2: after pivot_root, old root detached ---------------------------------------------------------


def attach(mounts: list[MountSpec], fds: list[int | None], readonly_rootfs: bool = False,
           sc: Syscalls = REAL) -> None:
    """Mount each source on its target inside the current root (see the module docstring). Closes ``fds``."""
    root = sc.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if readonly_rootfs:
            # --read-only: mount points may still have to be created (runc does it before the remount too).
            sc.mount(None, "/", None, libc.MS_REMOUNT | libc.MS_BIND)
        proc_dev = sc.stat("/proc").st_dev
        for m, fd in zip(mounts, fds, strict=True):
            want_dir = fd is None or stat.S_ISDIR(sc.fstat(fd).st_mode)
            target = ensure_target(root, m.target, want_dir, sc=sc)
            try:
                st = sc.fstat(target)
                if st.st_dev == proc_dev:
                    raise MountError(errno.EPERM, f"mount destination {m.target} resolves into /proc: not allowed")
                if stat.S_ISDIR(st.st_mode) != want_dir:
                    kind = "directory" if want_dir else "file"
                    raise MountError(errno.ENOTDIR if want_dir else errno.EISDIR,
                                     f"cannot mount a {kind} on {m.target}: the container has a "
                                     f"{'file' if want_dir else 'directory'} there")
                if fd is None:
                    tmpfs = _tmpfs(m, sc)
                    try:
                        sc.move_mount(tmpfs, "", target, "", libc.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                    finally:
                        sc.close(tmpfs)
                    continue
                if m.copy_up and st.st_dev == sc.fstat(root).st_dev:
                    copy_up(target, fd)  # before the read-only flag: `-v name:/path:ro` is populated too
                if m.read_only:
                    rec = libc.AT_RECURSIVE if m.recursive else 0
                    sc.mount_setattr(fd, "", libc.AT_EMPTY_PATH | rec, attr_set=libc.MOUNT_ATTR_RDONLY)
                sc.move_mount(fd, "", target, "", libc.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
            finally:
                sc.close(target)
        if readonly_rootfs:
            sc.mount(None, "/", None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY)
    finally:
        sc.close(root)
        close_all(fds, sc)


def ensure_target(root: int, path: str, is_dir: bool, depth: int = 0, sc: Syscalls = REAL) -> int:
    """An O_PATH fd for ``path`` resolved inside ``root``, creating what is missing (directories on the way,
    then a directory or an empty file). A dangling symlink is followed, inside the root, and created."""
    if depth > _MAX_LINKS:
        raise MountError(errno.ELOOP, f"too many symbolic links resolving {path}")
    try:
        return sc.openat2(root, path, os.O_PATH, 0, _RESOLVE)
    except FileNotFoundError:
        pass
    parent_path, name = os.path.split(path.rstrip("/"))
    if not name or name in (".", ".."):
        raise MountError(errno.EINVAL, f"invalid mount destination {path}")
    parent = ensure_target(root, parent_path or "/", True, depth + 1, sc)
    try:
        try:
            if is_dir:
                sc.mkdir(name, 0o755, dir_fd=parent)
            else:
                sc.close(sc.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
        except FileExistsError:
            try:  # a dangling symlink (made by the image): create what it points to, inside the root
                link = sc.readlink(name, dir_fd=parent)
            except OSError:
                link = None
            if link is not None:
                base = parent_path or "/"
                return ensure_target(root, os.path.join(base, link), is_dir, depth + 1, sc)
        return sc.openat2(parent, name, os.O_PATH | os.O_NOFOLLOW, 0, _RESOLVE)
    finally:
        sc.close(parent)


def _tmpfs(m: MountSpec, sc: Syscalls = REAL) -> int:
    """A detached tmpfs with ``m.options`` (mount(8) style), as an fd for move_mount."""
    attrs = 0
    data: list[tuple[str, str]] = []
    for opt in m.options:
        key, sep, value = opt.partition("=")
        if sep:
            data.append((key, value))
        elif key in _TMPFS_ATTRS:
            attrs |= _TMPFS_ATTRS[key]
        elif key in _TMPFS_CLEARS:
            attrs &= ~_TMPFS_ATTRS[_TMPFS_CLEARS[key]]
    if m.read_only:
        attrs |= libc.MOUNT_ATTR_RDONLY
    fs = sc.fsopen("tmpfs")
    try:
        sc.fsconfig(fs, libc.FSCONFIG_SET_STRING, "source", "tmpfs")  # what mount(8) shows, as Docker's
        for key, value in data:
            sc.fsconfig(fs, libc.FSCONFIG_SET_STRING, key, value)
        sc.fsconfig(fs, libc.FSCONFIG_CMD_CREATE)
        return sc.fsmount(fs, libc.FSMOUNT_CLOEXEC, attrs)
    finally:
        sc.close(fs)


# --- copy-up -----------------------------------------------------------------------------------------------


def copy_up(target: int, volume: int) -> bool:
    """Fill an empty volume (detached mount fd) with the content of the directory ``target`` (O_PATH fd),
    owner and mode of the directory included, as Docker populates a new volume. False if it did nothing."""
    src = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)
    try:
        dst = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=volume)
        try:
            if os.listdir(dst):
                return False  # Docker copies only into an empty volume
            mask = os.umask(0)
            try:
                _copy_dir(src, dst)
                _copy_meta(os.fstat(src), src, dst)
            finally:
                os.umask(mask)
            return True
        finally:
            os.close(dst)
    finally:
        os.close(src)


_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_dir(src: int, dst: int) -> None:
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, _OPEN_DIR, dir_fd=src)
            try:
                d = os.open(name, _OPEN_DIR, dir_fd=dst)
                try:
                    _copy_dir(s, d)
                    _copy_meta(st, s, d)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif stat.S_ISREG(mode):
            s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            try:
                d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                            dir_fd=dst)
                try:
                    _copy_data(s, d)
                    _copy_meta(st, s, d)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)  # umask is 0 here: the mode is exact
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        # sockets are not copied (as Docker)


def _copy_data(s: int, d: int) -> None:
    try:
        while os.copy_file_range(s, d, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(s, 0, os.SEEK_SET)
    os.lseek(d, 0, os.SEEK_SET)
    os.ftruncate(d, 0)
    while chunk := os.read(s, 1 << 20):
        os.write(d, chunk)


def _copy_meta(st: os.stat_result, s: int, d: int) -> None:
    """Ownership, then mode (chown clears set-id bits), extended attributes, times: through the fds."""
    os.fchown(d, st.st_uid, st.st_gid)
    os.fchmod(d, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(s)
    except OSError:
        names = []
    for name in names:
        if name.startswith("trusted.overlay."):
            continue  # overlayfs bookkeeping of the image layers, meaningless in a volume
        with contextlib.suppress(OSError):
            os.setxattr(d, name, os.getxattr(s, name))
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


# --- the two steps of runtime/init.py (the fds live in the container's PID 1 between them) -------------------

_opened: list[int | None] = []


def open_step(ctx) -> None:
    """Before the root filesystem: clone the bind sources (see ``open_sources``)."""
    global _opened
    if ctx.spec.mounts:
        _opened = open_sources(ctx.spec.mounts)


def attach_step(ctx) -> None:
    """After the root filesystem: attach every user mount (see ``attach``)."""
    if ctx.spec.mounts:
        attach(ctx.spec.mounts, _opened, ctx.spec.readonly_rootfs)
