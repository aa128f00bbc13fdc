"""The pycontainer_volume module through real `ansible` runs: idempotency, check mode, recreate, in-use refusal."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from tests.integration.helpers import REPO, VENV_BIN, Cli, ansible_env, write_engine_config


@pytest.fixture
def engine(engine_root, registry, tmp_path) -> tuple[str, Cli]:
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    return f"root={engine_root} config={config}", Cli(root=str(engine_root), config=config)


def adhoc(args: str, *extra: str) -> tuple[int, dict]:
    with tempfile.TemporaryDirectory() as tree:
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", "pycontainer_volume", "-a", args, "--tree", tree,
             *extra], cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
        try:
            with open(os.path.join(tree, "localhost")) as f:
                result = json.load(f)
        except (OSError, ValueError):
            raise AssertionError(f"no result from ansible (rc {proc.returncode}): {proc.stdout}{proc.stderr}") from None
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.returncode, result


def test_volume_module_lifecycle(engine, busybox_image):
    args, cli = engine
    rc, checked = adhoc(f"name=appvol labels={{'app':'web'}} {args}", "--check")
    assert rc == 0 and checked["changed"] is True and checked["actions"] == ["Created volume appvol"]
    assert cli("volume", "ls", "-q", check=True).stdout == ""

    rc, created = adhoc(f"name=appvol labels={{'app':'web'}} {args}", "--diff")
    assert rc == 0 and created["changed"] is True, created
    assert created["volume"]["Labels"] == {"app": "web"}
    assert created["volume"]["Mountpoint"] == os.path.join(cli.root, "volumes", "appvol", "_data")
    rc, again = adhoc(f"name=appvol labels={{'app':'web'}} {args}")
    assert rc == 0 and again["changed"] is False and again["actions"] == []

    # Labels differ: kept with recreate=never, recreated with options-changed.
    rc, kept = adhoc(f"name=appvol labels={{'app':'db'}} {args}")
    assert rc == 0 and kept["changed"] is False and kept["volume"]["Labels"] == {"app": "web"}
    rc, recreated = adhoc(f"name=appvol labels={{'app':'db'}} recreate=options-changed {args}")
    assert rc == 0 and recreated["actions"] == ["Removed volume appvol", "Created volume appvol"]
    assert json.loads(cli("volume", "inspect", "-f", "{{json .Labels}}", "appvol", check=True).stdout) == {"app": "db"}

    # In use: absent fails cleanly (no traceback), the volume stays.
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--name", "user", "-v", "appvol:/data", busybox_image, "true", check=True)
    rc, refused = adhoc(f"name=appvol state=absent {args}")
    assert rc != 0 and "volume is in use" in refused["msg"]
    cli("rm", "user", check=True)

    rc, checked = adhoc(f"name=appvol state=absent {args}", "--check")
    assert rc == 0 and checked["changed"] is True
    assert cli("volume", "ls", "-q", check=True).stdout == "appvol\n"
    rc, removed = adhoc(f"name=appvol state=absent {args}")
    assert rc == 0 and removed["changed"] is True and removed["volume"] == {}
    rc, removed = adhoc(f"name=appvol state=absent {args}")
    assert rc == 0 and removed["changed"] is False


def test_volume_module_refuses_what_it_cannot_do(engine):
    args, _cli = engine
    rc, result = adhoc(f"name=x {args}")
    assert rc != 0 and "too short" in result["msg"]
    rc, result = adhoc(f"name=vol driver=nfs {args}")
    assert rc != 0 and "not supported" in result["msg"]
