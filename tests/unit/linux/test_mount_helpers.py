"""mounts.py through the recording syscalls: propagation, bind flags, overlay (new API and legacy), unmounting."""

from __future__ import annotations

import errno

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc, mounts

from .recording import RecordingSyscalls


def test_make_private_is_recursive_private_propagation():
    sc = RecordingSyscalls()
    mounts.make_private("/", sc)
    assert sc.mounts() == [(None, "/", None, libc.MS_REC | libc.MS_PRIVATE, None)]


@pytest.mark.parametrize(("readonly", "recursive", "flags", "expected"), [
    (False, False, 0, [("/s", "/t", None, libc.MS_BIND, None)]),
    (False, True, 0, [("/s", "/t", None, libc.MS_BIND | libc.MS_REC, None)]),
    (True, True, 0, [("/s", "/t", None, libc.MS_BIND | libc.MS_REC, None),
                     (None, "/t", None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY, None)]),
    (False, False, libc.MS_NOSUID, [("/s", "/t", None, libc.MS_BIND, None),
                                    (None, "/t", None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_NOSUID, None)]),
])
def test_bind_flags_need_a_remount_of_the_bind(readonly, recursive, flags, expected):
    sc = RecordingSyscalls()
    mounts.bind("/s", "/t", readonly=readonly, recursive=recursive, flags=flags, sc=sc)
    assert sc.mounts() == expected


def test_remount_readonly():
    sc = RecordingSyscalls()
    mounts.remount_readonly("/x", sc)
    assert sc.mounts() == [(None, "/x", None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY, None)]


@pytest.mark.parametrize("readonly", [False, True])
def test_overlay_new_api_adds_lower_layers_top_first(readonly):
    sc = RecordingSyscalls()
    mounts.mount_overlay(["/l/bottom", "/l/mid", "/l/top"], "/c/upper", "/c/work", "/c/merged", readonly, sc)
    conf = [(c[3], c[4]) for c in sc.named("fsconfig")]
    assert conf == [("lowerdir+", "/l/top"), ("lowerdir+", "/l/mid"), ("lowerdir+", "/l/bottom"),
                    ("upperdir", "/c/upper"), ("workdir", "/c/work"), (None, None)]
    assert sc.named("fsmount")[0][3] == (libc.MOUNT_ATTR_RDONLY if readonly else 0)
    move = sc.named("move_mount")[0]
    assert move[3:] == (libc.AT_FDCWD, "/c/merged", libc.MOVE_MOUNT_F_EMPTY_PATH)
    assert sc.open_fds() == {}


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM])
def test_overlay_falls_back_to_the_option_string_without_fsopen(err):
    sc = RecordingSyscalls()
    sc.fail("fsopen", err)
    mounts.mount_overlay(["/l/a", "/l/b"], "/c/upper", "/c/work", "/c/merged", True, sc)
    assert sc.mounts() == [("overlay", "/c/merged", "overlay", libc.MS_RDONLY,
                            "lowerdir=/l/b:/l/a,upperdir=/c/upper,workdir=/c/work")]


def test_overlay_other_errors_are_raised_with_the_target_and_the_fs_context_closed():
    sc = RecordingSyscalls()
    sc.fail("fsmount", errno.ENOMEM)
    with pytest.raises(OSError) as ei:
        mounts.mount_overlay(["/l/a"], "/c/upper", "/c/work", "/c/merged", False, sc)
    assert ei.value.errno == errno.ENOMEM and "/c/merged" in str(ei.value)
    assert sc.named("mount") == [] and sc.open_fds() == {}


def test_overlay_legacy_refuses_separators_in_layer_paths():
    sc = RecordingSyscalls()
    sc.fail("fsopen", errno.ENOSYS)
    with pytest.raises(OSError) as ei:
        mounts.mount_overlay(["/l/a:b"], "/c/upper", "/c/work", "/c/merged", False, sc)
    assert ei.value.errno == errno.EINVAL and sc.mounts() == []


def test_umount_all_under_deepest_first_ignoring_gone_mounts(tmp_path, monkeypatch):
    info = tmp_path / "mountinfo"
    info.write_text("".join(f"{i} 1 0:1 / {mp} rw - tmpfs tmpfs rw\n" for i, mp in
                            enumerate(["/", "/c/x", "/c/x/merged", "/c/x/merged/proc", "/c/xy"])))
    real = mounts.mountpoints_under
    assert real("/c/x", str(info)) == ["/c/x/merged/proc", "/c/x/merged", "/c/x"]
    monkeypatch.setattr(mounts, "mountpoints_under", lambda path: real(path, str(info)))
    sc = RecordingSyscalls()
    sc.fail("umount2", errno.EINVAL, "/c/x/merged")  # already gone: ignored
    mounts.umount_all_under("/c/x", sc)
    assert sc.named("umount2") == [("umount2", mp, libc.MNT_DETACH)
                                   for mp in ("/c/x/merged/proc", "/c/x/merged", "/c/x")]
    sc.fail("umount2", errno.EBUSY, "/c/x")
    with pytest.raises(OSError) as ei:
        mounts.umount_all_under("/c/x", sc)
    assert ei.value.errno == errno.EBUSY
