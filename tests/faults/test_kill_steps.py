"""kill -9 of the CLI, the monitor or a container's init at each step of run, stop, rm and prune; then the
next commands must find the truth, no leak, no stale lock, and nothing committed lost."""

from __future__ import annotations

import pytest

from tests.faults.helpers import (
    FaultCli,
    allocations,
    cgroups_of,
    check_next_run,
    check_no_leftovers,
    check_truth,
    container_processes,
    monitor_pids,
    wait_for,
)
from tests.fixtures.registry import free_port

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


def _with_volume(cli: FaultCli) -> None:
    cli("volume", "create", "keep", check=True)
    cli("run", "--rm", "--network", "none", "-v", "keep:/data", cli.image, "sh", "-c", "echo kept > /data/kept",
        check=True)
    # The next command spawns a monitor that inherits the armed fault (an idle one exits after a second).
    wait_for(lambda: not monitor_pids(cli.root), what="the idle monitor to exit")


RUN_STEPS = [
    ("CLI", "create.before_record"),
    ("CLI", "create.after_record"),
    ("CLI", "run.after_create"),
    ("CLI", "run.after_start"),
    ("monitor", "start.after_network"),
    ("monitor", "start.before_state"),
    ("monitor", "start.after_state"),
    ("container init", "init.after_mount"),
]


@pytest.mark.parametrize(("who", "step"), RUN_STEPS, ids=[s for _w, s in RUN_STEPS])
def test_kill_during_run(fcli: FaultCli, fault_row, who: str, step: str):
    fault_row(f"kill -9 {who}", f"run -d -p: {step}", "ps -a, rm -f, run (same name+port)")
    _with_volume(fcli)
    port = free_port()
    run = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "-v", "keep:/data", fcli.image, *HTTPD,
               fault=step)
    assert fcli.fired(), f"the fault at {step} never fired: {run.returncode} {run.stderr}"
    # The CLI dies with it; a killed monitor is replaced and the start request, retried, succeeds.
    assert run.returncode == (-9 if who == "CLI" else 0), run.stderr
    docs = check_truth(fcli)
    # At most the one container that shows Up has processes: no second copy, no unrecorded orphan.
    up = [d["State"]["Pid"] for d in docs.values() if d["State"]["Running"]]
    assert len(container_processes(fcli)) == len(up) <= 1, (container_processes(fcli), up)
    check_next_run(fcli, "web", port, volume="keep")


def test_kill_monitor_while_stopping(fcli: FaultCli, fault_row):
    """The monitor dies right after sending the stop signal (busybox sleep as PID 1 ignores SIGTERM)."""
    fault_row("kill -9 monitor", "stop: stop.after_signal", "stop (same), ps -a, run")
    port = free_port()
    cid = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", fcli.image, *HTTPD,
               fault="stop.after_signal").stdout.strip()
    stop = fcli("stop", "-t", "1", "web")
    assert fcli.fired()
    assert stop.returncode == 0, stop.stderr
    docs = check_truth(fcli)
    assert docs["web"]["State"]["Status"] == "exited"
    assert not cgroups_of(cid) and cid not in allocations(fcli)
    check_next_run(fcli, "web", port)


def test_kill_cli_while_stopping(fcli: FaultCli, fault_row):
    fault_row("kill -9 CLI", "stop: stop.before_request", "ps -a, stop (same), run")
    port = free_port()
    cid = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", fcli.image, *HTTPD,
               check=True).stdout.strip()
    stop = fcli("stop", "-t", "1", "web", fault="stop.before_request")
    assert fcli.fired() and stop.returncode == -9
    docs = check_truth(fcli)
    assert docs["web"]["State"]["Running"]  # the stop never reached the monitor: still up, and says so
    fcli("stop", "-t", "1", "web", check=True)
    assert check_truth(fcli)["web"]["State"]["Status"] == "exited"
    assert not cgroups_of(cid) and cid not in allocations(fcli)
    check_next_run(fcli, "web", port)


