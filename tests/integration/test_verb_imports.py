"""What each CLI verb loads: read-only verbs and a `--network none` run leave the heavy parts unimported.

Start-up is mostly imports (Python's own and the engine's). These run the real CLI on a real root with real
containers and read back ``sys.modules`` at exit, so a stray top-level import (the option table in every
verb, both cgroup backends for `info`, the bridge driver for `--network none`) fails here, not in a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PACKAGE = "ansible_collections.pycontainer.engine.plugins.module_utils"

# Runs the CLI's main() as the console script does, then writes the engine modules it loaded to a file.
_PROBE = f"""
import json, os, sys
from {PACKAGE}.cli.main import main
try:
    code = main(sys.argv[1:])
finally:
    with open(os.environ["IMPORTS_REPORT"], "w") as report:
        json.dump(sorted(m for m in sys.modules if m.startswith("{PACKAGE}.") or m in ("cffi", "pyroute2")),
                  report)
sys.exit(code)
"""

# For every verb: the bridge driver, nftables and netlink, the kernel launcher and both cgroup backends.
_NEVER_FOR_READS = ("network.bridge", "network.service", "network.nftables", "network.netlink", "pyroute2",
                    "cffi", "runtime.launcher", "linux.cgroups.v1", "linux.cgroups.v2", "linux.cgroups.devices")


def loaded_by(cli, *args: str) -> set[str]:
    report = os.path.join(os.path.dirname(cli.config), "imports.json")
    proc = subprocess.run([sys.executable, "-c", _PROBE, "--root", cli.root, "--config", cli.config, *args],
                          env=dict(os.environ, IMPORTS_REPORT=report), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    with open(report) as f:
        modules = json.load(f)
    return {m[len(PACKAGE) + 1:] if m.startswith(PACKAGE) else m for m in modules}


@pytest.fixture
def with_containers(cli, busybox_image):
    cli("run", "-d", "--network", "none", "--name", "imports-running", busybox_image, "sleep", "300", check=True)
    cli("create", "--network", "none", "--name", "imports-created", busybox_image, "true", check=True)
    yield cli
    cli("rm", "-f", "imports-running", "imports-created", check=True)


@pytest.mark.parametrize("verb", [("ps", "-a"), ("images",), ("info",), ("system", "df")])
def test_read_only_verbs_load_no_networking_launcher_backend_or_option_table(with_containers, verb):
    loaded = loaded_by(with_containers, *verb)
    assert "cli.main" in loaded  # the probe saw the CLI run
    heavy = sorted(m for m in loaded if m in (*_NEVER_FOR_READS, "container.option_table"))
    assert not heavy, f"`{' '.join(verb)}` loaded {heavy}"


def test_info_reads_the_cgroup_layout_without_either_backend(with_containers):
    loaded = loaded_by(with_containers, "info", "--format", "{{.CgroupVersion}}")
    assert "linux.cgroups.detect" in loaded
    assert not loaded & {"linux.cgroups.v1", "linux.cgroups.v2", "linux.cgroups.base"}


def test_a_run_without_network_loads_no_bridge_driver(cli, busybox_image):
    loaded = loaded_by(cli, "run", "--rm", "--network", "none", busybox_image, "true")
    assert "network.modes" in loaded and "container.option_table" in loaded  # the run's own path
    heavy = sorted(m for m in loaded if m in ("network.bridge", "network.service", "network.nftables", "pyroute2"))
    assert not heavy, heavy


def test_inspect_still_builds_its_fields_from_the_option_table(with_containers):
    assert "container.option_table" in loaded_by(with_containers, "inspect", "imports-running")
