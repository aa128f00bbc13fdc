"""Commands racing on one root: parallel runs, one name wanted by many, parallel pulls of one image, and rm -f
racing start. Every command answers (no wedge), the end state is consistent, and nothing leaks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.helpers import (
    WEDGED,
    FaultCli,
    allocations,
    cgroups_of,
    check_truth,
    container_processes,
    curl,
    monitor_pids,
    wait_for,
)
from tests.fixtures.images import File

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


def parallel(cli: FaultCli, commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda argv: cli(*argv, timeout=2 * WEDGED), commands))


def records(cli: FaultCli) -> list[str]:
    directory = os.path.join(cli.root, "containers")
    return sorted(e for e in os.listdir(directory) if len(e) == 64) if os.path.isdir(directory) else []


def bridge_ports(cli: FaultCli) -> list[str]:
    path = f"/sys/class/net/{cli.bridge}/brif"
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_twenty_parallel_detached_runs(fcli: FaultCli, fault_row):
    fault_row("concurrency", "20 x run -d -p 127.0.0.1::80 (distinct names)", "ps, inspect, curl each")
    runs = parallel(fcli, [["run", "-d", "--name", f"web{i}", "-p", "127.0.0.1::80", fcli.image, *HTTPD]
                           for i in range(20)])
    assert [r.returncode for r in runs] == [0] * 20, [r.stderr for r in runs if r.returncode]
    docs = check_truth(fcli)
    assert sorted(docs) == sorted(f"web{i}" for i in range(20))
    assert all(d["State"]["Running"] for d in docs.values())
    addresses = {d["NetworkSettings"]["IPAddress"] for d in docs.values()}
    ports = {d["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] for d in docs.values()}
    assert len(addresses) == 20 and all(a.startswith(fcli.prefix + ".") for a in addresses), addresses
    assert len(ports) == 20, ports
    assert len(bridge_ports(fcli)) == 20
    for name, doc in docs.items():
        port = doc["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        hostname = wait_for(lambda p=port: curl(f"http://127.0.0.1:{p}/hostname"), what=f"{name} to answer")
        assert hostname.strip() == doc["Config"]["Hostname"]
    fcli("rm", "-f", *docs, check=True)
    assert records(fcli) == [] and bridge_ports(fcli) == [] and allocations(fcli) == {}


def test_ten_parallel_runs_of_one_name(fcli: FaultCli, fault_row):
    fault_row("concurrency", "10 x run -d --name x -p 127.0.0.1::80", "ps -a, records, cgroups, veths")
    runs = parallel(fcli, [["run", "-d", "--name", "same", "-p", "127.0.0.1::80", fcli.image, *HTTPD]
                           for _attempt in range(10)])
    winners = [r for r in runs if r.returncode == 0]
    assert len(winners) == 1, [(r.returncode, r.stderr) for r in runs]
    winner = winners[0].stdout.strip()
    message = (f'Conflict. The container name "/same" is already in use by container "{winner}". '
               "You have to remove (or rename) that container to be able to reuse that name.")
    for loser in (r for r in runs if r.returncode != 0):
        assert loser.returncode == 125 and message in loser.stderr, loser.stderr
    docs = check_truth(fcli)
    assert list(docs) == ["same"] and docs["same"]["State"]["Running"]
    assert records(fcli) == [winner]                     # no record of a loser
    assert list(allocations(fcli)) == [winner]           # no address or port of a loser
    assert len(bridge_ports(fcli)) == 1                  # no veth of a loser
    assert len(container_processes(fcli)) == 1
    with open(os.path.join(fcli.root, "events", "events.jsonl")) as f:
        creates = [e for e in map(json.loads, f) if e.get("Action") == "create" and e.get("Type") == "container"]
    assert [e["Actor"]["ID"] for e in creates] == [winner]
    fcli("rm", "-f", "same", check=True)
    assert not cgroups_of(winner) and records(fcli) == []


def test_parallel_pulls_of_one_image(fcli: FaultCli, fault_row, oci_builder):
    fault_row("concurrency", "6 x pull (one new image, 3 layers)", "images, layer store, run")
    ref, _built = oci_builder.push(f"faults/parallel:{os.getpid()}",
                                   [[File(f"layer{i}.bin", os.urandom(200_000))] for i in range(3)], {})
    layers_dir = os.path.join(fcli.root, "images", "layers")
    before = {e for e in os.listdir(layers_dir) if os.path.isdir(os.path.join(layers_dir, e))}
    pulls = parallel(fcli, [["pull", "-q", ref] for _attempt in range(6)])
    assert [p.returncode for p in pulls] == [0] * 6, [p.stderr for p in pulls if p.returncode]
    images = fcli("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", check=True).stdout
    assert len([line for line in images.splitlines() if "faults/parallel" in line]) == 1, images
    new = {e for e in os.listdir(layers_dir) if os.path.isdir(os.path.join(layers_dir, e))} - before
    assert len(new) == 3, new                            # each layer unpacked once, no stray copy
    tmp = os.path.join(fcli.root, "images", "tmp")
    assert not [e for e in os.listdir(tmp) if not e.endswith(".lock")] if os.path.isdir(tmp) else True
    out = fcli("run", "--rm", "--network", "none", ref, "sh", "-c", "ls /layer*.bin | wc -l")
    # The image has no shell of its own: what matters is that it resolves; busybox-less images fail with 127.
    assert out.returncode in (0, 127), out.stderr


def test_rm_force_racing_start(fcli: FaultCli, fault_row):
    fault_row("concurrency", "rm -f racing start (8 rounds, bridge)", "ps -a, records, processes, cgroups")
    for round_ in range(8):
        cid = fcli("create", "--name", "racer", "-p", "127.0.0.1::80", fcli.image, *HTTPD, check=True).stdout.strip()
        start, rm = parallel(fcli, [["start", "racer"], ["rm", "-f", "racer"]])
        assert rm.returncode == 0 or "No such container" in rm.stderr, (round_, rm.stderr)
        assert start.returncode == 0 or re.search(r"No such container|not found|is being removed", start.stderr), \
            (round_, start.stderr)
        # Whatever the order: rm -f won in the end, so nothing of the container may be left.
        leftover = fcli("rm", "-f", "racer")
        assert leftover.returncode != 0 and "No such container" in leftover.stderr, (round_, leftover.stderr)
        check_truth(fcli)
        assert records(fcli) == [], round_
        wait_for(lambda: not container_processes(fcli), what=f"round {round_}: the container's processes to go")
        assert not cgroups_of(cid), (round_, cgroups_of(cid))
        assert cid not in allocations(fcli) and bridge_ports(fcli) == [], round_


@pytest.mark.parametrize("step", ["start.before_log", "start.after_network", "start.before_state"])
def test_rm_force_while_the_monitor_is_starting_it(fcli: FaultCli, fault_row, step: str):
    """The race window held open: the monitor stalls at ``step`` of the start while `rm -f` runs."""
    fault_row("concurrency", f"rm -f while the monitor stalls at {step}", "ps -a, records, processes, cgroups")
    cid = fcli("create", "--name", "racer", "-p", "127.0.0.1::80", fcli.image, *HTTPD, check=True).stdout.strip()
    wait_for(lambda: not monitor_pids(fcli.root), what="the idle monitor to exit")
    start = fcli.spawn("start", "racer", fault=f"{step}:stall")
    try:
        wait_for(fcli.fired, what=f"the monitor to reach {step}")
        rm = fcli("rm", "-f", "racer")
    finally:
        _out, start_err = start.communicate(timeout=WEDGED)
    assert rm.returncode == 0, rm.stderr
    assert start.returncode == 0 or "No such container" in start_err, start_err
    leftover = fcli("rm", "-f", "racer")
    assert leftover.returncode != 0 and "No such container" in leftover.stderr, leftover.stderr
    check_truth(fcli)
    assert records(fcli) == []
    wait_for(lambda: not container_processes(fcli), what="the container's processes to go")
    assert not cgroups_of(cid), cgroups_of(cid)
    assert cid not in allocations(fcli) and bridge_ports(fcli) == []
