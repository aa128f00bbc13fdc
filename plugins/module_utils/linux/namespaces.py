"""Namespaces: which ones a container gets, and how its PID 1 is created directly as our child.

The caller calls ``unshare(CLONE_NEWPID)`` on itself, forks (the child is PID 1 of the new pid namespace
and a *direct* child of the caller, so a plain ``waitpid`` yields its real exit status, with no
intermediate process or subreaper needed), then moves its own "pid namespace for children" back with
``setns``. ``unshare(CLONE_NEWPID)`` and ``setns`` only touch the calling thread, so other threads of a
long-lived caller (a supervisor, later) are unaffected.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from . import libc

NAMESPACE_FLAGS = {
    "mount": libc.CLONE_NEWNS,
    "uts": libc.CLONE_NEWUTS,
    "ipc": libc.CLONE_NEWIPC,
    "pid": libc.CLONE_NEWPID,
    "network": libc.CLONE_NEWNET,
    "cgroup": libc.CLONE_NEWCGROUP,
    "user": libc.CLONE_NEWUSER,
}


def flags_for(names: list[str] | tuple[str, ...]) -> int:
    flags = 0
    for name in names:
        flags |= NAMESPACE_FLAGS[name]
    return flags


@contextlib.contextmanager
def new_pid_namespace_for_children() -> Iterator[None]:
    """Within the block, processes forked by this thread start a new pid namespace (the first is its PID 1).

    On exit the thread's pid namespace for children is restored, whatever happened.
    """
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.unshare(libc.CLONE_NEWPID)
        try:
            yield  # (a child forked here must _exit, never leave the block)
        finally:
            libc.setns(own, libc.CLONE_NEWPID)
    finally:
        os.close(own)


def unshare(flags: int) -> None:
    libc.unshare(flags)


def join(pid: int, names: list[str] | tuple[str, ...]) -> None:
    """Enter the given namespaces of process ``pid`` (for ``exec`` later; mount last as Docker does)."""
    fds = [(os.open(f"/proc/{pid}/ns/{_PROC_NAME[n]}", os.O_RDONLY | os.O_CLOEXEC), n) for n in names]
    try:
        for fd, name in sorted(fds, key=lambda p: p[1] == "mount"):
            libc.setns(fd, NAMESPACE_FLAGS[name])
    finally:
        for fd, _name in fds:
            os.close(fd)


_PROC_NAME = {"mount": "mnt", "uts": "uts", "ipc": "ipc", "pid": "pid", "network": "net", "cgroup": "cgroup",
              "user": "user"}


@contextlib.contextmanager
def pid_namespace_of(pid: int) -> Iterator[None]:
    """Within the block, processes forked by this thread are born in the pid namespace of ``pid``."""
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(target, libc.CLONE_NEWPID)
        finally:
            os.close(target)
        try:
            yield
        finally:
            libc.setns(own, libc.CLONE_NEWPID)
    finally:
        os.close(own)
