"""The container's root filesystem view: pivot_root into the overlay, then /proc, /dev, /sys, binds.

Runs in the container's PID 1, in its own (private) mount namespace, before exec.

Order and why:
1. Everything taken from the host is taken first, while the host's root is still ``/``: the files bound
   into the container (/etc/hosts, --init's binary) are cloned into detached mounts (``open_tree``, fds),
   the device nodes to create are ``stat``ed. Nothing on the host is named by path after this.
2. A tmpfs is mounted on ``<rootfs>/dev`` and the host root is parked at ``/dev/.oldroot`` by
   ``pivot_root``: nothing is created in the container's upper dir for it, and the tmpfs dies with the
   namespace. Only fixed paths are touched while it is parked: /dev's own nodes (in that fresh tmpfs), and
   /proc and /sys (replaced by directories if the image made them anything else).
3. The old root is detached *before* any path the image controls is resolved: an image symlink such as
   ``/etc -> /dev/.oldroot/tmp/x`` can then only reach the container's own tree. Every such path (/etc
   files, --init's target, --device nodes, the working directory) is resolved with ``openat2(RESOLVE_IN_ROOT
   | RESOLVE_NO_MAGICLINKS)`` (``binds.ensure_target``: ``..`` and absolute links are clamped at the root,
   ``/proc/self/fd/N`` is refused), created one ``*at`` call at a time, and mounts are moved onto the fd.
   This is runc's answer to CVE-2019-19921 / CVE-2021-30465 class bugs.
4. Masked/read-only paths (fixed /proc and /sys paths), then ``/`` is made read-only if asked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from . import binds, libc, mounts
from .syscalls import REAL, Syscalls

OLD_ROOT = "/dev/.oldroot"
INIT_TARGET = "/sbin/docker-init"
IN_ROOT = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS
HOST_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SYMLINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}
_NOSUID_NODEV_NOEXEC = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def _real_dir(path: str, mode: int = 0o755, sc: Syscalls = REAL) -> None:
    """Make ``path`` a directory, replacing a symlink or file the image may have put there."""
    try:
        st = sc.lstat(path)
    except FileNotFoundError:
        sc.makedirs(path, mode, exist_ok=True)
        return
    if not stat.S_ISDIR(st.st_mode):
        sc.unlink(path)
        sc.mkdir(path, mode)


def pivot(rootfs: str, sc: Syscalls = REAL) -> None:
    """Mount /dev's tmpfs and pivot_root into ``rootfs``; the host root stays reachable at OLD_ROOT."""
    dev = rootfs + "/dev"
    _real_dir(dev, sc=sc)
    sc.mount("tmpfs", dev, "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME, "mode=755,size=65536k")
    sc.mkdir(dev + "/.oldroot", 0o700)
    sc.pivot_root(rootfs, rootfs + OLD_ROOT)
    sc.chdir("/")


def setup_dev(shm_size: int, sc: Syscalls = REAL) -> None:
    for name in HOST_DEVICES:
        target = f"/dev/{name}"
        sc.close(sc.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        sc.mount(f"{OLD_ROOT}/dev/{name}", target, None, libc.MS_BIND)
    for name, dest in DEV_SYMLINKS.items():
        sc.symlink(dest, f"/dev/{name}")
    sc.mkdir("/dev/pts", 0o755)
    sc.mount("devpts", "/dev/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    sc.mkdir("/dev/shm", 0o1777)
    sc.mount("shm", "/dev/shm", "tmpfs", _NOSUID_NODEV_NOEXEC, f"mode=1777,size={shm_size // 1024}k")
    sc.mkdir("/dev/mqueue", 0o755)
    sc.mount("mqueue", "/dev/mqueue", "mqueue", _NOSUID_NODEV_NOEXEC)


def setup_proc_sys(privileged: bool = False, sc: Syscalls = REAL) -> None:
    _real_dir("/proc", sc=sc)
    sc.mount("proc", "/proc", "proc", _NOSUID_NODEV_NOEXEC)
    _real_dir("/sys", sc=sc)
    sc.mount("sysfs", "/sys", "sysfs", _NOSUID_NODEV_NOEXEC | (0 if privileged else libc.MS_RDONLY))


def cgroup_layout() -> tuple[str | None, dict[str, str]]:
    """The host's cgroup mounts (cgroup2 mount point, {v1 controller: mount point}), read while they are still
    in this mount namespace (before the old root is detached)."""
    from .cgroups.detect import parse_mountinfo

    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def setup_cgroupfs(layout: tuple[str | None, dict[str, str]], privileged: bool = False,
                   sc: Syscalls = REAL) -> None:
    """/sys/fs/cgroup as Docker shows it: the container's own cgroups (the cgroup namespace makes them the
    root), read-only unless privileged. v2: one cgroup2 mount; v1/hybrid: a tmpfs with one mount per
    hierarchy (and the unified one at ``unified``). ``layout``: ``cgroup_layout()``."""
    unified, v1 = layout
    ro = 0 if privileged else libc.MS_RDONLY
    target = "/sys/fs/cgroup"
    try:  # os.path.isdir, through the seam
        if not stat.S_ISDIR(sc.stat(target).st_mode):
            return
    except OSError:
        return
    if not v1:
        if unified:
            sc.mount("cgroup", target, "cgroup2", _NOSUID_NODEV_NOEXEC | ro)
        return
    sc.mount("tmpfs", target, "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=755")
    by_mount: dict[str, list[str]] = {}
    for controller, mountpoint in v1.items():
        by_mount.setdefault(mountpoint, []).append(controller)
    for mountpoint, controllers in sorted(by_mount.items()):
        name = os.path.basename(mountpoint)
        sc.mkdir(f"{target}/{name}", 0o755)
        sc.mount("cgroup", f"{target}/{name}", "cgroup", _NOSUID_NODEV_NOEXEC | ro, ",".join(controllers))
    if unified:
        sc.mkdir(f"{target}/unified", 0o755)
        sc.mount("cgroup2", f"{target}/unified", "cgroup2", _NOSUID_NODEV_NOEXEC | ro)
    if ro:
        sc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC, "mode=755")


class HostSource:
    """A host file cloned into a detached mount before pivot_root (``open_tree``), to bind at ``target``."""

    __slots__ = ("fd", "readonly", "target")

    def __init__(self, host_path: str, target: str, readonly: bool = False, sc: Syscalls = REAL):
        self.target = target
        self.readonly = readonly
        self.fd = sc.open_tree(libc.AT_FDCWD, host_path, libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC)


def file_target(root: int, path: str, sc: Syscalls = REAL) -> int:
    """An O_PATH fd of a regular file (or device) at ``path`` inside ``root`` to mount a file on: parents are
    resolved and created inside the root; a symlink in the last component is replaced rather than followed
    (a container's /etc/hosts is a file of its own, as with Docker), a missing file is created."""
    parent_path, name = os.path.split(path.rstrip("/"))
    if not name or name in (".", ".."):
        raise OSError(errno.EINVAL, f"invalid container path {path}")
    parent = binds.ensure_target(root, parent_path or "/", True, sc=sc)
    try:
        try:
            st = sc.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, f"cannot mount a file on directory {path}")
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            sc.unlink(name, dir_fd=parent)
            st = None
        if st is None:
            sc.close(sc.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=parent))
        return sc.openat2(parent, name, os.O_PATH | os.O_NOFOLLOW, 0, IN_ROOT)
    finally:
        sc.close(parent)


