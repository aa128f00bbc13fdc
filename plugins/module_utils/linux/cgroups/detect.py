"""Which cgroup layout this host has: read /proc/self/mountinfo once."""

from __future__ import annotations

import os

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


def parse_mountinfo(text: str) -> tuple[str | None, dict[str, str]]:
    """(cgroup2 mount point or None, {v1 controller: mount point}) from mountinfo text."""
    unified = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        fstype, _source, super_opts = ([*right.split(), "", "", ""])[:3]
        mountpoint = fields[4].replace("\\040", " ")
        if fstype == "cgroup2":
            # The shortest mount point wins (bind mounts of sub-cgroups may exist too).
            if unified is None or len(mountpoint) < len(unified):
                unified = mountpoint
        elif fstype == "cgroup":
            for opt in super_opts.split(","):
                if opt in V1_CONTROLLERS and (opt not in v1 or len(mountpoint) < len(v1[opt])):
                    v1[opt] = mountpoint
    return unified, v1


def read_layout(mountinfo: str = "/proc/self/mountinfo") -> tuple[str | None, dict[str, str]]:
    """parse_mountinfo of this host; CgroupError when no cgroup filesystem is mounted at all."""
    with open(mountinfo) as f:
        unified, v1 = parse_mountinfo(f.read())
    if not (unified or v1):
        from .base import CgroupError

        raise CgroupError("no cgroup filesystem is mounted")
    return unified, v1


def detect(mountinfo: str = "/proc/self/mountinfo"):
    unified, v1 = read_layout(mountinfo)
    from .v1 import V1Backend  # here, not at the top: `info` reads the layout without either backend
    from .v2 import V2Backend

    if v1:
        return V1Backend(v1, unified)  # hybrid when an (empty) cgroup2 hierarchy is mounted too
    return V2Backend(unified)


def limit_support(mode: str, v1: dict[str, str], unified: str | None) -> dict[str, bool]:
    """Which limits this host can set (Docker's /info flags), from the hierarchies ``facts`` found."""
    if mode == "v2":
        try:
            with open(os.path.join(unified or "", "cgroup.controllers")) as f:
                controllers = f.read().split()
        except OSError:
            controllers = []
        has = controllers.__contains__
        return {"MemoryLimit": has("memory"), "SwapLimit": has("memory"), "CpuCfsPeriod": has("cpu"),
                "CpuCfsQuota": has("cpu"), "CPUShares": has("cpu"), "CPUSet": has("cpuset"), "PidsLimit": has("pids")}
    memory, cpu = v1.get("memory", ""), v1.get("cpu", "")
    return {
        "MemoryLimit": bool(memory) and os.path.exists(os.path.join(memory, "memory.limit_in_bytes")),
        "SwapLimit": bool(memory) and os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")),
        "CpuCfsPeriod": bool(cpu) and os.path.exists(os.path.join(cpu, "cpu.cfs_period_us")),
        "CpuCfsQuota": bool(cpu) and os.path.exists(os.path.join(cpu, "cpu.cfs_quota_us")),
        "CPUShares": bool(cpu) and os.path.exists(os.path.join(cpu, "cpu.shares")),
        "CPUSet": "cpuset" in v1,
        "PidsLimit": "pids" in v1,
    }
