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

    def unlimited(value: int) -> int:  # v1 shows "no limit" as a huge number
        return -1 if value >= 1 << 62 else value

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
    cli, _registry = setup
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
    unlimited = {"memory": -1, "memory_swap": -1, "cpu_quota": -1, "pids": -1}
    assert _cgroup_limits(cid) | {"memory_swap": -1} == unlimited
    assert _inspect(cli, "upd")["HostConfig"]["Memory"] == 0
    events = cli("events", "--since", "5m", "--until", "0s", "--filter", "event=update", check=True).stdout
    assert events.count(f"container update {cid}") == 3
    cli("rm", "-f", "upd", check=True)


def test_update_refusals_and_a_stopped_container(setup):
    cli, _registry = setup
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
    cli, _registry = setup
    cli("run", "-d", "--name", "pol", "--network", "none", "busybox", "sleep", "300", check=True)
    cli("update", "--restart", "always", "pol", check=True)
    os.kill(_inspect(cli, "pol")["State"]["Pid"], signal.SIGKILL)  # dies on its own: not stopped by a user
    _wait_for(lambda: _inspect(cli, "pol")["RestartCount"] >= 1 and _inspect(cli, "pol")["State"]["Running"],
              "the restart by the updated policy")
    cli("rm", "-f", "pol", check=True)


# -- the module ---------------------------------------------------------------------------------------------

def _run(engine_args: str, *extra: str, **params) -> tuple[int, dict]:
    root, config = (item.split("=", 1)[1] for item in engine_args.split())
    return adhoc("pycontainer", json.dumps({"root": root, "config": config, **params}), *extra)


def _disk(cli: Cli) -> str:
    """Everything check mode must leave alone: containers (config and state), images, volumes."""
    ids = cli("ps", "-aq", "--no-trunc", check=True).stdout.split()
    containers = [_inspect(cli, i) for i in ids]
    images = cli("images", "-q", "--no-trunc", check=True).stdout
    volumes = cli("volume", "ls", "-q", check=True).stdout
    return json.dumps([containers, images, volumes], sort_keys=True)


def _check_then_real(cli: Cli, engine_args: str, **params) -> dict:
    """Check mode first (nothing on disk may change), then the real run: same changed, same actions, same diff."""
    before = _disk(cli)
    rc, check = _run(engine_args, "--check", "--diff", "-vvv", **params)  # -vvv: the tree file keeps diff
    assert rc == 0, check
    assert _disk(cli) == before, "check mode changed something"
    rc, real = _run(engine_args, "--diff", "-vvv", **params)
    assert rc == 0, real
    assert (check["changed"], check["actions"]) == (real["changed"], real["actions"]), (check, real)
    assert check["diff"] == real["diff"], (check["diff"], real["diff"])
    return real