def attach_host_files(root: int, sources: list[HostSource], sc: Syscalls = REAL) -> None:
    """Move each cloned host file onto its target, resolved inside ``root`` (see the module docstring)."""
    for src in sources:
        if src.readonly:
            sc.mount_setattr(src.fd, "", libc.AT_EMPTY_PATH, attr_set=libc.MOUNT_ATTR_RDONLY)
        target = file_target(root, src.target, sc)
        try:
            sc.move_mount(src.fd, "", target, "", libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_EMPTY_PATH)
        finally:
            sc.close(target)


def close_sources(sources: list[HostSource], sc: Syscalls = REAL) -> None:
    for src in sources:
        with contextlib.suppress(OSError):
            sc.close(src.fd)


def detach_old_root(sc: Syscalls = REAL) -> None:
    sc.umount2(OLD_ROOT, libc.MNT_DETACH)
    sc.rmdir(OLD_ROOT)


def mask_paths(paths: list[str], sc: Syscalls = REAL) -> None:
    """Hide kernel files as Docker does: /dev/null over files, an empty read-only tmpfs over directories."""
    for path in paths:
        try:
            st = sc.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY)
        else:
            sc.mount("/dev/null", path, None, libc.MS_BIND)


def readonly_paths(paths: list[str], sc: Syscalls = REAL) -> None:
    for path in paths:
        try:
            sc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        sc.mount(None, path, None,
                 libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC)


