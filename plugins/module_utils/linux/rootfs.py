"""The container's root filesystem view: pivot_root into the overlay, then /proc, /dev, /sys, binds.

Runs in the container's PID 1, in its own (private) mount namespace, before exec.

Order and why:
1. A tmpfs is mounted on ``<rootfs>/dev`` first and the host root is parked at ``/dev/.oldroot`` by
   ``pivot_root``: nothing is created in the container's upper dir for it, and the tmpfs dies with the
   namespace.
2. Every other mount happens *after* pivot_root, so targets are resolved inside the container: a
   symlink planted in an image (``/etc/hosts -> /etc/shadow``, ``/proc -> /``) can only point at other
   container paths, never at host paths. Sources on the host are reached through the parked old root.
3. The old root is detached, then masked/read-only paths are applied, then ``/`` is made read-only if
   asked.
"""

from __future__ import annotations

import errno
import os
import stat

from . import libc, mounts

OLD_ROOT = "/dev/.oldroot"
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


def _real_dir(path: str, mode: int = 0o755) -> None:
    """Make ``path`` a directory, replacing a symlink or file the image may have put there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.makedirs(path, mode, exist_ok=True)
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        os.mkdir(path, mode)


def _mount_point_file(path: str) -> None:
    """An empty regular file to bind a file over; parents are created as needed."""
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode):
            return
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, f"cannot mount a file on directory {path}")
        os.unlink(path)  # a symlink: replace it rather than follow it
    except FileNotFoundError:
        pass
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644))


def pivot(rootfs: str) -> None:
    """Mount /dev's tmpfs and pivot_root into ``rootfs``; the host root stays reachable at OLD_ROOT."""
    dev = rootfs + "/dev"
    _real_dir(dev)
    libc.mount("tmpfs", dev, "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME, "mode=755,size=65536k")
    os.mkdir(dev + "/.oldroot", 0o700)
    libc.pivot_root(rootfs, rootfs + OLD_ROOT)
    os.chdir("/")


def setup_dev(shm_size: int) -> None:
    for name in HOST_DEVICES:
        target = f"/dev/{name}"
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        libc.mount(f"{OLD_ROOT}/dev/{name}", target, None, libc.MS_BIND)
    for name, dest in DEV_SYMLINKS.items():
        os.symlink(dest, f"/dev/{name}")
    os.mkdir("/dev/pts", 0o755)
    libc.mount("devpts", "/dev/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir("/dev/shm", 0o1777)
    libc.mount("shm", "/dev/shm", "tmpfs", _NOSUID_NODEV_NOEXEC, f"mode=1777,size={shm_size // 1024}k")
    os.mkdir("/dev/mqueue", 0o755)
    libc.mount("mqueue", "/dev/mqueue", "mqueue", _NOSUID_NODEV_NOEXEC)


def setup_proc_sys(privileged: bool = False) -> None:
    _real_dir("/proc")
    libc.mount("proc", "/proc", "proc", _NOSUID_NODEV_NOEXEC)
    _real_dir("/sys")
    libc.mount("sysfs", "/sys", "sysfs", _NOSUID_NODEV_NOEXEC | (0 if privileged else libc.MS_RDONLY))


def setup_cgroupfs(privileged: bool = False) -> None:
    """/sys/fs/cgroup as Docker shows it: the container's own cgroups (the cgroup namespace makes them the
    root), read-only unless privileged. v2: one cgroup2 mount; v1/hybrid: a tmpfs with one mount per
    hierarchy (and the unified one at ``unified``)."""
    with open("/proc/self/mountinfo") as f:
        text = f.read()
    # The host's cgroup mounts are still visible through the parked old root at this point.
    from .cgroups.detect import parse_mountinfo

    unified, v1 = parse_mountinfo(text)
    ro = 0 if privileged else libc.MS_RDONLY
    target = "/sys/fs/cgroup"
    if not os.path.isdir(target):
        return
    if not v1:
        if unified:
            libc.mount("cgroup", target, "cgroup2", _NOSUID_NODEV_NOEXEC | ro)
        return
    libc.mount("tmpfs", target, "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=755")
    by_mount: dict[str, list[str]] = {}
    for controller, mountpoint in v1.items():
        by_mount.setdefault(mountpoint, []).append(controller)
    for mountpoint, controllers in sorted(by_mount.items()):
        name = os.path.basename(mountpoint)
        os.mkdir(f"{target}/{name}", 0o755)
        libc.mount("cgroup", f"{target}/{name}", "cgroup", _NOSUID_NODEV_NOEXEC | ro, ",".join(controllers))
    if unified:
        os.mkdir(f"{target}/unified", 0o755)
        libc.mount("cgroup2", f"{target}/unified", "cgroup2", _NOSUID_NODEV_NOEXEC | ro)
    if ro:
        libc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC, "mode=755")


def bind_host_files(files: dict[str, str]) -> None:
    """Bind host files (already resolved to real paths) over container paths, e.g. /etc/hosts."""
    for container_path, host_path in files.items():
        _mount_point_file(container_path)
        libc.mount(OLD_ROOT + host_path, container_path, None, libc.MS_BIND)


def detach_old_root() -> None:
    libc.umount2(OLD_ROOT, libc.MNT_DETACH)
    os.rmdir(OLD_ROOT)


def mask_paths(paths: list[str]) -> None:
    """Hide kernel files as Docker does: /dev/null over files, an empty read-only tmpfs over directories."""
    for path in paths:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY)
        else:
            libc.mount("/dev/null", path, None, libc.MS_BIND)


