"""The syscall layer's calls that need root: namespaces, capabilities, interfaces, close_range (real kernel,
in forked children). Moved from tests/unit/linux/test_libc.py."""

from __future__ import annotations

import os
import socket

from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc

from .helpers import in_child


def test_unshare_uts_sethostname_is_private():
    def child():
        libc.unshare(libc.CLONE_NEWUTS)
        libc.sethostname("unit-test-host")
        return socket.gethostname()

    before = socket.gethostname()
    assert in_child(child) == "unit-test-host"
    assert socket.gethostname() == before


def test_capability_bounding_set_drop_and_capset():
    from ansible_collections.pycontainer.engine.plugins.module_utils.linux import capabilities

    def child():
        capabilities.restrict(capabilities.numbers(["CHOWN", "CAP_KILL"]))
        bounding = [c for c in range(capabilities.last_cap() + 1) if libc.prctl(libc.PR_CAPBSET_READ, c)]
        return bounding, libc.capget()[2]

    assert in_child(child) == ([0, 5], 0)  # inheritable cleared, as Docker since CVE-2022-24769


def test_interface_up_in_new_netns():
    def child():
        libc.unshare(libc.CLONE_NEWNET)
        libc.interface_up("lo")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))  # only works with lo up
        return s.getsockname()[0]

    assert in_child(child) == "127.0.0.1"


def test_close_range_cloexec():
    fd = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(fd, True)

    def child():
        libc.close_range(fd, fd, libc.CLOSE_RANGE_CLOEXEC)
        return os.get_inheritable(fd)

    try:
        assert in_child(child) is False
    finally:
        os.close(fd)
