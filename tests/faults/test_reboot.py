"""A host "reboot" under an engine root: every process of the root dies (monitor and containers), its kernel
objects go (cgroups, bridge, nftables table, mounts), its files stay. The first command after it may be any
of `ps -a`, `start`, `run`, `rm`; all of them must then see the truth and work."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.faults.helpers import (
    FaultCli,
    allocations,
    cgroups_of,
    check_next_run,
    check_truth,
    container_processes,
    curl,
    monitor_pids,
    wait_for,
)
from tests.fixtures.registry import free_port

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


def simulate_reboot(cli: FaultCli, ids: list[str]) -> None:
    for pid in monitor_pids(cli.root) + container_processes(cli):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not monitor_pids(cli.root) and not container_processes(cli), what="every process to die")
    # What the kernel forgets at a reboot; only this root's objects (its own bridge and table).
    with open("/proc/self/mountinfo") as f:
        mountpoints = [line.split()[4] for line in f if line.split()[4].startswith(cli.root)]
    for mountpoint in reversed(mountpoints):
        subprocess.run(["umount", "-l", mountpoint], check=False)
    subprocess.run(["ip", "link", "del", cli.bridge], capture_output=True, check=False)
    subprocess.run(["nft", "delete", "table", "ip", cli.table], capture_output=True, check=False)
    for cid in ids:
        for path in sorted(cgroups_of(cid), key=len, reverse=True):
            os.rmdir(path)


@pytest.mark.parametrize("first", ["ps", "start", "run", "rm"])
def test_reboot_then_next_command(fcli: FaultCli, fault_row, first: str):
    fault_row("host reboot", "2 running (bridge, -p), 1 exited", f"{first}, then ps -a/start/run/rm")
    fcli("volume", "create", "keep", check=True)
    port, port2 = free_port(), free_port()
    up = fcli("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "-v", "keep:/data", fcli.image,
              "sh", "-c", "echo kept > /data/kept; exec httpd -f -p 80 -h /etc", check=True).stdout.strip()
    other = fcli("run", "-d", "--name", "other", "--restart", "always", "-p", f"127.0.0.1:{port2}:80", fcli.image,
                 *HTTPD, check=True).stdout.strip()
    done = fcli("run", "--name", "done", "--network", "none", fcli.image, "true", check=True)
    assert done.returncode == 0
    wait_for(lambda: curl(f"http://127.0.0.1:{port}/hostname"), what="web to answer")
    simulate_reboot(fcli, [up, other])

    if first == "ps":
        fcli("ps", "-a", check=True)
    elif first == "start":
        fcli("start", "web", check=True)
    elif first == "run":
        fcli("run", "-d", "--name", "new", "-p", f"127.0.0.1:{free_port()}:80", fcli.image, *HTTPD, check=True)
    else:
        fcli("rm", "done", check=True)

    docs = check_truth(fcli)
    if first != "start":
        # Nobody saw them exit: Docker's 255. Restart policies are not re-applied at boot (no daemon).
        assert docs["web"]["State"]["Status"] == "exited" and docs["web"]["State"]["ExitCode"] == 255
    assert docs["other"]["State"]["Status"] == "exited" and docs["other"]["State"]["ExitCode"] == 255
    for cid in (up, other):
        if not docs["web" if cid == up else "other"]["State"]["Running"]:
            assert not cgroups_of(cid) and cid not in allocations(fcli)
    if first != "rm":
        assert docs["done"]["State"]["ExitCode"] == 0  # a clean exit recorded before the reboot stays
    fcli("start", "web", "other", check=True)
    assert curl(f"http://127.0.0.1:{port}/hostname") or wait_for(
        lambda: curl(f"http://127.0.0.1:{port}/hostname"), what="web to answer after its start")
    wait_for(lambda: curl(f"http://127.0.0.1:{port2}/hostname"), what="other to answer after its start")
    fcli("rm", "-f", "web", "other", check=True)
    check_next_run(fcli, "web", port, volume="keep")
