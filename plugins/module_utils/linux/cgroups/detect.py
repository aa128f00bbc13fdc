"""Which cgroup layout this host has: read /proc/self/mountinfo once."""

from __future__ import annotations

from .base import CgroupError

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
        raise CgroupError("no cgroup filesystem is mounted")
    return unified, v1


def detect(mountinfo: str = "/proc/self/mountinfo"):
    unified, v1 = read_layout(mountinfo)
    if v1:
        from .v1 import V1Backend

        return V1Backend(v1, unified)  # hybrid when an (empty) cgroup2 hierarchy is mounted too
    from .v2 import V2Backend

    return V2Backend(unified)
