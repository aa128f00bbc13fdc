"""The cgroups and logging roles through real ansible-playbook runs on this host: check mode on a fresh engine
root changes nothing, the first run sets everything up and verifies it with a probe container, the second run
changes nothing, and bad variables are refused by the roles' argument specs.

Every path the roles touch is a scratch one (engine config, root, log file, logrotate snippet directory), and
the parent cgroup has a per-test name that the test removes (the leak check sees any leftover)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.fixtures.fleet.playbook import PlaybookRun, run_playbook
from tests.integration.helpers import write_engine_config

pytestmark = pytest.mark.integration


def role_playbook(tmp_path, role: str) -> str:
    path = tmp_path / f"{role}.yml"
    path.write_text(f"- name: Apply {role}\n  hosts: localhost\n  gather_facts: false\n  roles:\n"
                    f"    - role: pycontainer.engine.{role}\n")
    return str(path)


def run_role(playbook: str, variables: dict, *args: str) -> PlaybookRun:
    return run_playbook(playbook, *args, extra_vars=variables)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def parent_dirs(name: str) -> list[str]:
    """The parent cgroup's directory in every mounted hierarchy (only those that exist)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = line.split(" - ", 1)[1].split()[0]
            if fstype in ("cgroup", "cgroup2") and os.path.isdir(f"{fields[4]}/{name}"):
                found.append(f"{fields[4]}/{name}")
    return found


def remove_parent(name: str) -> None:
    for path in parent_dirs(name):
        for entry in os.scandir(path):  # container cgroups left by a failed run (empty by now)
            if entry.is_dir():
                os.rmdir(entry.path)
        os.rmdir(path)


@pytest.fixture
def engine(tmp_path, engine_root, registry, busybox_image) -> dict:
    """A scratch engine config (docker.io mirrored by the session registry) and root, as role variables."""
    (tmp_path / "etc").mkdir()
    config = write_engine_config(str(tmp_path / "etc" / "engine.json"), registry.host)
    return {"pycontainer_config_path": config, "pycontainer_root": engine_root}


def _hierarchy(controller: str) -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            right = line.split(" - ", 1)[1].split()
            if right[0] == "cgroup" and controller in right[2].split(","):
                return line.split()[4]
    return None


def test_cgroups_role_check_mode_then_idempotent_then_absent(tmp_path, engine):
    name = f"pycontainer-roletest-{uuid.uuid4().hex[:8]}"
    variables = {**engine, "cgroups_parent": name, "cgroups_memory_max": "256m", "cgroups_cpus": 1.5,
                 "cgroups_cpu_weight": 50, "cgroups_pids_max": 500}
    playbook = role_playbook(tmp_path, "cgroups")
    config_before = read(engine["pycontainer_config_path"])
    try:
        check = run_role(playbook, variables, "--check")
        assert check.returncode == 0, check.output
        assert parent_dirs(name) == [] and read(engine["pycontainer_config_path"]) == config_before

        first = run_role(playbook, variables)
        assert first.returncode == 0, first.output
        assert first.changed("localhost") >= 2, first.output  # the cgroup, the config
        with open(engine["pycontainer_config_path"]) as f:
            config = json.load(f)
        assert config["cgroup_parent"] == name and config["blocked_registries"] == ["docker.io"]
        memory, cpu, pids = _hierarchy("memory"), _hierarchy("cpu"), _hierarchy("pids")
        if memory:  # v1 / hybrid (this machine)
            assert read(f"{memory}/{name}/memory.limit_in_bytes") == str(256 << 20)
            assert read(f"{cpu}/{name}/cpu.shares") == "512"
            assert read(f"{cpu}/{name}/cpu.cfs_quota_us") == "150000"
            assert read(f"{cpu}/{name}/cpu.cfs_period_us") == "100000"
            assert read(f"{pids}/{name}/pids.max") == "500"
        else:  # v2
            assert read(f"/sys/fs/cgroup/{name}/memory.max") == str(256 << 20)
            assert read(f"/sys/fs/cgroup/{name}/cpu.max") == "150000 100000"
            assert read(f"/sys/fs/cgroup/{name}/pids.max") == "500"
        # The probe ran and left nothing under the parent.
        assert all(not any(e.is_dir() for e in os.scandir(p)) for p in parent_dirs(name))

        second = run_role(playbook, variables)
        assert second.returncode == 0 and second.changed("localhost") == 0, second.output

        absent = run_role(playbook, {**variables, "cgroups_state": "absent"})
        assert absent.returncode == 0, absent.output
        assert parent_dirs(name) == []
        with open(engine["pycontainer_config_path"]) as f:
            assert "cgroup_parent" not in json.load(f)
    finally:
        remove_parent(name)


def test_cgroups_role_refuses_bad_variables(tmp_path, engine):
    playbook = role_playbook(tmp_path, "cgroups")
    run = run_role(playbook, {**engine, "cgroups_manager": "openrc"})
    assert run.returncode != 0
    assert "value of cgroups_manager must be one of: auto, systemd, cgroupfs, got: openrc" in run.output, run.output
    run = run_role(playbook, {**engine, "cgroups_pids_max": "lots"})
    assert run.returncode != 0 and "cgroups_pids_max" in run.output and "int" in run.output, run.output
    run = run_role(playbook, {**engine, "cgroups_parent": "pycontainer"})
    assert run.returncode != 0 and "the engine's own default parent" in run.output, run.output
    run = run_role(playbook, {**engine, "cgroups_parent": "../escape"})
    assert run.returncode != 0 and "is not allowed" in run.output, run.output


