"""`molecule test -s default` for real: the cgroups and logging roles and the site playbook converge on this
host (the default driver, unmanaged), the idempotence step finds no change, the verify playbook's asserts pass,
and cleanup/destroy leave nothing behind (the leak check sees cgroups, links, nftables tables, mounts and
processes). The scenario's state lives in this test's temporary directory; busybox comes from the session
registry."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.fixtures.registry import free_port
from tests.integration.helpers import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.integration


def test_molecule_default_scenario(tmp_path, registry, busybox_image):
    state = tmp_path / "state"
    cgroup = f"pycontainer-moltest-{uuid.uuid4().hex[:8]}"
    env = {**ansible_env(), "PYCONTAINER_MOLECULE_REGISTRY": registry.host, "PYCONTAINER_MOLECULE_STATE": str(state),
           "PYCONTAINER_MOLECULE_CGROUP": cgroup, "PYCONTAINER_MOLECULE_WEB_PORT": str(free_port()),
           # molecule keeps its ephemeral files (generated inventory, state) under here
           "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "ephemeral"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "NO_COLOR": "1", "MOLECULE_NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1"}
    env.pop("ANSIBLE_CONFIG", None)  # molecule writes its own ansible.cfg for the scenario
    proc = subprocess.run([os.path.join(VENV_BIN, "molecule"), "test", "-s", "default"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    (tmp_path / "molecule.log").write_text(output)  # kept for a look when the test fails
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    # Each step really ran and passed; molecule fails the idempotence step if any task of the second converge
    # reports a change.
    for step in ("cleanup", "destroy", "syntax", "create", "prepare", "converge", "idempotence", "verify"):
        assert f"default > {step}: Executed: Successful" in output, output
    assert "Executed: Failed" not in output
    assert "PLAY [Converge the cgroups and logging roles]" in output
    assert "PLAY [Verify the converged host]" in output
    assert not state.exists()  # destroy removed the scenario's state
    assert not any(os.path.isdir(os.path.join(root, cgroup)) for root in _cgroup_mounts())


def _cgroup_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split(" - ", 1)[1].split()[0] in ("cgroup", "cgroup2")]
