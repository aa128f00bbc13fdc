"""rootfs.py through the recording syscalls: the order of the pivot, the flags of every mount, the error paths.

No root and no kernel: what is checked is what the engine asks the kernel for (integration tests check what
a container then sees: tests/integration/test_security_rootfs.py, test_isolation.py).
"""

from __future__ import annotations

import errno
import stat

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc, rootfs

from .recording import DIR, FILE, RecordingSyscalls

NNN = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
RO = libc.MS_RDONLY


def test_pivot_mounts_dev_tmpfs_then_parks_the_old_root_under_it():
    sc = RecordingSyscalls({"/r": DIR, "/r/dev": DIR})
    rootfs.pivot("/r", sc)
    assert sc.named("mount", "mkdir", "pivot_root", "chdir") == [
        ("mount", "tmpfs", "/r/dev", "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME, "mode=755,size=65536k"),
        ("mkdir", "/r/dev/.oldroot", 0o700, {"dir_fd": None}),
        ("pivot_root", "/r", "/r/dev/.oldroot"),
        ("chdir", "/"),
    ]


def test_pivot_replaces_an_image_symlink_at_dev_with_a_directory():
    sc = RecordingSyscalls({"/r": DIR, "/r/dev": stat.S_IFLNK | 0o777})
    rootfs.pivot("/r", sc)
    first = sc.named("unlink", "mkdir", "mount")[:3]
    assert [c[:2] for c in first] == [("unlink", "/r/dev"), ("mkdir", "/r/dev"), ("mount", "tmpfs")]


def test_setup_dev_binds_host_devices_and_mounts_pts_shm_mqueue_restricted():
    sc = RecordingSyscalls({"/dev": DIR})
    rootfs.setup_dev(64 << 20, sc)
    mounts = sc.mounts()
    binds = [m for m in mounts if m[3] == libc.MS_BIND]
    assert [(m[0], m[1]) for m in binds] == [(f"/dev/.oldroot/dev/{d}", f"/dev/{d}") for d in rootfs.HOST_DEVICES]
    others = {m[1]: m for m in mounts if m[3] != libc.MS_BIND}
    assert others["/dev/pts"] == ("devpts", "/dev/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
                                  "newinstance,ptmxmode=0666,mode=0620,gid=5")
    assert others["/dev/shm"] == ("shm", "/dev/shm", "tmpfs", NNN, "mode=1777,size=65536k")
    assert others["/dev/mqueue"] == ("mqueue", "/dev/mqueue", "mqueue", NNN, None)
    assert sc.links["/dev/fd"] == "/proc/self/fd" and sc.links["/dev/ptmx"] == "pts/ptmx"


@pytest.mark.parametrize("privileged", [False, True])
def test_proc_and_sys_are_nosuid_nodev_noexec_and_sys_read_only_unless_privileged(privileged):
    sc = RecordingSyscalls({"/proc": DIR, "/sys": DIR})
    rootfs.setup_proc_sys(privileged, sc)
    assert sc.mounts() == [
        ("proc", "/proc", "proc", NNN, None),
        ("sysfs", "/sys", "sysfs", NNN if privileged else NNN | RO, None),
    ]


def test_proc_replaced_when_the_image_made_it_a_file():
    sc = RecordingSyscalls({"/proc": FILE, "/sys": DIR})
    rootfs.setup_proc_sys(False, sc)
    assert sc.tree["/proc"] & stat.S_IFDIR and ("unlink", "/proc", {"dir_fd": None}) in sc.named("unlink")


CG = {"/sys/fs/cgroup": DIR}


@pytest.mark.parametrize("privileged", [False, True])
def test_cgroupfs_v2_is_one_cgroup2_mount_read_only_unless_privileged(privileged):
    sc = RecordingSyscalls(CG)
    rootfs.setup_cgroupfs(("/sys/fs/cgroup", {}), privileged, sc)
    assert sc.mounts() == [("cgroup", "/sys/fs/cgroup", "cgroup2", NNN | (0 if privileged else RO), None)]


def test_cgroupfs_v1_hierarchies_read_only_and_the_tmpfs_remounted_read_only():
    sc = RecordingSyscalls(CG)
    v1 = {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
          "memory": "/sys/fs/cgroup/memory"}
    rootfs.setup_cgroupfs((None, v1), False, sc)
    assert sc.mounts() == [
        ("tmpfs", "/sys/fs/cgroup", "tmpfs", NNN, "mode=755"),
        ("cgroup", "/sys/fs/cgroup/cpu,cpuacct", "cgroup", NNN | RO, "cpu,cpuacct"),
        ("cgroup", "/sys/fs/cgroup/memory", "cgroup", NNN | RO, "memory"),
        (None, "/sys/fs/cgroup", None, libc.MS_REMOUNT | RO | NNN, "mode=755"),
    ]


@pytest.mark.parametrize("privileged", [False, True])
def test_cgroupfs_hybrid_adds_unified_and_privileged_stays_writable(privileged):
    sc = RecordingSyscalls(CG)
    rootfs.setup_cgroupfs(("/sys/fs/cgroup/unified", {"pids": "/sys/fs/cgroup/pids"}), privileged, sc)
    ro = 0 if privileged else RO
    expected = [
        ("tmpfs", "/sys/fs/cgroup", "tmpfs", NNN, "mode=755"),
        ("cgroup", "/sys/fs/cgroup/pids", "cgroup", NNN | ro, "pids"),
        ("cgroup2", "/sys/fs/cgroup/unified", "cgroup2", NNN | ro, None),
    ]
    if not privileged:
        expected.append((None, "/sys/fs/cgroup", None, libc.MS_REMOUNT | RO | NNN, "mode=755"))
    assert sc.mounts() == expected


def test_cgroupfs_nothing_when_the_image_has_no_sys_fs_cgroup():
    sc = RecordingSyscalls()
    rootfs.setup_cgroupfs(("/sys/fs/cgroup", {}), False, sc)
    assert sc.mounts() == []


def test_masked_paths_dev_null_over_files_read_only_tmpfs_over_directories_missing_skipped():
    sc = RecordingSyscalls({"/proc/kcore": FILE, "/proc/acpi": DIR})
    rootfs.mask_paths(["/proc/kcore", "/proc/acpi", "/proc/nope"], sc)
    assert sc.mounts() == [
        ("/dev/null", "/proc/kcore", None, libc.MS_BIND, None),
        ("tmpfs", "/proc/acpi", "tmpfs", RO, None),
    ]


def test_readonly_paths_bind_then_remount_read_only_nosuid_nodev_noexec():
    sc = RecordingSyscalls()
    sc.fail("mount", errno.ENOENT, "/proc/missing")
    rootfs.readonly_paths(["/proc/sys", "/proc/missing"], sc)
    assert sc.mounts() == [
        ("/proc/sys", "/proc/sys", None, libc.MS_BIND | libc.MS_REC, None),
        (None, "/proc/sys", None, libc.MS_REMOUNT | libc.MS_BIND | RO | NNN, None),
        ("/proc/missing", "/proc/missing", None, libc.MS_BIND | libc.MS_REC, None),
    ]


def test_readonly_paths_other_errors_are_raised():
    sc = RecordingSyscalls()
    sc.fail("mount", errno.EPERM)
    with pytest.raises(PermissionError):
        rootfs.readonly_paths(["/proc/sys"], sc)


def test_detach_old_root_is_a_lazy_unmount_then_rmdir():
    sc = RecordingSyscalls({rootfs.OLD_ROOT: DIR})
    rootfs.detach_old_root(sc)
    assert sc.named("umount2", "rmdir") == [("umount2", rootfs.OLD_ROOT, libc.MNT_DETACH),
                                            ("rmdir", rootfs.OLD_ROOT, {"dir_fd": None})]


def _setup_tree() -> RecordingSyscalls:
    return RecordingSyscalls({"/r": DIR, "/r/dev": DIR, "/dev": DIR, "/proc": DIR, "/sys": DIR, "/etc": DIR,
                              "/host/hosts": FILE})


def _setup(sc: RecordingSyscalls, **kw) -> None:
    args = {"etc_files": {"/etc/hosts": "/host/hosts"}, "masked": [], "readonly": [], "readonly_rootfs": False,
            "shm_size": 64 << 20, "cwd": "/"}
    args.update(kw)
    rootfs.setup("/r", sc=sc, **args)


def test_setup_takes_host_files_first_and_detaches_the_old_root_before_any_image_path():
    sc = _setup_tree()
    _setup(sc)
    names = [c.name for c in sc.calls]
    assert names.index("open_tree") < names.index("pivot_root") < names.index("umount2") < names.index("openat2")
    assert names.index("mount") > names.index("open_tree")  # nothing mounted before the host files are cloned
    move = sc.named("move_mount")[0]
    assert sc.fds.get(move[3]) is None  # the target fd is closed again
    assert move[5] == libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_EMPTY_PATH
    assert sc.open_fds() == {}


def test_setup_read_only_rootfs_ends_with_a_read_only_remount_of_root():
    sc = _setup_tree()
    _setup(sc, readonly_rootfs=True)
    assert sc.mounts()[-1] == (None, "/", None, libc.MS_REMOUNT | libc.MS_BIND | RO, None)


def test_setup_eperm_on_a_mount_is_raised_and_the_host_files_are_closed():
    sc = _setup_tree()
    sc.fail("mount", errno.EPERM, "/proc")
    with pytest.raises(OSError) as ei:
        _setup(sc)
    assert ei.value.errno == errno.EPERM
    assert "umount2" not in [c.name for c in sc.calls]  # stopped at /proc: nothing after it ran
    assert sc.open_fds() == {}


def test_init_binary_is_bound_read_only_before_it_is_moved():
    sc = _setup_tree()
    sc.tree["/host/init"] = FILE
    _setup(sc, etc_files={}, init_binary="/host/init")
    calls = sc.named("mount_setattr", "move_mount")
    assert calls[0][0] == "mount_setattr" and calls[0][4] == libc.MOUNT_ATTR_RDONLY
    assert calls[1][0] == "move_mount" and calls[1][1] == calls[0][1]


def test_add_device_replaces_what_is_there_and_makes_the_node_with_the_exact_mode():
    sc = RecordingSyscalls({"/dev": DIR, "/dev/sda": stat.S_IFLNK | 0o777})
    root = sc.open("/", 0)
    node = rootfs.DeviceNode.__new__(rootfs.DeviceNode)
    node.target, node.mode, node.rdev, node.uid, node.gid = "/dev/sda", stat.S_IFBLK | 0o640, 0x801, 0, 6
    rootfs.add_device(root, node, sc)
    parent = sc.named("openat2")[-1]
    assert parent[2] == "/dev"
    order = [c[:2] for c in sc.named("unlink", "mknod", "chown")]
    assert order == [("unlink", "sda"), ("mknod", "sda"), ("chown", "sda")]
    assert sc.named("mknod")[0][2:4] == (stat.S_IFBLK | 0o640, 0x801)
    assert sc.named("chown")[0][-1] == {"dir_fd": sc.named("mknod")[0][-1]["dir_fd"], "follow_symlinks": False}
