"""Running the CLI with a fault armed, and the checks every fault case makes on the next commands."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time
from dataclasses import dataclass

from tests.integration.helpers import PYCONTAINER

FAULT_ENV = "PYCONTAINER_FAULT"
ONCE_ENV = "PYCONTAINER_FAULT_ONCE"
# A command that does not finish in this time is wedged (a stale lock, a lost wake-up): the test fails.
WEDGED = 60


@dataclass
class FaultCli:
    root: str
    config: str
    image: str
    bridge: str
    table: str
    prefix: str
    flag: str       # the PYCONTAINER_FAULT_ONCE file: the first process that fires the fault creates it

    def __call__(self, *args: str, check: bool = False, fault: str = "", timeout: float = WEDGED,
                 input: str | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env.pop(FAULT_ENV, None)
        if fault:
            env[FAULT_ENV] = fault
            env[ONCE_ENV] = self.flag
        try:
            proc = subprocess.run([PYCONTAINER, "--root", self.root, "--config", self.config, *args], env=env,
                                  capture_output=True, text=True, timeout=timeout, input=input, check=False)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pycontainer {' '.join(args)} wedged (no answer in {timeout} s)") from None
        if check and proc.returncode != 0:
            raise AssertionError(f"pycontainer {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def spawn(self, *args: str, fault: str) -> subprocess.Popen:
        """The command in the background, with ``fault`` armed (for a test that acts while it stalls)."""
        env = {**os.environ, FAULT_ENV: fault, ONCE_ENV: self.flag}
        return subprocess.Popen([PYCONTAINER, "--root", self.root, "--config", self.config, *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def fired(self) -> bool:
        return os.path.exists(self.flag)

    def inspect(self, ref: str) -> dict:
        return json.loads(self("inspect", ref, check=True).stdout)[0]

    def ids(self) -> list[str]:
        return self("ps", "-aq", "--no-trunc", check=True).stdout.split()


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not value:
        raise AssertionError(f"timed out waiting for {what}")
    return value


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] not in (b"Z", b"X")


def cgroups_of(container_id: str) -> list[str]:
    return [p for p in glob.glob(f"/sys/fs/cgroup/**/*{container_id}*", recursive=True) if os.path.isdir(p)]


def processes_of_root(root: str) -> list[int]:
    """Monitors of ``root`` and every process whose cwd or root lies in it (containers and their children)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if any(b"supervision.monitor import main" in a for a in argv) and root.encode() in argv:
                found.append(int(entry))
                continue
            if os.readlink(f"/proc/{entry}/root").startswith(root):
                found.append(int(entry))
        except OSError:
            continue
    return found


def monitor_pids(root: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"supervision.monitor import main" in a for a in argv) and root.encode() in argv:
            found.append(int(entry))
    return found


def allocations(cli: FaultCli) -> dict[str, dict]:
    try:
        with open(os.path.join(cli.root, "network", "state.json")) as f:
            return json.load(f).get("containers", {})
    except FileNotFoundError:
        return {}


def holder_alive(entry: dict) -> bool:
    holder = entry.get("holder") or [0, 0]
    try:
        with open(f"/proc/{holder[0]}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return int(data[data.rindex(b")") + 2:].split()[19]) == holder[1]


def check_truth(cli: FaultCli) -> dict[str, dict]:
    """`ps -a` answers (no stale lock) and tells the truth: a container whose process is gone is not Up, one
    that shows Up has its process; a container that is not running holds no cgroup and no allocation.
    Returns {name: inspect document}."""
    rows = cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}", check=True).stdout
    docs = {}
    for line in rows.splitlines():
        cid, name, status = line.split(" ", 2)
        doc = cli.inspect(cid)
        docs[name] = doc
        state = doc["State"]
        if status.startswith("Up"):
            assert state["Running"] and pid_alive(state["Pid"]), f"{name} shows {status!r} without a process"
        else:
            assert not state["Running"], f"{name}: {status!r} but inspect says running"
            assert status.startswith(("Exited", "Created")), f"{name}: {status!r}"
            assert not cgroups_of(cid), f"{name} is {status!r} yet holds cgroups {cgroups_of(cid)}"
            assert cid not in {c for c, e in allocations(cli).items() if holder_alive(e)}, \
                f"{name} is {status!r} yet holds a network allocation"
    return docs


def check_no_leftovers(cli: FaultCli, container_id: str) -> None:
    """Nothing of a removed (or never completed) container: record, name, cgroup, allocation, veth."""
    assert not os.path.exists(os.path.join(cli.root, "containers", container_id)), "record left behind"
    assert not cgroups_of(container_id), f"cgroup left behind: {cgroups_of(container_id)}"
    assert container_id not in allocations(cli), "network allocation left behind"


def check_next_run(cli: FaultCli, name: str, port: int, volume: str = "") -> None:
    """The name, the host port and the lock are free: a new container of that name publishing that port runs,
    answers on it, and can be removed; images and named volumes survived."""
    for cid in cli.ids():
        cli("rm", "-f", cid, check=True)
    args = ["-v", f"{volume}:/data"] if volume else []
    cli("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", *args, cli.image,
        "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    wait_for(lambda: curl(f"http://127.0.0.1:{port}/hostname"), what="the new container to answer")
    if volume:
        assert cli("exec", name, "cat", "/data/kept", check=True).stdout == "kept\n", "named volume lost"
    cli("rm", "-f", name, check=True)
    assert cli.image in cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    for cid, entry in allocations(cli).items():
        assert holder_alive(entry), f"allocation of {cid[:12]} held by nobody"


def curl(url: str) -> str:
    proc = subprocess.run(["curl", "-sS", "--max-time", "2", "--noproxy", "*", url], capture_output=True,
                          text=True, timeout=10, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def remove_everything(cli: FaultCli) -> None:
    """Teardown: whatever a fault left, the CLI must be able to remove (the leak check then looks)."""
    ids = cli("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        cli("rm", "-f", "-v", *ids)
    cli("volume", "prune", "-af")
    wait_for(lambda: not monitor_pids(cli.root), timeout=10, what="the monitor to exit")


def container_processes(cli: FaultCli) -> list[int]:
    """Processes running on a container filesystem of this root (their mount table names its overlay)."""
    needle = os.path.join(cli.root, "containers").encode()
    own = os.readlink("/proc/self/ns/pid")
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == own:
                continue
            with open(f"/proc/{entry}/mountinfo", "rb") as f:
                first = f.readline()
            if needle in first or needle in _root_mount(entry):
                found.append(int(entry))
        except OSError:
            continue
    return found


def _root_mount(pid: str) -> bytes:
    with open(f"/proc/{pid}/mountinfo", "rb") as f:
        for line in f:
            if line.split()[4] == b"/":
                return line
    return b""
