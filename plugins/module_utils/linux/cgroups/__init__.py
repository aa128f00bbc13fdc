"""Cgroups: one interface, three backends (v1, v2 unified, hybrid), chosen by looking at the mounts.

    cg = container_cgroup(container_id, CgroupConfig(parent="pycontainer", memory=64 << 20))
    cg.create(); cg.add(pid)          # the launcher does this in its parent hook, before the child goes on
    cg.freeze(); cg.thaw(); cg.stats(); cg.oom_killed(); cg.pids(); cg.destroy()

Layout: ``<hierarchy>/<parent>/pycontainer-<id>`` in every hierarchy the backend uses (Docker's cgroupfs
layout, with the id prefixed so leftovers are easy to spot). The default parent (``pycontainer``) belongs to
the engine: created on demand, removed when its last container goes. A configured parent (the cgroups role
sets one, possibly with limits of its own) is created if missing but never removed.

Backends:
- v1: one hierarchy per controller (cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids), located
  from /proc/self/mountinfo, so co-mounted controllers (cpu,cpuacct) work too. Device rules go to
  devices.deny/devices.allow; a host without the devices hierarchy (and no cgroup2 one) is refused at create.
- v2: /sys/fs/cgroup is cgroup2; controllers are enabled in the parents' ``cgroup.subtree_control``. Device
  rules become a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup at create
  (``devices.py``: one rule model for both versions).
- hybrid: v1 controllers plus an empty cgroup2 mount (systemd's /sys/fs/cgroup/unified): resources come from
  v1, and the container also gets a v2 cgroup there, which gives ``cgroup.kill`` (atomic kill of everything,
  even frozen tasks) for ``destroy`` (and carries the device program when the v1 devices hierarchy is absent).

Limits follow Docker's semantics: ``memory_swap`` 0 with a memory limit means twice the memory, -1 unlimited;
``nano_cpus`` becomes a CFS quota over a 100 ms period; ``pids_limit`` 0 or -1 means unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import CgroupError, ContainerCgroup

DEFAULT_PARENT = "pycontainer"
NAME_PREFIX = "pycontainer-"

# Docker's default device cgroup rules (moby oci/defaults.go + runc's allowed devices; tun/tap 10:200 is runc's:
# dropped in runc 1.2.0, re-added in 1.2.4 for compatibility, so Docker containers have it).
DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts/*
    "c 10:200 rwm",  # /dev/net/tun
)


@dataclass
class CgroupConfig:
    """Where the container's cgroup goes and what limits it gets (Docker's HostConfig resources)."""

    parent: str = DEFAULT_PARENT
    memory: int = 0  # bytes; 0 unlimited
    memory_swap: int = 0  # bytes of memory+swap; 0 = 2x memory (when memory is set), -1 unlimited
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    pids_limit: int = 0
    # Device rules ("c 1:3 rwm"), in order; None: every device allowed (--privileged).
    device_rules: list[str] | None = field(default_factory=lambda: list(DEFAULT_DEVICE_RULES))


_BACKEND = None


def backend():
    """The backend for this host (detected once per process)."""
    global _BACKEND
    if _BACKEND is None:
        from . import detect

        _BACKEND = detect.detect()
    return _BACKEND


def container_cgroup(container_id: str, config: object = None) -> ContainerCgroup:
    """The cgroup of one container (nothing is created until ``create``).

    ``config`` is a CgroupConfig, or anything with a ``cgroup_parent`` attribute (the EngineConfig) when
    only the location matters (stats, freeze, destroy).
    """
    if isinstance(config, CgroupConfig):
        cfg = config
    else:
        cfg = CgroupConfig(parent=getattr(config, "cgroup_parent", None) or DEFAULT_PARENT)
    return backend().container(container_id, cfg)


def relative_path(container_id: str, parent: str) -> str:
    return f"{parent.strip('/') or DEFAULT_PARENT}/{NAME_PREFIX}{container_id}"


def cpu_quota(nano_cpus: int, period_us: int = 100_000) -> int:
    return max(1000, nano_cpus * period_us // 1_000_000_000)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), as runc converts it."""
    return 1 + ((shares - 2) * 9999) // 262142


def swap_limit(memory: int, memory_swap: int) -> int:
    """memory+swap limit in bytes, -1 unlimited (Docker: 0 with a memory limit means twice the memory)."""
    if memory <= 0 or memory_swap < 0:
        return -1
    return memory_swap if memory_swap > 0 else 2 * memory


def host_memory() -> int:
    with open("/proc/meminfo", "rb") as f:
        for line in f:
            if line.startswith(b"MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def parse_device_rule(rule: str) -> tuple[str, str, str, str]:
    """'c 1:3 rwm' -> ('c', '1', '3', 'rwm'); 'a' -> ('a', '*', '*', 'rwm'). Raises ValueError."""
    parts = rule.split()
    if parts == ["a"] or (parts and parts[0] == "a" and len(parts) <= 3):
        return "a", "*", "*", parts[2] if len(parts) == 3 else "rwm"
    if len(parts) != 3 or parts[0] not in ("a", "b", "c"):
        raise ValueError(f"invalid device cgroup rule {rule!r}")
    major, sep, minor = parts[1].partition(":")
    if not sep or not all(x == "*" or x.isdigit() for x in (major, minor)):
        raise ValueError(f"invalid device cgroup rule {rule!r}")
    if not parts[2] or set(parts[2]) - set("rwm"):
        raise ValueError(f"invalid device cgroup rule {rule!r}")
    return parts[0], major, minor, parts[2]


__all__ = ["DEFAULT_PARENT", "CgroupConfig", "CgroupError", "ContainerCgroup", "backend", "container_cgroup"]