def readonly_paths(paths: list[str]) -> None:
    for path in paths:
        try:
            libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        libc.mount(None, path, None,
                   libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC)


def ensure_cwd(cwd: str) -> None:
    os.makedirs(cwd, 0o755, exist_ok=True)


def add_device(host_path: str, container_path: str, permissions: str = "rwm") -> None:
    """A device node in the container's /dev with the host node's type, numbers and mode (--device)."""
    st = os.stat(OLD_ROOT + host_path)
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise OSError(errno.EINVAL, f"{host_path} is not a device")
    os.makedirs(os.path.dirname(container_path), 0o755, exist_ok=True)
    if os.path.lexists(container_path):
        os.unlink(container_path)
    mode = stat.S_IMODE(st.st_mode)
    if "w" not in permissions:
        mode &= ~0o222
    if "r" not in permissions:
        mode &= ~0o444
    os.mknod(container_path, stat.S_IFMT(st.st_mode) | mode, st.st_rdev)
    os.chmod(container_path, mode)  # mknod's mode is masked by the umask
    os.chown(container_path, st.st_uid, st.st_gid)


def host_devices(top: str = "/dev") -> list[str]:
    """Every device node under the host's /dev (what --privileged shows), pts/shm/mqueue excepted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top:
            dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue", ".oldroot")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(path)
    return found


def setup_devices(privileged: bool, devices: list[tuple[str, str, str]]) -> None:
    if privileged:
        base = OLD_ROOT + "/dev"
        for host_path in host_devices(base):
            rel = host_path[len(OLD_ROOT):]
            if os.path.basename(rel) in HOST_DEVICES and os.path.dirname(rel) == "/dev":
                continue  # already bound
            add_device(rel, rel)
    for host_path, container_path, permissions in devices:
        add_device(host_path, container_path, permissions)  # host_path: resolved by the caller


def bind_init(init_binary: str, target: str = "/sbin/docker-init") -> None:
    _mount_point_file(target)
    libc.mount(OLD_ROOT + os.path.realpath(init_binary), target, None, libc.MS_BIND)
    libc.mount(None, target, None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY)


def setup(rootfs: str, *, etc_files: dict[str, str], masked: list[str], readonly: list[str],
          readonly_rootfs: bool, shm_size: int, cwd: str, privileged: bool = False,
          devices: list[tuple[str, str, str]] | None = None, init_binary: str | None = None,
          cgroup_mounts: bool = False) -> None:
    """From the overlay mounted on ``rootfs`` (host path) to the final view; see the module docstring.

    ``etc_files`` maps container paths to host files; ``masked``/``readonly`` are container paths.
    ``privileged`` gives every host device and writable /sys; ``devices`` are (host, container, perms)
    device nodes to create; ``init_binary`` is bound to /sbin/docker-init.
    """
    host_files = {path: os.path.realpath(src) for path, src in etc_files.items()}
    pivot(rootfs)
    setup_dev(shm_size)
    setup_proc_sys(privileged)
    if cgroup_mounts:
        setup_cgroupfs(privileged)
    setup_devices(privileged, devices or [])
    bind_host_files(host_files)
    if init_binary:
        bind_init(init_binary)
    detach_old_root()
    mask_paths(masked)
    readonly_paths(readonly)
    ensure_cwd(cwd)
    if readonly_rootfs:
        mounts.remount_readonly("/")
