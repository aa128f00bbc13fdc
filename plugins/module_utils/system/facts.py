"""Facts about the host and the engine's store, measured rather than assumed: what `info` reports.

Field names are those of Docker's ``/info`` so that ``info --format '{{.CgroupVersion}}'`` scripts work.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
from typing import TYPE_CHECKING, Any

from ..fsutil import atomic_write_bytes, ensure_dir
from ..linux.cgroups.detect import limit_support
from ..version import ENGINE_VERSION

if TYPE_CHECKING:
    from .services import EngineServices


# statfs magic is not needed: mountinfo names the filesystem; these are Docker's names for them.
_BACKING_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "xfs": "xfs", "btrfs": "btrfs",
                     "tmpfs": "tmpfs", "overlay": "overlayfs", "zfs": "zfs", "f2fs": "f2fs"}


def _mountinfo(path: str = "/proc/self/mountinfo") -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) for every mount."""
    entries = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mount_point = fields[4].replace("\\040", " ")
            entries.append((mount_point, fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""))
    return entries


def filesystem_of(path: str, mounts: list[tuple[str, str, str]] | None = None) -> str:
    """The type of the filesystem holding ``path`` (the longest mount point that contains it)."""
    path = os.path.realpath(path)
    best, fstype = "", ""
    for mount_point, kind, _opts in mounts or _mountinfo():
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, kind
    return fstype


def cgroup_layout(mounts: list[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """Which cgroup hierarchies the host has: Docker says version 2 only when /sys/fs/cgroup itself is cgroup2."""
    mounts = mounts or _mountinfo()
    v1 = {}
    unified = None
    for mount_point, kind, opts in mounts:
        if kind == "cgroup2":
            unified = mount_point if unified is None or mount_point == "/sys/fs/cgroup" else unified
        elif kind == "cgroup":
            for option in opts.split(","):
                if option in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"):
                    v1[option] = mount_point
    if unified == "/sys/fs/cgroup" and not v1:
        mode = "v2"
    elif v1 and unified:
        mode = "hybrid"
    elif v1:
        mode = "v1"
    else:
        mode = "none"
    return {"mode": mode, "version": "2" if mode == "v2" else "1", "v1": v1, "unified": unified}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _os_release() -> dict[str, str]:
    values = {}
    for line in _read("/etc/os-release").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value.strip().strip('"')
    return values


def _mem_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def engine_id(root: str) -> str:
    """A stable ID for this engine root, made once (Docker's daemon ID)."""
    path = os.path.join(root, "engine-id")
    existing = _read(path)
    if existing:
        return existing
    ensure_dir(root)  # root-only (STATE_DIR_MODE), as EnginePaths.secure makes it
    new_id = "-".join(secrets.token_hex(2).upper() for _i in range(12))
    # Write it aside, then link it into place: the file appears complete or not at all, and only once.
    tmp = f"{path}.{os.getpid()}.tmp"
    atomic_write_bytes(tmp, new_id.encode() + b"\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        new_id = _read(path)  # another command made it first
    finally:
        os.unlink(tmp)
    return new_id


def _limit_support(layout: dict[str, Any]) -> dict[str, bool]:
    return limit_support(layout["mode"], layout["v1"], layout["unified"])


def engine_info(engine: EngineServices) -> dict[str, Any]:
    """Docker's /info document for this host and engine root."""
    mounts = _mountinfo()
    layout = cgroup_layout(mounts)
    from ..records.containers import ContainerStore

    statuses = ContainerStore(engine.config.paths.containers).statuses()  # only the state files: counts
    counts = {"running": 0, "paused": 0}
    for status in statuses:
        if status in counts:
            counts[status] += 1
    root = engine.config.root
    ensure_dir(root)  # root-only (STATE_DIR_MODE), as EnginePaths.secure makes it
    backing = filesystem_of(root, mounts)
    limits = _limit_support(layout)
    ip_forward = _read("/proc/sys/net/ipv4/ip_forward") == "1"
    warnings = []
    if not limits["SwapLimit"]:
        warnings.append("WARNING: No swap limit support")
    if not ip_forward:
        warnings.append("WARNING: IPv4 forwarding is disabled")
    release = _os_release()
    uname = platform.uname()
    mirrors = list(engine.config.registry_mirrors)
    return {
        "ID": engine_id(root),
        "Containers": len(statuses),
        "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"],
        "ContainersStopped": len(statuses) - counts["running"] - counts["paused"],
        "Images": len(engine.images.list()),
        "Driver": "overlay2",
        "DriverStatus": [
            ["Backing Filesystem", _BACKING_FS_NAMES.get(backing, backing)],
            ["Supports d_type", "true" if backing in ("ext4", "ext3", "btrfs", "tmpfs", "xfs") else "false"],
            ["Using metacopy", "false"],
            ["Native Overlay Diff", "true"],
            ["userxattr", "false"],
        ],
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": layout["version"],
        "KernelVersion": uname.release,
        "OperatingSystem": release.get("PRETTY_NAME", "Linux"),
        "OSVersion": release.get("VERSION_ID", ""),
        "OSType": "linux",
        "Architecture": uname.machine,
        "NCPU": len(os.sched_getaffinity(0)),
        "MemTotal": _mem_total(),
        "Name": socket.gethostname(),
        "ServerVersion": ENGINE_VERSION,
        "DockerRootDir": root,
        "Debug": False,
        "IPv4Forwarding": ip_forward,
        **limits,
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "RegistryConfig": {
            "InsecureRegistryCIDRs": ["127.0.0.0/8", *engine.config.insecure_registries],
            "Mirrors": mirrors,
        },
        "Warnings": warnings,
    }
