"""Mount helpers, and the overlay mount of a container's root filesystem.

Overlay and many layers: mount(2) takes its options in one page (4096 bytes), which ~40 layers under a
deep engine root already exceed. Since Linux 6.8, the new mount API accepts each lower layer separately
(``fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", path)``), so there is no length limit and no need to
escape ``:`` or ``,`` in paths. That is the primary path here. Older kernels (fsopen missing, or
"lowerdir+" rejected with EINVAL) fall back to the classic option string, relative to the layers'
common parent directory (so each layer costs only its relative path), and fail clearly if it still does
not fit.
"""

from __future__ import annotations

import errno
import os

from . import libc
from .syscalls import REAL, Syscalls

PAGE_LIMIT = 4095  # the option string must fit a page including its NUL


def make_private(path: str = "/", sc: Syscalls = REAL) -> None:
    """Stop mount events propagating between this mount namespace and the host's."""
    sc.mount(None, path, None, libc.MS_REC | libc.MS_PRIVATE)


def bind(source: str, target: str, readonly: bool = False, recursive: bool = False, flags: int = 0,
         sc: Syscalls = REAL) -> None:
    sc.mount(source, target, None, libc.MS_BIND | (libc.MS_REC if recursive else 0))
    if readonly or flags:
        # Bind mounts ignore per-mount flags on creation: they need a remount of the bind itself.
        ro = libc.MS_RDONLY if readonly else 0
        sc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_BIND | ro | flags)


def remount_readonly(target: str, sc: Syscalls = REAL) -> None:
    sc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY)


def _fs_log(fd: int, sc: Syscalls = REAL) -> str:
    """The kernel's error messages for a filesystem context (``e overlay: ...`` lines)."""
    lines = []
    try:
        for _i in range(8):
            lines.append(sc.read(fd, 512).decode(errors="replace").strip())
    except OSError:
        pass
    return "; ".join(line for line in lines if line)


def mount_overlay(lower_dirs: list[str], upper: str, work: str, target: str, readonly: bool = False,
                  sc: Syscalls = REAL) -> None:
    """Mount an overlay on ``target``. ``lower_dirs`` is BOTTOM layer first (image order)."""
    if not lower_dirs:
        raise ValueError("overlay needs at least one lower layer")
    top_first = list(reversed(lower_dirs))
    try:
        _mount_overlay_fsconfig(top_first, upper, work, target, readonly, sc)
    except _OldKernel:
        _mount_overlay_legacy(top_first, upper, work, target, readonly, sc)


class _OldKernel(Exception):
    pass


def _mount_overlay_fsconfig(top_first: list[str], upper: str, work: str, target: str, readonly: bool,
                            sc: Syscalls = REAL) -> None:
    try:
        fs = sc.fsopen("overlay")
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM):
            raise _OldKernel from None
        raise
    try:
        try:
            for i, layer in enumerate(top_first):
                try:
                    sc.fsconfig(fs, libc.FSCONFIG_SET_STRING, "lowerdir+", layer)
                except OSError as exc:
                    if i == 0 and exc.errno == errno.EINVAL and "lowerdir+" in _fs_log(fs, sc):
                        raise _OldKernel from None
                    raise OSError(exc.errno, f"layer {layer}: {exc.strerror}") from None
            sc.fsconfig(fs, libc.FSCONFIG_SET_STRING, "upperdir", upper)
            sc.fsconfig(fs, libc.FSCONFIG_SET_STRING, "workdir", work)
            sc.fsconfig(fs, libc.FSCONFIG_CMD_CREATE)
            mnt = sc.fsmount(fs, libc.FSMOUNT_CLOEXEC, libc.MOUNT_ATTR_RDONLY if readonly else 0)
            try:
                sc.move_mount(mnt, "", libc.AT_FDCWD, target, libc.MOVE_MOUNT_F_EMPTY_PATH)
            finally:
                sc.close(mnt)
        except OSError as exc:
            log = _fs_log(fs, sc)
            detail = f" ({log})" if log else ""
            raise OSError(exc.errno, f"overlay mount on {target}: {exc.strerror}{detail}") from None
    finally:
        sc.close(fs)


def _mount_overlay_legacy(top_first: list[str], upper: str, work: str, target: str, readonly: bool,
                          sc: Syscalls = REAL) -> None:
    for p in (*top_first, upper, work):
        if any(c in p for c in ":,\\"):
            raise OSError(errno.EINVAL, f"overlay: layer path {p!r} contains ':', ',' or '\\'")
    opts = f"lowerdir={':'.join(top_first)},upperdir={upper},workdir={work}"
    cwd = None
    if len(opts) > PAGE_LIMIT:
        base = os.path.commonpath([*top_first, upper, work])
        rel = [os.path.relpath(p, base) for p in top_first]
        opts = (f"lowerdir={':'.join(rel)},upperdir={os.path.relpath(upper, base)},"
                f"workdir={os.path.relpath(work, base)}")
        if len(opts) > PAGE_LIMIT:
            raise OSError(errno.E2BIG, f"overlay: {len(top_first)} layers exceed the mount options page")
        cwd = sc.open(".", os.O_RDONLY | os.O_CLOEXEC)
        target = os.path.abspath(target)
        sc.chdir(base)
    try:
        sc.mount("overlay", target, "overlay", libc.MS_RDONLY if readonly else 0, opts)
    finally:
        if cwd is not None:
            sc.fchdir(cwd)
            sc.close(cwd)


def mountpoints_under(path: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, deepest first (the unmount order)."""
    path = os.path.realpath(path)
    found = []
    with open(mountinfo, "rb") as f:
        for line in f:
            mp = _unescape(line.split(b" ", 5)[4].decode(errors="surrogateescape"))
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def _unescape(field: str) -> str:
    # mountinfo octal-escapes space, tab, newline and backslash
    if "\\" not in field:
        return field
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def umount_all_under(path: str, sc: Syscalls = REAL) -> None:
    for mp in mountpoints_under(path):
        try:
            sc.umount2(mp, libc.MNT_DETACH)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise
