"""Capabilities: shrink the bounding set to what the container may have, clear inheritable and ambient.

After exec, root gets exactly the bounding set in its permitted and effective sets (file caps of root are
"all", masked by the bounding set); a non-root user gets none, as with Docker. The inheritable set stays
empty (Docker since CVE-2022-24769): otherwise a non-root process gains ``P(inh) & F(inh)`` by exec'ing a
binary with inheritable file capabilities (``setcap cap_net_raw+ei``).
"""

from __future__ import annotations

import errno

from . import libc

CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def numbers(names: list[str] | tuple[str, ...]) -> set[int]:
    out = set()
    for name in names:
        key = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
        if key not in CAP_NUMBER:
            raise ValueError(f"unknown capability {name!r}")
        out.add(CAP_NUMBER[key])
    return out


def restrict(keep: set[int], top: int | None = None) -> None:
    """Drop every capability not in ``keep`` from the bounding set; inheritable and ambient are cleared."""
    top = last_cap() if top is None else top
    for cap in range(top + 1):
        if cap not in keep:
            try:
                libc.prctl(libc.PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a capability this kernel does not know
                    raise
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    eff, perm, _inh = libc.capget()
    libc.capset(eff, perm, 0)
