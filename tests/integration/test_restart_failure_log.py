"""A restart by policy that fails is recorded in the engine log (the monitor has no terminal to print to)."""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.helpers import Cli
from tests.integration.test_lifecycle import wait_for


@pytest.fixture
def image(cli, busybox_image) -> str:
    cli("pull", "-q", busybox_image, check=True)
    return busybox_image


def _engine_log(cli: Cli) -> str:
    with open(cli.config) as f:
        path = json.load(f)["log_file"]
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def test_failed_restart_is_in_the_engine_log(cli, image, tmp_path):
    source, control = tmp_path / "data", tmp_path / "control"
    source.mkdir()
    control.mkdir()
    cid = cli("run", "-d", "--name", "doomed", "--restart", "always", "-v", f"{source}:/data",
              "-v", f"{control}:/control", image,
              "sh", "-c", "until [ -e /control/go ]; do sleep 0.05; done; exit 1", check=True).stdout.strip()
    try:
        source.rmdir()  # the bind source is gone: the restart cannot mount it
        (control / "go").touch()  # now the container exits and its policy restarts it
        line = wait_for(lambda: next((x for x in _engine_log(cli).splitlines() if "restart failed" in x), None),
                        what="the failed restart in the engine log")
        assert "level=error" in line and f"id={cid}" in line and "bind source" in line, line
    finally:
        cli("rm", "-f", "doomed", check=True)
