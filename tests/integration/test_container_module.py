"""The `pycontainer` module's idempotency, check and diff mode, and `update` in place (engine and CLI),
through real `ansible` / `ansible-playbook` runs against a test engine root and the registry fixture."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.integration.helpers import Cli, write_engine_config
from tests.integration.test_ansible import adhoc

MIB = 1024 * 1024


@pytest.fixture
def setup(engine_root, registry, busybox_image, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    cli = Cli(root=str(engine_root), config=config)
    cli("pull", "-q", "busybox", check=True)
    return cli, f"root={engine_root} config={config}"


def _inspect(cli: Cli, name: str) -> dict:
    proc = cli("inspect", name)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else {}


def _cgroup_limits(container_id: str) -> dict[str, int]:
    """What the kernel has for the container: memory, memory+swap (-1 unlimited), CPU quota (-1), pids (-1)."""
    from plugins.module_utils.linux.cgroups import CgroupConfig, container_cgroup
    from plugins.module_utils.linux.cgroups.base import read, read_int
    from plugins.module_utils.linux.cgroups.v1 import V1Cgroup

    cgroup = container_cgroup(container_id, CgroupConfig())
    assert cgroup.exists()
    unlimited = lambda v: -1 if v >= 1 << 62 else v  # noqa: E731  v1 shows "no limit" as a huge number
    if isinstance(cgroup, V1Cgroup):
        mem, cpu, pids = cgroup.dirs["memory"], cgroup.dirs["cpu"], cgroup.dirs["pids"]
        memsw = f"{mem}/memory.memsw.limit_in_bytes"
        return {"memory": unlimited(read_int(f"{mem}/memory.limit_in_bytes")),
                "memory_swap": unlimited(read_int(memsw)) if os.path.exists(memsw) else None,
                "cpu_quota": read_int(f"{cpu}/cpu.cfs_quota_us"), "pids": read_int(f"{pids}/pids.max")}
    path = cgroup.paths()[0]
    memory = read_int(f"{path}/memory.max")
    swap = read_int(f"{path}/memory.swap.max") if os.path.exists(f"{path}/memory.swap.max") else None
    quota = read(f"{path}/cpu.max").split()[0]
    return {"memory": memory, "memory_swap": None if swap is None else (-1 if swap < 0 else memory + swap),
            "cpu_quota": -1 if quota == "max" else int(quota), "pids": read_int(f"{path}/pids.max")}


def _wait_for(predicate, what: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


# -- engine and CLI: `pycontainer update` --------------------------------------------------------------------

def test_update_writes_the_running_containers_cgroup_and_its_record(setup):
    cli, _ = setup
    cid = cli("run", "-d", "--name", "upd", "--network", "none", "-m", "64m", "--pids-limit", "20", "busybox",
              "sleep", "300", check=True).stdout.strip()
    pid = _inspect(cli, "upd")["State"]["Pid"]
    assert _cgroup_limits(cid)["memory"] == 64 * MIB and _cgroup_limits(cid)["pids"] == 20
    proc = cli("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "0.5", "--pids-limit", "40",
               "--restart", "on-failure:3", "upd", check=True)
    assert proc.stdout == "upd\n"
    limits = _cgroup_limits(cid)
    assert limits["memory"] == 128 * MIB and limits["cpu_quota"] == 50_000 and limits["pids"] == 40
    assert limits["memory_swap"] in (256 * MIB, None)  # None: the kernel has no swap accounting
    after = _inspect(cli, "upd")
    host = after["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["PidsLimit"]) == (
        128 * MIB, 256 * MIB, 500_000_000, 40)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert after["Id"] == cid and after["State"]["Running"] and after["State"]["Pid"] == pid  # not restarted
    # Lowering memory below memory+swap, then back to unlimited: the kernel's ordering rules are met.
    cli("update", "-m", "32m", "upd", check=True)
    assert _cgroup_limits(cid)["memory"] == 32 * MIB
    cli("update", "--memory", "0", "--memory-swap", "-1", "--cpus", "0", "--pids-limit", "-1", "upd", check=True)
    assert _cgroup_limits(cid) | {"memory_swap": -1} == {"memory": -1, "memory_swap": -1, "cpu_quota": -1,
                                                          "pids": -1}
    assert _inspect(cli, "upd")["HostConfig"]["Memory"] == 0
    events = cli("events", "--since", "5m", "--until", "0s", "--filter", "event=update", check=True).stdout
    assert events.count(f"container update {cid}") == 3
    cli("rm", "-f", "upd", check=True)


def test_update_refusals_and_a_stopped_container(setup):
    cli, _ = setup
    proc = cli("update", "nosuch", "--memory", "64m")
    assert proc.returncode == 1 and "No such container: nosuch" in proc.stderr
    cli("create", "--name", "cold", "--network", "none", "busybox", "sleep", "300", check=True)
    proc = cli("update", "cold")
    assert proc.returncode == 125 and "you must provide one or more flags" in proc.stderr
    proc = cli("update", "--memory", "1m", "cold")
    assert proc.returncode == 1 and "Minimum memory limit allowed is 6MB" in proc.stderr
    proc = cli("update", "--memory", "64m", "--memory-swap", "32m", "cold")
    assert proc.returncode == 1 and "memoryswap limit should be larger" in proc.stderr
    assert _inspect(cli, "cold")["HostConfig"]["Memory"] == 0  # refused: nothing written
    # A stopped container: only the record changes; the next start applies it.
    cli("update", "--memory", "48m", "--pids-limit", "30", "cold", check=True)
    cid = _inspect(cli, "cold")["Id"]
    cli("start", "cold", check=True)
    limits = _cgroup_limits(cid)
    assert limits["memory"] == 48 * MIB and limits["pids"] == 30
    cli("rm", "-f", "cold", check=True)
    cli("create", "--name", "tmp", "--rm", "--network", "none", "busybox", "true", check=True)
    proc = cli("update", "--restart", "always", "tmp")
    assert proc.returncode == 1 and "AutoRemove is enabled" in proc.stderr
    cli("rm", "-f", "tmp", check=True)


def test_updated_restart_policy_applies_to_the_running_container(setup):
    cli, _ = setup
    cli("run", "-d", "--name", "pol", "--network", "none", "busybox", "sleep", "300", check=True)
    cli("update", "--restart", "always", "pol", check=True)
    os.kill(_inspect(cli, "pol")["State"]["Pid"], signal.SIGKILL)  # dies on its own: not stopped by a user
    _wait_for(lambda: _inspect(cli, "pol")["RestartCount"] >= 1 and _inspect(cli, "pol")["State"]["Running"],
              "the restart by the updated policy")
    cli("rm", "-f", "pol", check=True)