def test_logging_role_check_mode_then_idempotent_with_rotation(tmp_path, engine):
    logrotate_dir = tmp_path / "logrotate.d"
    logrotate_dir.mkdir()
    log_file = tmp_path / "log" / "pycontainer" / "engine.log"
    variables = {**engine, "logging_file": str(log_file), "logging_level": "info", "logging_format": "json",
                 "logging_logrotate_dir": str(logrotate_dir), "logging_max_size": "20k", "logging_max_file": 3,
                 "logging_compress": True}
    playbook = role_playbook(tmp_path, "logging")
    config_before = read(engine["pycontainer_config_path"])

    check = run_role(playbook, variables, "--check")
    assert check.returncode == 0, check.output
    assert not log_file.parent.exists() and list(logrotate_dir.iterdir()) == []
    assert read(engine["pycontainer_config_path"]) == config_before

    first = run_role(playbook, variables)
    assert first.returncode == 0, first.output
    with open(engine["pycontainer_config_path"]) as f:
        config = json.load(f)
    assert config["log_driver"] == "json-file"
    assert config["log_opts"] == {"max-size": "20k", "max-file": "3", "compress": "true"}
    assert config["log_file"] == str(log_file) and config["log_format"] == "json"
    assert config["registry_mirrors"]  # other keys kept
    assert oct(log_file.parent.stat().st_mode & 0o777) == "0o750" and oct(log_file.stat().st_mode & 0o777) == "0o640"
    json.loads(log_file.read_text().splitlines()[-1])  # the engine logged the probe run, as JSON
    snippet = (logrotate_dir / "pycontainer").read_text()
    assert f"{log_file} {{" in snippet and "daily" in snippet and "rotate 7" in snippet
    # The probe (and its rotated logs) are gone again.
    assert not [e for e in os.scandir(os.path.join(engine["pycontainer_root"], "containers")) if e.is_dir()]

    second = run_role(playbook, variables)
    assert second.returncode == 0 and second.changed("localhost") == 0, second.output

    # Another driver: none, and no file log (the snippet goes with it); still verified, then idempotent.
    off = {**variables, "logging_driver": "none", "logging_file": ""}
    third = run_role(playbook, off)
    assert third.returncode == 0 and third.changed("localhost") >= 1, third.output
    with open(engine["pycontainer_config_path"]) as f:
        config = json.load(f)
    assert config["log_driver"] == "none" and config["log_opts"] == {} and config["log_file"] == ""
    assert list(logrotate_dir.iterdir()) == []
    again = run_role(playbook, off)
    assert again.returncode == 0 and again.changed("localhost") == 0, again.output


def test_logging_role_refuses_bad_variables(tmp_path, engine):
    playbook = role_playbook(tmp_path, "logging")
    config_before = read(engine["pycontainer_config_path"])
    run = run_role(playbook, {**engine, "logging_driver": "journald"})
    assert run.returncode != 0
    assert "value of logging_driver must be one of: json-file, none, got: journald" in run.output, run.output
    run = run_role(playbook, {**engine, "logging_level": "verbose"})
    assert run.returncode != 0 and "value of logging_level must be one of" in run.output, run.output
    run = run_role(playbook, {**engine, "logging_max_file": "many"})
    assert run.returncode != 0 and "logging_max_file" in run.output, run.output
    run = run_role(playbook, {**engine, "logging_max_size": "big"})
    assert run.returncode != 0 and "logging_max_size must be a size" in run.output, run.output
    # The engine's own rule, reported by pycontainer_config before anything is written.
    run = run_role(playbook, {**engine, "logging_max_size": "", "logging_compress": True,
                              "logging_file": str(tmp_path / "engine.log")})
    assert run.returncode != 0 and "compress cannot be true when max-size is not set" in run.output, run.output
    assert read(engine["pycontainer_config_path"]) == config_before


def _examples_play(module: str, tmp_path, engine: dict, replace: dict[str, str]) -> str:
    """The module's EXAMPLES as one play, the engine options set through the action group."""
    import ast

    import yaml

    from tests.integration.helpers import REPO

    with open(os.path.join(REPO, "plugins", "modules", f"{module}.py")) as f:
        tree = ast.parse(f.read())
    examples = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], "id", None) == "EXAMPLES")
    for placeholder, value in replace.items():
        examples = examples.replace(placeholder, value)
    play = [{"name": f"{module} examples", "hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/pycontainer.engine.pycontainer": {
                 "root": engine["pycontainer_root"], "config": engine["pycontainer_config_path"]}},
             "tasks": yaml.safe_load(examples)}]
    path = tmp_path / f"{module}_examples.yml"
    path.write_text(yaml.safe_dump(play))
    return str(path)


def test_config_and_cgroup_module_examples_run(tmp_path, engine):
    example_config = tmp_path / "example" / "engine.json"
    run = run_playbook(_examples_play("pycontainer_config", tmp_path, engine,
                                      {"/tmp/pycontainer-example/engine.json": str(example_config)}))
    assert run.returncode == 0 and run.recap["localhost"]["failed"] == 0, run.output
    assert json.loads(example_config.read_text()) == {
        "log_driver": "json-file", "log_opts": {"max-size": "10m", "max-file": "3", "compress": "true"}}
    name = f"pycontainer-example-{uuid.uuid4().hex[:8]}"
    try:
        run = run_playbook(_examples_play("pycontainer_cgroup", tmp_path, engine, {"pycontainer-example": name}))
        assert run.returncode == 0 and run.changed("localhost") == 2, run.output
        assert "parent in /sys/fs/cgroup/" in run.stdout and parent_dirs(name) == []
    finally:
        remove_parent(name)