def test_check_mode_predicts_every_real_run_and_diff_shows_the_compared_options(setup):
    cli, engine_args = setup
    base = {"name": "app", "image": "busybox", "command": "sleep 300", "network_mode": "none", "stop_timeout": 1}
    steps = [
        ({}, ["Created container app", "Started container app"]),
        ({}, []),
        ({"memory": "64m"}, ["Updated container app"]),
        ({"memory": "64m", "restart_policy": "on-failure", "restart_retries": 2}, ["Updated container app"]),
        ({"memory": "64m", "env": {"MODE": "x"}},
         ["Removed container app", "Created container app", "Started container app"]),
        ({"state": "stopped"}, ["Stopped container app"]),
        ({"state": "stopped"}, []),
        ({"state": "present"}, []),
        ({}, ["Started container app"]),
        ({"restart": True}, ["Restarted container app"]),
        ({"recreate": True}, ["Removed container app", "Created container app", "Started container app"]),
        ({"state": "restarted"}, ["Restarted container app"]),
        ({"pull": "always"}, []),  # the registry has the same image: nothing to do
        ({"state": "stopped", "force_kill": True}, ["Killed container app"]),
        ({"state": "absent"}, ["Removed container app"]),
        ({"state": "absent"}, []),
    ]
    ids = []
    for extra, actions in steps:
        real = _check_then_real(cli, engine_args, **{**base, **extra})
        assert real["actions"] == actions and real["changed"] is bool(actions), (extra, real)
        ids.append(real["container"].get("Id"))
    assert ids[0] == ids[1] == ids[2] == ids[3] != ids[4]  # updated in place, then recreated for env
    assert ids[10] != ids[9]
    # The diff is the compared options (those the task sets) and the state, not the inspect dump.
    rc, real = _run(engine_args, "--diff", "-vvv", **{**base, "memory": "96m"})
    assert rc == 0 and real["actions"] == ["Created container app", "Started container app"]
    assert real["diff"]["before"] == {"state": "absent"}
    after = real["diff"]["after"]
    assert after == {"image": after["image"], "command": ["sleep", "300"], "network_mode": "none", "stop_timeout": 1,
                     "memory": 96 * MIB, "state": "running"} and after["image"].startswith("sha256:")
    rc, real = _run(engine_args, "--diff", "-vvv", **{**base, "memory": "128m"})
    assert real["diff"]["before"]["memory"] == 96 * MIB and real["diff"]["after"]["memory"] == 128 * MIB
    assert real["differences"] == [{"name": "memory", "actual": 96 * MIB, "desired": 128 * MIB}]
    assert _cgroup_limits(real["container"]["Id"])["memory"] == 128 * MIB  # updated in the kernel too
    _run(engine_args, name="app", state="absent")


def test_equivalent_spellings_are_no_change(setup, tmp_path):
    cli, engine_args = setup
    data = tmp_path / "data"
    data.mkdir()
    image_id = json.loads(cli("image", "inspect", "busybox", check=True).stdout)[0]["Id"]
    first = {"name": "traps", "image": "busybox", "command": "sleep 300", "state": "present",
             "env": {"B": 2, "A": "x", "FLAG": True}, "labels": {"n": 1},
             "published_ports": ["8080:80", "127.0.0.1:8081:81/tcp", "9000:90/udp", "7000"],
             "memory": "64m", "volumes": [f"{data}:/data", "named:/named:ro", "/anon"],
             "capabilities": ["NET_ADMIN"], "exposed_ports": ["5000"], "etc_hosts": {"db": "192.0.2.1"}}
    real = _check_then_real(cli, engine_args, **first)
    assert real["actions"] == ["Created container traps"]
    assert real["container"]["Config"]["Env"][-3:] == ["B=2", "A=x", "FLAG=true"]
    same_things = [
        {"image": "busybox:latest"},
        {"image": "docker.io/library/busybox:latest"},
        {"image": image_id},
        {"command": ["sleep", "300"]},
        {"env": {"FLAG": "true", "A": "x", "B": "2"}, "labels": {"n": "1"}},
        {"published_ports": ["7000/tcp", "9000:90/udp", "127.0.0.1:8081:81",
                             "0.0.0.0:8080:80/tcp"]},
        {"memory": str(64 * MIB)},
        {"volumes": [f"{data}/:/data/:rw", "/anon/", "named:/named/:ro"]},
        {"capabilities": ["cap_net_admin"], "exposed_ports": ["5000/tcp"]},
    ]
    for change in same_things:
        for mode in ("--check", None):
            rc, result = _run(engine_args, *([mode] if mode else []), **{**first, **change})
            assert rc == 0 and result["changed"] is False and result["actions"] == [], (change, result)
    # Defaults the image fills in are not compared when unset; set to what the container has, no change either.
    rc, result = _run(engine_args, name="traps", image="busybox", state="present")
    assert rc == 0 and result["changed"] is False, result
    rc, result = _run(engine_args, name="traps", image="busybox", state="present", working_dir="/", user="",
                      env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    assert rc == 0 and result["changed"] is False, result
    # ...and a real difference is one.
    rc, result = _run(engine_args, **{**first, "published_ports": ["8080:80", "127.0.0.1:8081:81", "9000:90/udp"]})
    assert rc == 0 and result["changed"] is True and [d["name"] for d in result["differences"]] == [
        "published_ports"], result
    _run(engine_args, name="traps", state="absent", keep_volumes=False)
    cli("volume", "rm", "named", check=True)


def test_keep_volumes_and_the_anonymous_volume(setup):
    cli, engine_args = setup
    params = {"name": "vols", "image": "busybox", "command": "sleep 300", "network_mode": "none", "volumes": ["/anon"],
              "state": "present"}
    rc, _result = _run(engine_args, **params)
    assert rc == 0 and len(cli("volume", "ls", "-q", check=True).stdout.split()) == 1
    rc, _result = _run(engine_args, name="vols", state="absent")  # keep_volumes defaults to true: kept
    assert rc == 0 and len(cli("volume", "ls", "-q", check=True).stdout.split()) == 1
    cli("volume", "prune", "-f", check=True)
    rc, _result = _run(engine_args, **params)
    rc, gone = _run(engine_args, name="vols", state="absent", keep_volumes=False)
    assert rc == 0 and gone["changed"] and cli("volume", "ls", "-q", check=True).stdout.split() == []


def test_update_that_the_kernel_refuses_falls_back_to_recreate_and_bad_input_fails_cleanly(setup):
    cli, engine_args = setup
    base = {"name": "sw", "image": "busybox", "command": "sleep 300", "network_mode": "none", "stop_timeout": 1,
            "memory": "32m", "memory_swap": "64m"}
    rc, _result = _run(engine_args, **base)
    assert rc == 0
    # memory above the stored memory+swap: `update` would refuse it, so the container is recreated.
    real = _check_then_real(cli, engine_args, **{**base, "memory": "128m", "memory_swap": None})
    assert real["actions"] == ["Removed container sw", "Created container sw", "Started container sw"], real
    assert real["container"]["HostConfig"]["Memory"] == 128 * MIB
    rc, bad = _run(engine_args, **{**base, "memory": "lots"})
    assert rc != 0 and "invalid size" in bad["msg"] and "Traceback" not in json.dumps(bad)
    rc, bad = _run(engine_args, **{**base, "ulimits": ["nofile"]})
    assert rc != 0 and "invalid ulimit" in bad["msg"]
    _run(engine_args, name="sw", state="absent")


def _playbook(tmp_path, name: str, tasks: list, root: str, config: str) -> str:
    import yaml

    play = [{"name": name, "hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/pycontainer.engine.pycontainer": {"root": root, "config": config}},
             "tasks": tasks}]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return str(path)


