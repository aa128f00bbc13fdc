"""Modules with the engine's code kept on the target, through real `ansible` runs: the payload carries none of
the engine, the first run on a host sends the code once, later runs use it, async tasks get it too, and a module
run without its action plugin fails with a message instead of a traceback."""

from __future__ import annotations

import base64
import glob
import io
import json
import os
import re
import subprocess
import time
import zipfile

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.code_bundle import code_digest, code_files

from tests.integration.helpers import REPO, VENV_BIN, ansible_env, write_engine_config

pytestmark = pytest.mark.integration

DIGEST = code_digest(code_files(os.path.join(REPO, "plugins", "module_utils")))
PACKAGE_DIR = "ansible_collections/pycontainer/engine/plugins/module_utils/"


def adhoc(module: str, args: dict, env: dict[str, str], *extra: str) -> tuple[int, dict, str]:
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", "-m", module, "-a", json.dumps(args),
                           "-o", *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    line = next((line for line in proc.stdout.splitlines() if "=>" in line), "")
    return proc.returncode, json.loads(line.split("=>", 1)[1]) if line else {}, output


@pytest.fixture
def engine_args(engine_root, registry, tmp_path) -> dict[str, str]:
    return {"root": str(engine_root), "config": write_engine_config(str(tmp_path / "engine.json"), registry.host)}


@pytest.fixture
def code_env(tmp_path) -> dict[str, str]:
    """Ansible's environment with a code dir of the test's own (the local connection passes it to modules)."""
    return dict(ansible_env(), PYCONTAINER_CODE_DIR=str(tmp_path / "code"),
                ANSIBLE_REMOTE_TMP=str(tmp_path / "remote"), ANSIBLE_KEEP_REMOTE_FILES="1")


def payload_names(tmp_path, module: str) -> list[str]:
    """The entries of the AnsiballZ payloads kept for ``module``."""
    names = []
    for path in glob.glob(str(tmp_path / "remote" / "ansible-tmp-*" / f"AnsiballZ_{module}.py")):
        with open(path) as f:
            source = f.read()
        (blob,) = re.findall(r"^zip_data='([A-Za-z0-9+/=]+)'", source, re.MULTILINE)
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(blob))) as archive:
            names.extend(archive.namelist())
    return names


def test_first_run_sends_the_code_once_and_the_payload_carries_none_of_the_engine(engine_args, code_env, tmp_path):
    tree = tmp_path / "code" / DIGEST
    rc, result, output = adhoc("pycontainer_info", engine_args, code_env)
    assert rc == 0 and "ansible_facts" in result and "Traceback" not in output, output
    assert tree.is_dir() and os.stat(tree).st_uid == 0
    assert oct(os.stat(tmp_path / "code").st_mode & 0o777) == "0o700"
    sent = glob.glob(str(tmp_path / "remote" / "ansible-tmp-*" / "pycontainer-engine.zip"))
    assert len(sent) == 1, sent
    inode = os.stat(tree).st_ino
    rc, result, output = adhoc("pycontainer_info", engine_args, code_env)
    assert rc == 0 and "ansible_facts" in result, output
    assert len(glob.glob(str(tmp_path / "remote" / "ansible-tmp-*" / "pycontainer-engine.zip"))) == 1  # not again
    assert os.stat(tree).st_ino == inode
    ours = sorted({name[len(PACKAGE_DIR):] for name in payload_names(tmp_path, "pycontainer_info")
                   if name.startswith(PACKAGE_DIR) and name.endswith(".py")})
    assert ours == ["__init__.py", "ansible/__init__.py", "ansible/code_bundle.py", "ansible/code_home.py",
                    "ansible/engine_code.py"], ours


def test_async_task_gets_the_code_first(engine_args, code_env, tmp_path):
    rc, result, output = adhoc("pycontainer_info", engine_args, code_env, "-B", "60", "-P", "1")
    assert rc == 0 and "ansible_facts" in result and "Traceback" not in output, output
    assert (tmp_path / "code" / DIGEST).is_dir()
    # Ansible's async watchdog outlives the job by up to its 5 s poll: not ours to leave to the leak check.
    deadline = time.monotonic() + 30
    while _processes_under(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)


def _processes_under(path: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_module_without_its_action_plugin_fails_with_a_message(engine_args, code_env, tmp_path):
    env = dict(code_env, ANSIBLE_ACTION_PLUGINS=str(tmp_path / "no-action-plugins"))
    rc, result, output = adhoc("pycontainer_info", engine_args, env)
    assert rc != 0 and "Traceback" not in output, output
    assert "action plugin" in result["msg"] and "pycontainer.engine.<module>" in result["msg"], result