def test_kill_monitor_during_rm_force(fcli: FaultCli, fault_row):
    """rm -f of a supervised container asks the monitor to SIGKILL it; the monitor dies right after."""
    fault_row("kill -9 monitor", "rm -f: stop.after_signal", "rm -f (same), ps -a, run")
    port = free_port()
    cid = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", fcli.image, *HTTPD,
               fault="stop.after_signal").stdout.strip()
    rm = fcli("rm", "-f", "web")
    assert fcli.fired()
    assert rm.returncode == 0, rm.stderr
    assert "web" not in check_truth(fcli)
    check_no_leftovers(fcli, cid)
    check_next_run(fcli, "web", port)


@pytest.mark.parametrize("step", ["exit.before_release", "exit.before_state"])
def test_kill_monitor_while_recording_an_exit(fcli: FaultCli, fault_row, step: str):
    fault_row("kill -9 monitor", f"container exit: {step}", "ps -a, start, rm")
    port = free_port()
    cid = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", fcli.image, "sh", "-c", "exit 3",
               fault=step).stdout.strip()
    wait_for(fcli.fired, what="the monitor to reach the fault")
    wait_for(lambda: not monitor_pids(fcli.root), what="the monitor to be gone")
    docs = check_truth(fcli)
    assert docs["web"]["State"]["Status"] == "exited"
    assert not cgroups_of(cid) and cid not in allocations(fcli)
    fcli("start", "web", check=True)  # it can run again: exits 3 again, with the code seen this time
    wait_for(lambda: fcli.inspect("web")["State"]["Status"] == "exited", what="the restart to exit")
    assert fcli.inspect("web")["State"]["ExitCode"] == 3
    check_next_run(fcli, "web", port)


RM_STEPS = ["rm.after_kill", "rm.before_record", "rm.after_names", "rm.after_rename"]


@pytest.mark.parametrize("step", RM_STEPS)
def test_kill_cli_during_rm(fcli: FaultCli, fault_row, step: str):
    fault_row("kill -9 CLI", f"rm -f: {step}", "ps -a, rm -f (same), run (same name+port)")
    _with_volume(fcli)
    port = free_port()
    cid = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "-v", "keep:/data", fcli.image,
               *HTTPD, check=True).stdout.strip()
    rm = fcli("rm", "-f", "web", fault=step)
    assert fcli.fired() and rm.returncode == -9
    check_truth(fcli)
    again = fcli("rm", "-f", "web")
    assert again.returncode == 0 or "No such container" in again.stderr, again.stderr
    assert "web" not in fcli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    check_no_leftovers(fcli, cid)
    check_next_run(fcli, "web", port, volume="keep")


@pytest.mark.parametrize("verb", [("container", "prune", "-f"), ("system", "prune", "-f")],
                         ids=["container-prune", "system-prune"])
def test_kill_cli_during_prune(fcli: FaultCli, fault_row, verb: tuple[str, ...]):
    fault_row("kill -9 CLI", f"{' '.join(verb[:2])}: prune.after_remove", "ps -a, prune (same), run")
    _with_volume(fcli)
    ids = [fcli("run", "--name", f"old{i}", "--network", "none", "-v", "keep:/data", fcli.image, "true",
                check=True) and fcli.inspect(f"old{i}")["Id"] for i in range(3)]
    port = free_port()
    fcli("run", "-d", "--name", "up", "-p", f"127.0.0.1:{port}:80", fcli.image, *HTTPD, check=True)
    proc = fcli(*verb, fault="prune.after_remove")
    assert fcli.fired() and proc.returncode == -9
    check_truth(fcli)
    fcli(*verb, check=True)  # no stale prune lock
    names = fcli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    assert names == ["up"]
    for cid in ids:
        check_no_leftovers(fcli, cid)
    assert "keep" in fcli("volume", "ls", "-q", check=True).stdout.split()  # named volumes are kept
    fcli("rm", "-f", "up", check=True)
    check_next_run(fcli, "up", port, volume="keep")
