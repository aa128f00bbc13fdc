"""The seam between the mount/rootfs logic and the kernel (youki's ``Syscall`` trait).

``rootfs``, ``mounts`` and ``binds`` make every kernel call that changes or inspects the container's mount
tree through a ``Syscalls`` object passed as ``sc`` (default ``REAL``). The real one is this class: its
attributes ARE the ``libc``/``os`` functions (staticmethods), so a call costs one attribute lookup more
than calling ``libc`` directly. Unit tests pass a recording implementation (``tests/unit/linux/recording.py``)
to check the sequence of calls and their flags, and to make one call fail with an errno, without root.

Only the calls the mount/rootfs code makes are here; fd-relative copying (``binds.copy_up``) works on fds it
was given and stays on ``os``.
"""

from __future__ import annotations

import os

from . import libc


class Syscalls:
    """The real kernel: libc's wrappers (raising ``OSError(errno, ...)``) and the os functions used."""

    # mounts (libc: cffi)
    mount = staticmethod(libc.mount)
    umount2 = staticmethod(libc.umount2)
    pivot_root = staticmethod(libc.pivot_root)
    open_tree = staticmethod(libc.open_tree)
    move_mount = staticmethod(libc.move_mount)
    mount_setattr = staticmethod(libc.mount_setattr)
    fsopen = staticmethod(libc.fsopen)
    fsconfig = staticmethod(libc.fsconfig)
    fsmount = staticmethod(libc.fsmount)
    openat2 = staticmethod(libc.openat2)
    # files and directories (os), as the mount code uses them (paths or dir_fd-relative)
    open = staticmethod(os.open)
    close = staticmethod(os.close)
    read = staticmethod(os.read)
    stat = staticmethod(os.stat)
    lstat = staticmethod(os.lstat)
    fstat = staticmethod(os.fstat)
    mkdir = staticmethod(os.mkdir)
    makedirs = staticmethod(os.makedirs)
    rmdir = staticmethod(os.rmdir)
    unlink = staticmethod(os.unlink)
    symlink = staticmethod(os.symlink)
    readlink = staticmethod(os.readlink)
    mknod = staticmethod(os.mknod)
    chown = staticmethod(os.chown)
    chdir = staticmethod(os.chdir)
    fchdir = staticmethod(os.fchdir)


REAL = Syscalls()