def _playbook_run(path: str, *extra: str) -> str:
    import subprocess

    from tests.integration.helpers import REPO, VENV_BIN, ansible_env

    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), path, *extra], cwd=REPO, env=ansible_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


def test_the_documented_examples_run_and_a_playbook_converges_once(setup, tmp_path):
    import ast

    import yaml

    cli, engine_args = setup
    root, config = (item.split("=", 1)[1] for item in engine_args.split())
    from tests.integration.helpers import REPO

    with open(os.path.join(REPO, "plugins/modules/pycontainer.py")) as f:
        module = ast.parse(f.read())
    examples = next(node.value.value for node in module.body
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXAMPLES")
    out = _playbook_run(_playbook(tmp_path, "examples", yaml.safe_load(examples), root, config), "-v")
    assert "Hello World" in out and '"Updated container web"' in out, out
    assert "changed=5" in out and "failed=0" in out, out
    assert cli("ps", "-aq").stdout == ""  # the examples end by removing what they made
    tasks = [{"name": "A service", "pycontainer.engine.pycontainer": {
        "name": "svc", "image": "busybox", "command": "sleep 300", "network_mode": "none", "stop_timeout": 1,
        "env": {"PORT": 8080, "DEBUG": False}, "memory": "32m", "restart_policy": "unless-stopped"}}]
    path = _playbook(tmp_path, "service", tasks, root, config)
    assert "changed=1" in _playbook_run(path, "--check")
    assert cli("ps", "-aq").stdout == ""
    assert "changed=1" in _playbook_run(path)
    assert "changed=0" in _playbook_run(path)
    assert "changed=0" in _playbook_run(path, "--check")
    assert _inspect(cli, "svc")["State"]["Running"]
    cli("rm", "-f", "svc", check=True)
