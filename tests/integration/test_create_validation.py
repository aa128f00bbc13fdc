"""Create refuses what Docker refuses (exit 125, Docker's wording) with nothing left behind, and a container
whose start fails (a user its image does not have) stays a record that can be inspected, listed and removed.

Before, `create --memory 1m` or `--cap-add NOSUCH` was accepted and the container could then never start nor
be removed (`rm -f` and `container prune` failed on the same check at start).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.helpers import Cli, write_engine_config
from tests.integration.test_ansible import adhoc

pytestmark = pytest.mark.integration

NCPU = len(os.sched_getaffinity(0))


@pytest.fixture
def cli(engine_root, registry, busybox_image, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    c = Cli(root=str(engine_root), config=config)
    c("pull", "-q", "busybox", check=True)
    try:
        yield c
    finally:
        ids = c("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            c("rm", "-f", *ids)


def _nothing_left(cli: Cli) -> None:
    assert cli("ps", "-aq").stdout.split() == []
    containers = os.path.join(cli.root, "containers")
    if os.path.isdir(containers):  # no container directory (names.json and locks may stay)
        assert not [n for n in os.listdir(containers) if os.path.isdir(os.path.join(containers, n))]
    state = os.path.join(cli.root, "network", "state.json")
    if os.path.exists(state):
        with open(state) as f:
            assert json.load(f).get("containers", {}) == {}  # no address held


BAD = [
    (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
    (["--memory", "64m", "--memory-swap", "32m"],
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap limit, see usage"),
    (["--cap-add", "NOSUCH"], 'unknown capability: "CAP_NOSUCH"'),
    (["--cap-drop", "cap_bogus"], 'unknown capability: "CAP_BOGUS"'),
    (["--cpus", str(NCPU + 1)],
     f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    (["--cpus", "0.001"], f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    (["--cpuset-cpus", f"0-{NCPU + 7}"], f"Requested CPUs are not available - requested 0-{NCPU + 7}, available: "),
    (["--cpuset-cpus", "1-a"], "Invalid value 1-a for cpuset cpus"),
    (["--device", "/dev/nosuch-device"],
     "error gathering device information while adding custom device '/dev/nosuch-device': no such file"),
    (["--device", "/etc/hostname"], "/etc/hostname is not a device node"),
    (["--ulimit", "nosuch=1"], "invalid ulimit type: nosuch"),
    (["--ulimit", "nofile=10:5"], "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
    (["--restart", "sometimes"], "invalid restart policy 'sometimes'"),
    (["--security-opt", "seccomp=/nonexistent/profile.json"], "/nonexistent/profile.json"),
    (["--user", "1:2:3"], "invalid user: '1:2:3'"),
    (["--user", "4294967296"], "id out of range"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _m in BAD])
def test_bad_values_are_refused_at_create_with_nothing_left(cli: Cli, args: list[str], message: str):
    proc = cli("create", "--name", "bad", *args, "busybox", "true")
    assert proc.returncode == 125, proc.stdout + proc.stderr
    assert message in proc.stderr
    _nothing_left(cli)
    # `run` refuses the same way, before anything starts.
    proc = cli("run", "--rm", *args, "busybox", "true")
    assert proc.returncode == 125 and message in proc.stderr
    _nothing_left(cli)


def test_a_start_that_fails_leaves_an_inspectable_removable_record(cli: Cli):
    cli("create", "--name", "nouser", "--user", "nosuch", "busybox", "true", check=True)
    proc = cli("start", "nouser")
    message = "unable to find user nosuch: no matching entries in passwd file"
    assert proc.returncode == 1 and message in proc.stderr  # Docker's `start` exits 1, its `run` 125
    state = json.loads(cli("inspect", "nouser", check=True).stdout)[0]["State"]
    assert state["Status"] == "created" and state["Error"] == message and state["ExitCode"] == 128
    assert "nouser" in cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    # `run` of the same: exit 125, and the record stays (as Docker's).
    proc = cli("run", "--name", "nouser2", "--user", "nosuch:nogroup", "busybox", "true")
    assert proc.returncode == 125 and message in proc.stderr
    assert "nouser2" in cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    cli("rm", "-f", "nouser", check=True)
    prune = cli("container", "prune", "-f")
    assert prune.returncode == 0, prune.stderr
    _nothing_left(cli)


def test_a_record_older_than_the_checks_can_still_be_removed(cli: Cli):
    """A container an earlier version accepted (a limit start refuses) is removed by `rm -f` and prune."""
    for name in ("old1", "old2"):
        cid = cli("create", "--name", name, "busybox", "true", check=True).stdout.strip()
        path = os.path.join(cli.root, "containers", cid, "config.json")
        with open(path) as f:
            config = json.load(f)
        config["host_config"]["memory"] = 1024 * 1024
        with open(path, "w") as f:
            json.dump(config, f)
    assert cli("start", "old1").returncode == 1
    cli("rm", "-f", "old1", check=True)
    prune = cli("container", "prune", "-f")
    assert prune.returncode == 0, prune.stderr
    _nothing_left(cli)


def test_the_module_reports_the_same_error(cli: Cli):
    rc, result = adhoc("pycontainer", json.dumps({"root": cli.root, "config": cli.config, "name": "modbad",
                                                  "image": "busybox", "command": "true", "memory": "1m"}))
    assert rc != 0, result
    assert "Minimum memory limit allowed is 6MB" in result["msg"]
    _nothing_left(cli)
