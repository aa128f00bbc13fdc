"""`molecule test -s containers` for real: the instances are containers of this engine (own root, the Debian
python image from the registry fixture), converged with the logging role through the connection plugin."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from tests.integration.helpers import REPO, VENV_BIN, Cli, ansible_env, write_engine_config

pytestmark = pytest.mark.integration

INSTANCES = ("pyc-logging-1", "pyc-logging-2")


def _recaps(output: str) -> list[dict[str, int]]:
    """Each PLAY RECAP's per-host changed counts, in order."""
    recaps = []
    for block in output.split("PLAY RECAP")[1:]:
        counts = {}
        for line in block.splitlines()[1:]:
            m = re.match(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", line)
            if not m:
                if counts:
                    break
                continue
            assert m.group(3) == "0" and m.group(4) == "0", line
            counts[m.group(1)] = int(m.group(2))
        recaps.append(counts)
    return recaps


def test_molecule_containers_scenario(engine_root, registry, debian_python_image, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    env = ansible_env()
    env.pop("ANSIBLE_CONFIG")  # molecule writes its own ansible.cfg for the scenario
    env.update(PYCONTAINER_ROOT=engine_root, PYCONTAINER_CONFIG=config, MOLECULE_PYCONTAINER_IMAGE=debian_python_image,
               MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule"), NO_COLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([os.path.join(VENV_BIN, "molecule"), "test", "-s", "containers"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert f"containers > {step}: Executed: Successful" in output, output
    assert "Molecule executed 1 scenario (1 successful)" in output, output

    # Playbooks in order: destroy, create, converge, idempotence's converge, verify, destroy.
    recaps = _recaps(output)
    assert len(recaps) == 6, output
    converge, idempotence, verify = recaps[2:5]
    assert set(converge) == set(INSTANCES) and all(n > 0 for n in converge.values()), output
    assert idempotence == {name: 0 for name in INSTANCES}, output
    assert verify == {"localhost": 0, **{name: 0 for name in INSTANCES}}, output

    # The instances were containers of this root, and destroy removed them.
    cli = Cli(root=engine_root, config=config)
    assert cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout == ""
    events = cli("events", "--since", "0", "--until", f"{time.time():.6f}", "--filter", "event=destroy",
                 "--format", "{{.Actor.Attributes.name}}", check=True).stdout.split()
    assert sorted(events) == sorted(INSTANCES), events
