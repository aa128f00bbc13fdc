"""The one limits type of every cgroup (a container's, the cgroups role's parent) and its unit conversions.

The backends (``v1.py``, ``v2.py``) map a ``CgroupLimits`` to their control files; nothing here knows a file.
Stdlib only, imports nothing of the package (so every other module of it may import this one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PARENT = "pycontainer"
NAME_PREFIX = "pycontainer-"
PERIOD_US = 100_000
UNLIMITED = -1

# Docker's default device cgroup rules (moby oci/defaults.go + runc's allowed devices; tun/tap 10:200 is runc's:
# dropped in runc 1.2.0, re-added in 1.2.4 for compatibility, so Docker containers have it).
DEFAULT_DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts/*
    "c 10:200 rwm",  # /dev/net/tun
)


@dataclass
class CgroupLimits:
    """Limits to write (or read back); None leaves a limit as it is, UNLIMITED (-1) removes it."""

    memory: int | None = None         # bytes
    memory_swap: int | None = None    # bytes of memory+swap (v2 writes the swap part alone)
    cpu_quota_us: int | None = None   # per cpu_period_us
    cpu_period_us: int = PERIOD_US
    cpu_shares: int | None = None     # v1's scale (2..262144); v2 converts it to a weight
    cpu_weight: int | None = None     # v2's scale (1..10000); v1 converts it to shares
    cpuset_cpus: str | None = None
    pids: int | None = None


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

    def limits(self, initial: bool = False) -> CgroupLimits:
        """The limits in Docker's semantics. ``initial`` (a new cgroup, unlimited already) leaves unset limits
        out; otherwise they are written as unlimited (an update that lifts a limit)."""
        unset = None if initial else UNLIMITED
        return CgroupLimits(
            memory=self.memory if self.memory > 0 else unset,
            memory_swap=swap_limit(self.memory, self.memory_swap) if self.memory > 0 or not initial else None,
            cpu_quota_us=cpu_quota(self.nano_cpus) if self.nano_cpus > 0 else unset,
            cpu_shares=self.cpu_shares if self.cpu_shares > 0 else None,
            cpuset_cpus=self.cpuset_cpus or None,
            pids=self.pids_limit if self.pids_limit > 0 else unset,
        )


def relative_path(container_id: str, parent: str) -> str:
    return f"{parent.strip('/') or DEFAULT_PARENT}/{NAME_PREFIX}{container_id}"


def cpu_quota(nano_cpus: int, period_us: int = PERIOD_US) -> int:
    return max(1000, nano_cpus * period_us // 1_000_000_000)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu shares (2..262144) to a v2 weight (1..10000), as runc converts it."""
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight: int) -> int:
    """A v2 weight to v1 shares (systemd's mapping: 100 is the default 1024)."""
    return max(2, weight * 1024 // 100)


def shares_as_weight(shares: int) -> int:
    """The inverse of weight_to_shares (exact for the values it writes): v1 shares read back on v2's scale."""
    return max(1, -(-shares * 100 // 1024))


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
