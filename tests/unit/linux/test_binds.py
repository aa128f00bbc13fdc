"""binds.py (user mounts) through the recording syscalls: clone flags, read-only, tmpfs options, error paths."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import binds, libc

from .recording import DIR, FILE, RecordingSyscalls

CLONE = libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC
MOVE = libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_EMPTY_PATH


@dataclass
class Mount:  # what binds.MountSpec (a Protocol) asks for; runtime/spec.py's MountSpec has the same fields
    type: str
    source: str
    target: str
    read_only: bool = False
    recursive: bool = True
    copy_up: bool = False
    options: list[str] = field(default_factory=list)


def test_open_sources_clones_recursively_unless_told_not_to_and_skips_tmpfs():
    sc = RecordingSyscalls()
    fds = binds.open_sources([Mount("bind", "/a", "/x"), Mount("bind", "/b", "/y", recursive=False),
                              Mount("tmpfs", "", "/t")], sc)
    assert fds[2] is None
    assert sc.named("open_tree") == [("open_tree", libc.AT_FDCWD, "/a", CLONE | libc.AT_RECURSIVE),
                                     ("open_tree", libc.AT_FDCWD, "/b", CLONE)]


def test_open_sources_failure_is_a_mount_error_naming_the_source_and_closes_what_was_opened():
    sc = RecordingSyscalls()
    sc.fail("open_tree", errno.EPERM, "/b")
    with pytest.raises(binds.MountError) as ei:
        binds.open_sources([Mount("bind", "/a", "/x"), Mount("bind", "/b", "/y")], sc)
    assert ei.value.errno == errno.EPERM and "bind source /b" in str(ei.value)
    assert sc.open_fds() == {}


def _attach(mounts: list[Mount], tree: dict, readonly_rootfs: bool = False) -> RecordingSyscalls:
    sc = RecordingSyscalls({"/proc": DIR, **tree}, devs={"/proc": 2})
    fds = binds.open_sources(mounts, sc)
    binds.attach(mounts, fds, readonly_rootfs, sc)
    assert sc.open_fds() == {}
    return sc


@pytest.mark.parametrize("recursive", [True, False])
def test_read_only_bind_is_set_on_the_detached_tree_before_it_is_moved(recursive):
    sc = _attach([Mount("bind", "/src", "/data", read_only=True, recursive=recursive)], {"/src": DIR, "/data": DIR})
    setattr_call, move = sc.named("mount_setattr", "move_mount")
    rec = libc.AT_RECURSIVE if recursive else 0
    assert setattr_call[1:] == (setattr_call[1], "", libc.AT_EMPTY_PATH | rec, libc.MOUNT_ATTR_RDONLY, 0, 0)
    assert move[1] == setattr_call[1] and move[5] == MOVE
    assert sc.fds.get(move[3]) is None


def test_read_write_bind_sets_no_attributes():
    sc = _attach([Mount("bind", "/src", "/data")], {"/src": DIR, "/data": DIR})
    assert sc.named("mount_setattr") == [] and len(sc.named("move_mount")) == 1


def test_missing_target_is_created_one_mkdirat_at_a_time_inside_the_root():
    sc = _attach([Mount("bind", "/src", "/a/b")], {"/src": DIR})
    mkdirs = sc.named("mkdir")
    assert [(c[1], c[2]) for c in mkdirs] == [("a", 0o755), ("b", 0o755)]
    assert all(c[-1]["dir_fd"] is not None for c in mkdirs)
    assert all(c[5] == libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS for c in sc.named("openat2"))


def test_file_bind_on_a_directory_is_refused():
    sc = RecordingSyscalls({"/proc": DIR, "/src": FILE, "/data": DIR}, devs={"/proc": 2})
    m = [Mount("bind", "/src", "/data")]
    with pytest.raises(binds.MountError) as ei:
        binds.attach(m, binds.open_sources(m, sc), False, sc)
    assert ei.value.errno == errno.EISDIR and sc.named("move_mount") == []
    assert sc.open_fds() == {}


def test_a_target_resolving_into_proc_is_refused():
    sc = RecordingSyscalls({"/proc": DIR, "/proc/sys": DIR, "/src": DIR}, devs={"/proc": 2, "/proc/sys": 2})
    m = [Mount("bind", "/src", "/proc/sys")]
    with pytest.raises(binds.MountError) as ei:
        binds.attach(m, binds.open_sources(m, sc), False, sc)
    assert ei.value.errno == errno.EPERM and sc.named("move_mount") == []


def test_tmpfs_options_become_fsconfig_strings_and_mount_attributes():
    m = Mount("tmpfs", "", "/t", options=["nosuid", "nodev", "noexec", "exec", "size=1m", "mode=1777"])
    sc = _attach([m], {"/t": DIR})
    strings = [(c[3], c[4]) for c in sc.named("fsconfig") if c[2] == libc.FSCONFIG_SET_STRING]
    assert strings == [("source", "tmpfs"), ("size", "1m"), ("mode", "1777")]
    assert sc.named("fsmount")[0][3] == libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV  # exec cleared noexec


def test_read_only_tmpfs_gets_the_read_only_attribute():
    sc = _attach([Mount("tmpfs", "", "/t", read_only=True)], {"/t": DIR})
    assert sc.named("fsmount")[0][3] == libc.MOUNT_ATTR_RDONLY


def test_read_only_rootfs_is_writable_while_mount_points_are_made_then_read_only_again():
    sc = _attach([Mount("bind", "/src", "/data")], {"/src": DIR}, readonly_rootfs=True)
    names = [c.name for c in sc.calls if c.name in ("mount", "mkdir", "move_mount")]
    assert names == ["mount", "mkdir", "move_mount", "mount"]
    assert sc.mounts() == [(None, "/", None, libc.MS_REMOUNT | libc.MS_BIND, None),
                           (None, "/", None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY, None)]


def test_eperm_on_move_mount_is_raised_and_every_fd_closed():
    sc = RecordingSyscalls({"/proc": DIR, "/src": DIR, "/data": DIR}, devs={"/proc": 2})
    sc.fail("move_mount", errno.EPERM)
    m = [Mount("bind", "/src", "/data"), Mount("bind", "/src", "/data2")]
    with pytest.raises(PermissionError):
        binds.attach(m, binds.open_sources(m, sc), False, sc)
    assert sc.open_fds() == {}
