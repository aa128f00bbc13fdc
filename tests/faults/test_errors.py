"""A full disk (ENOSPC injected) at a step of run: the command fails and leaves nothing half done."""

from __future__ import annotations

import pytest

from tests.faults.helpers import (
    FaultCli,
    allocations,
    cgroups_of,
    check_next_run,
    check_truth,
    container_processes,
    monitor_pids,
    wait_for,
)
from tests.fixtures.registry import free_port

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


def test_enospc_writing_the_etc_files_leaves_no_record(fcli: FaultCli, fault_row):
    fault_row("ENOSPC in CLI", "run: create.etc_files", "ps -a, run (same name)")
    port = free_port()
    run = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", fcli.image, *HTTPD,
               fault="create.etc_files:enospc")
    assert fcli.fired() and run.returncode == 125 and "No space left on device" in run.stderr, run.stderr
    assert fcli.ids() == [], "the failed run left a container behind"
    check_next_run(fcli, "web", port)


@pytest.mark.parametrize("step", ["start.after_network", "start.before_state"])
def test_enospc_in_the_monitor_while_starting(fcli: FaultCli, fault_row, step: str):
    fault_row("ENOSPC in monitor", f"run -d -p: {step}", "ps -a, start, rm, run (same name+port)")
    port = free_port()
    wait_for(lambda: not monitor_pids(fcli.root), what="the idle monitor to exit")
    run = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", fcli.image, *HTTPD,
               fault=f"{step}:enospc")
    assert fcli.fired() and run.returncode == 125 and "No space left on device" in run.stderr, run.stderr
    docs = check_truth(fcli)
    cid = docs["web"]["Id"]
    assert docs["web"]["State"]["Status"] == "created"
    assert container_processes(fcli) == [], "the failed start left the container's process running"
    assert not cgroups_of(cid) and cid not in allocations(fcli)
    fcli("start", "web", check=True)  # the disk has room again: it starts
    assert fcli.inspect("web")["State"]["Running"]
    check_next_run(fcli, "web", port)
