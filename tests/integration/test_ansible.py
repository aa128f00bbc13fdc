"""The vertical slice through real `ansible` and `ansible-playbook` runs from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from tests.integration.helpers import REPO, VENV_BIN, ansible_env, write_engine_config


@pytest.fixture
def engine_args(engine_root, registry, busybox_image, tmp_path) -> str:
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    return f"root={engine_root} config={config}"


def adhoc(module: str, args: str, *extra: str) -> tuple[int, dict]:
    """Run `ansible localhost -m MODULE -a ARGS` from the repository root; return rc and the module result.

    The result is read from the JSON file ansible's `--tree` option writes for the host.
    """
    with tempfile.TemporaryDirectory() as tree:
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", module, "-a", args, "--tree", tree, *extra],
            cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
        try:
            with open(os.path.join(tree, "localhost")) as f:
                result = json.load(f)
        except (OSError, ValueError):
            raise AssertionError(f"no result from ansible (rc {proc.returncode}): {proc.stdout}{proc.stderr}") from None
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.returncode, result


def test_adhoc_hello_world_with_the_bare_module_name(engine_args):
    rc, result = adhoc("pycontainer", f'name=hello image=busybox command="echo Hello World" detach=false {engine_args}')
    assert rc == 0, result
    assert result["output"] == "Hello World\n" and result["status"] == 0 and result["changed"] is True
    assert result["container"]["State"]["ExitCode"] == 0
    # Run again: the same name is reused (the exited container is replaced), not a conflict.
    rc, again = adhoc("pycontainer", f'name=hello image=busybox command="echo Hello again" detach=false {engine_args}')
    assert rc == 0 and again["output"] == "Hello again\n", again
    rc, removed = adhoc("pycontainer", f"name=hello state=absent {engine_args}")
    assert rc == 0 and removed["changed"] is True
    rc, removed = adhoc("pycontainer", f"name=hello state=absent {engine_args}")
    assert rc == 0 and removed["changed"] is False


def test_nonzero_exit_fails_the_task_with_output(engine_args):
    rc, result = adhoc("pycontainer.engine.pycontainer",
                       f"name=fails image=busybox command=\"sh -c 'echo oops; exit 5'\" detach=false cleanup=true "
                       f"{engine_args}")
    assert rc != 0  # the tree file of a failed task has no "failed" key; rc says it
    assert result["status"] == 5 and result["output"] == "oops\n"
    assert "exited with code 5" in result["msg"]


def test_image_module_is_idempotent_and_checks(engine_args):
    rc, check = adhoc("pycontainer_image", f"name=busybox {engine_args}", "--check", "--diff")
    assert rc == 0 and check["changed"] is True and "image" not in check
    rc, first = adhoc("pycontainer_image", f"name=busybox {engine_args}")
    assert rc == 0 and first["changed"] is True and first["image"]["RepoTags"] == ["busybox:latest"]
    rc, second = adhoc("pycontainer_image", f"name=busybox {engine_args}")
    assert rc == 0 and second["changed"] is False and second["image"]["Id"] == first["image"]["Id"]


def test_bad_input_fails_cleanly(engine_args):
    rc, result = adhoc("pycontainer_image", f"name=Not//Valid {engine_args}")
    assert rc != 0  # the tree file of a failed task has no "failed" key; rc says it
    assert "Traceback" not in result["msg"] and "invalid reference" in result["msg"].lower()
    rc, result = adhoc("pycontainer", f"name=x image=busybox command=true detach=false pull=never {engine_args}")
    assert rc != 0 and result["msg"] == "No such image: busybox:latest"


def test_hello_playbook(engine_root, registry, busybox_image, tmp_path):
    """The main job: hello, a web container answering through its published port, facts; idempotent."""
    from tests.fixtures.registry import free_port
    from tests.integration.helpers import Cli

    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    port = free_port()
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/hello.yml", "-e", f"pycontainer_config={config}",
            "-e", f"pycontainer_root={engine_root}", "-e", f"pycontainer_web_port={port}"]
    try:
        for run in ("first", "second"):
            proc = subprocess.run(argv, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300,
                                  check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert '"msg": "Hello World"' in proc.stdout and '"msg": "Hello from pycontainer"' in proc.stdout
            assert "cgroup v" in proc.stdout and "disk: images " in proc.stdout
            # Hello World runs every time (a command run to completion); the pull and the web container change
            # things only the first time.
            assert ("changed=3" if run == "first" else "changed=1") in proc.stdout, proc.stdout
    finally:
        Cli(root=str(engine_root), config=config)("rm", "-f", "web")


def _state(engine_root: str, name: str) -> dict:
    from tests.integration.helpers import Cli

    proc = Cli(root=engine_root, config="")("inspect", name)
    return json.loads(proc.stdout)[0]["State"] if proc.returncode == 0 else {}


def test_container_states_are_idempotent_and_outlive_the_module(engine_args, engine_root):
    base = f"name=svc image=busybox command='sleep 300' stop_timeout=1 {engine_args}"
    rc, check = adhoc("pycontainer", f"{base} state=started", "--check")
    assert rc == 0 and check["changed"] and check["actions"] == [
        "Pulled image busybox", "Created container svc", "Started container svc"]
    rc, started = adhoc("pycontainer", f"{base} state=started")
    assert rc == 0 and started["changed"] and started["container"]["State"]["Running"]
    # The module's temporary directory is gone; the container is still supervised and running.
    assert _state(engine_root, "svc")["Running"]
    rc, again = adhoc("pycontainer", f"{base} state=started")
    assert rc == 0 and again["changed"] is False, again
    rc, stopped = adhoc("pycontainer", f"{base} state=stopped")
    assert rc == 0 and stopped["changed"] and stopped["actions"] == ["Stopped container svc"]
    assert _state(engine_root, "svc")["Status"] == "exited"
    rc, stopped = adhoc("pycontainer", f"{base} state=stopped")
    assert rc == 0 and stopped["changed"] is False
    rc, restarted = adhoc("pycontainer", f"{base} state=restarted")
    assert rc == 0 and restarted["changed"] and _state(engine_root, "svc")["Running"]
    # Changed limits are updated in place (`pycontainer update`); test_container_module.py has the recreations.
    rc, changed = adhoc("pycontainer", f"{base} state=started memory=64m pids_limit=50")
    assert rc == 0 and changed["changed"] and changed["actions"] == ["Updated container svc"], changed
    assert {d["name"] for d in changed["differences"]} == {"memory", "pids_limit"}
    assert changed["container"]["HostConfig"]["Memory"] == 64 << 20
    assert changed["container"]["Id"] == restarted["container"]["Id"]
    rc, same = adhoc("pycontainer", f"{base} state=started memory=64m pids_limit=50")
    assert rc == 0 and same["changed"] is False, same
    rc, removed = adhoc("pycontainer", f"name=svc state=absent {engine_args}", "--diff")
    assert rc == 0 and removed["changed"] and not _state(engine_root, "svc")


def test_present_creates_without_starting_and_restart_policy(engine_args, engine_root):
    rc, present = adhoc("pycontainer", f"name=idle image=busybox command=true state=present {engine_args}")
    assert rc == 0 and present["changed"] and present["container"]["State"]["Status"] == "created"
    rc, present = adhoc("pycontainer", f"name=idle image=busybox command=true state=present {engine_args}")
    assert rc == 0 and present["changed"] is False
    rc, _output = adhoc("pycontainer", f"name=idle state=absent {engine_args}")
    rc, result = adhoc("pycontainer", f"name=retry image=busybox command='sh -c \"exit 1\"' restart_policy=on-failure "
                                      f"restart_retries=1 {engine_args}")
    assert rc == 0 and result["container"]["HostConfig"]["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 1}
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _state(engine_root, "retry").get("Status") != "exited":
        time.sleep(0.1)
    from tests.integration.helpers import Cli

    inspect = json.loads(Cli(root=engine_root, config="")("inspect", "retry").stdout)[0]
    assert inspect["State"]["Status"] == "exited" and inspect["RestartCount"] == 1
    rc, _output = adhoc("pycontainer", f"name=retry state=absent {engine_args}")
    assert rc == 0