def ensure_cwd(root: int, cwd: str, sc: Syscalls = REAL) -> None:
    """Create the working directory inside ``root`` if missing (Docker creates --workdir)."""
    sc.close(binds.ensure_target(root, cwd, True, sc=sc))


class DeviceNode:
    """A device node to create in the container: what the host's node is (stat taken before pivot_root)."""

    __slots__ = ("gid", "mode", "rdev", "target", "uid")

    def __init__(self, host_path: str, target: str, permissions: str = "rwm"):
        st = os.stat(host_path)  # the host's node, before pivot_root: not the container's tree
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise OSError(errno.EINVAL, f"{host_path} is not a device")
        mode = stat.S_IMODE(st.st_mode)
        if "w" not in permissions:
            mode &= ~0o222
        if "r" not in permissions:
            mode &= ~0o444
        self.target = target
        self.mode = stat.S_IFMT(st.st_mode) | mode
        self.rdev, self.uid, self.gid = st.st_rdev, st.st_uid, st.st_gid


def add_device(root: int, node: DeviceNode, sc: Syscalls = REAL) -> None:
    """The node at ``node.target``, resolved inside ``root``: parents created there, whatever was at the
    name (a file, a symlink) replaced, never followed."""
    parent_path, name = os.path.split(node.target.rstrip("/"))
    if not name or name in (".", ".."):
        raise OSError(errno.EINVAL, f"invalid device path {node.target}")
    parent = binds.ensure_target(root, parent_path or "/", True, sc=sc)
    try:
        with contextlib.suppress(FileNotFoundError):
            sc.unlink(name, dir_fd=parent)
        mask = os.umask(0)  # mknod's mode is masked by the umask: the node gets the host's mode exactly
        try:
            sc.mknod(name, node.mode, node.rdev, dir_fd=parent)
        finally:
            os.umask(mask)
        sc.chown(name, node.uid, node.gid, dir_fd=parent, follow_symlinks=False)
    finally:
        sc.close(parent)


def host_devices(top: str = "/dev") -> list[str]:
    """Every device node under the host's /dev (what --privileged shows), pts/shm/mqueue excepted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top:
            dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(path)
    return found


def device_nodes(privileged: bool, devices: list[tuple[str, str, str]]) -> list[DeviceNode]:
    """The nodes to create, from the host's /dev (call before pivot_root: the host's root is ``/``)."""
    nodes = []
    if privileged:
        for host_path in host_devices("/dev"):
            if os.path.basename(host_path) in HOST_DEVICES and os.path.dirname(host_path) == "/dev":
                continue  # already bound
            with contextlib.suppress(OSError):  # a node that went away meanwhile
                nodes.append(DeviceNode(host_path, host_path))
    for host_path, container_path, permissions in devices:
        nodes.append(DeviceNode(host_path, container_path, permissions))  # host_path: resolved by the caller
    return nodes


def setup(rootfs: str, *, etc_files: dict[str, str], masked: list[str], readonly: list[str],
          readonly_rootfs: bool, shm_size: int, cwd: str, privileged: bool = False,
          devices: list[tuple[str, str, str]] | None = None, init_binary: str | None = None,
          cgroup_mounts: bool = False, sc: Syscalls = REAL) -> None:
    """From the overlay mounted on ``rootfs`` (host path) to the final view; see the module docstring.

    ``etc_files`` maps container paths to host files; ``masked``/``readonly`` are container paths.
    ``privileged`` gives every host device and writable /sys; ``devices`` are (host, container, perms)
    device nodes to create; ``init_binary`` is bound to /sbin/docker-init.
    """
    nodes = device_nodes(privileged, devices or [])
    sources: list[HostSource] = []
    try:
        for path, src in etc_files.items():
            sources.append(HostSource(os.path.realpath(src), path, sc=sc))
        if init_binary:
            sources.append(HostSource(os.path.realpath(init_binary), INIT_TARGET, readonly=True, sc=sc))
        pivot(rootfs, sc)
        setup_dev(shm_size, sc)
        setup_proc_sys(privileged, sc)
        layout = cgroup_layout() if cgroup_mounts else None
        detach_old_root(sc)
        # From here on the container's tree is all there is.
        if layout is not None:
            setup_cgroupfs(layout, privileged, sc)
        root = sc.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for node in nodes:
                add_device(root, node, sc)
            attach_host_files(root, sources, sc)
            mask_paths(masked, sc)
            readonly_paths(readonly, sc)
            ensure_cwd(root, cwd, sc)
        finally:
            sc.close(root)
    finally:
        close_sources(sources, sc)
    if readonly_rootfs:
        mounts.remount_readonly("/", sc)
