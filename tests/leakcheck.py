"""Host-state snapshots: what an integration test must leave as it found it.

Mounts, processes, network namespaces, links, nftables tables and cgroups that appear during a test and are
still there after it (allowing a short grace period for processes to be reaped) fail the test.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

# Long-lived helpers the session fixtures start on purpose.
_ALLOWED_COMMANDS = {"docker-registry", "registry"}

# Every process this test run starts inherits this marker (set by tests/conftest.py); a container's processes
# do not (they get the container's environment) but live in another pid namespace. Only those two kinds
# count, so that unrelated activity on the machine is never taken for a leak.
RUN_MARKER = "PYCONTAINER_TEST_RUN"
_OWN_PIDNS = os.readlink("/proc/self/ns/pid")


def _ours(pid: str) -> bool:
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") != _OWN_PIDNS:
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            marker = f"{RUN_MARKER}={os.environ.get(RUN_MARKER, '')}".encode()
            return marker in f.read().split(b"\0")
    except OSError:
        return False


# Made once per boot by the first `ip netns add` (a shared bind mount of the directory itself) and kept on
# purpose: a fresh host has none until a test makes its first namespace. Namespaces under it still count.
_HOST_ONCE_MOUNTS = {"/run/netns"}


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        fields = (line.split() for line in f)
        return {" ".join(f[3:5]) for f in fields if f[4] not in _HOST_ONCE_MOUNTS}  # root + mount point


def _processes() -> set[tuple[int, str]]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        # Kernel threads (children of kthreadd) come and go and rename themselves.
        if state in "ZX" or comm in _ALLOWED_COMMANDS or entry == "2" or ppid == "2" or not _ours(entry):
            continue
        found.add((int(entry), comm))
    return found


def _netns() -> set[str]:
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _nft_tables() -> set[str]:
    if not shutil.which("nft"):
        return set()
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def _cgroups() -> set[str]:
    return {p for p in glob.glob("/sys/fs/cgroup/**/*pycontainer*", recursive=True) if os.path.isdir(p)}


@dataclass
class HostState:
    mounts: set[str]
    processes: set[tuple[int, str]]
    netns: set[str]
    links: set[str]
    nft_tables: set[str]
    cgroups: set[str]

    @classmethod
    def capture(cls) -> HostState:
        return cls(_mounts(), _processes(), _netns(), _links(), _nft_tables(), _cgroups())

    def leaks_since(self, before: HostState) -> dict[str, list]:
        leaks = {}
        for field in ("mounts", "processes", "netns", "links", "nft_tables", "cgroups"):
            new = getattr(self, field) - getattr(before, field)
            if new:
                leaks[field] = sorted(new)
        return leaks


def is_cli_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"cli.server import serve" in f.read()
    except OSError:
        return False


# A CLI server (cli/server.py) started during a test exits once idle for PYCONTAINER_CLI_LINGER (1 s in tests,
# tests/conftest.py), counted from its start-up or its last command: it gets that much more time, not a pass.
_CLI_SERVER_GRACE = 8.0


def leaks_after(before: HostState, grace: float = 3.0) -> dict[str, list]:
    """What is still new after ``grace`` seconds (processes may take a moment to be reaped)."""
    start = time.monotonic()
    while True:
        leaks = HostState.capture().leaks_since(before)
        waited = time.monotonic() - start
        only_servers = list(leaks) == ["processes"] and all(is_cli_server(pid) for pid, _comm in leaks["processes"])
        if not leaks or waited > grace + (_CLI_SERVER_GRACE if only_servers else 0):
            return leaks
        time.sleep(0.05)
