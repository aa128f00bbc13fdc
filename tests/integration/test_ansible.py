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
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/hello.yml",
         "-e", f"pycontainer_config={config}", "-e", f"pycontainer_root={engine_root}"],
        cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"msg": "Hello World"' in proc.stdout
    assert "failed=0" in proc.stdout
