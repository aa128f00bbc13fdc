"""Exec with captured output (the engine API the connection plugin and pycontainer_exec use), the
pycontainer_exec module and the pycontainer_login module, through real `ansible` runs."""

from __future__ import annotations

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import Conflict, ContainerNotFound

from tests.integration.helpers import Cli, write_engine_config

pytestmark = pytest.mark.integration


@pytest.fixture
def running(engine_root, registry, busybox_image, tmp_path):
    """A running busybox container `box` on this test's engine root; removed afterwards."""
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    cli = Cli(root=str(engine_root), config=config)
    cli("run", "-d", "--name", "box", "--network", "none", "--hostname", "inside", "busybox", "sleep", "300",
        check=True)
    try:
        yield cli, Engine.from_options(root=str(engine_root), config_path=config)
    finally:
        cli("rm", "-f", "box")


def test_exec_capture_separates_streams_feeds_stdin_and_returns_the_code(running):
    _cli, engine = running
    result = engine.containers.exec_capture(
        "box", ["sh", "-c", "hostname; echo $X; pwd; echo err >&2; exit 3"], env=["X=1"], workdir="/tmp")
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"inside\n1\n/tmp\n", b"err\n")
    # Far more than a pipe buffer both ways at once: neither side may block the other.
    big = bytes(range(256)) * 4096
    echoed = engine.containers.exec_capture("box", ["sh", "-c", "cat; cat /proc/self/status >&2"], stdin=big)
    assert echoed.exit_code == 0 and echoed.stdout == big and b"Name:" in echoed.stderr
    assert engine.containers.exec_capture("box", ["id", "-u"], user="nobody").stdout == b"65534\n"
    # Without stdin the process reads end of file at once.
    assert engine.containers.exec_capture("box", ["cat"]).stdout == b""


def test_exec_capture_tty_privileged_missing_command_and_background_children(running):
    _cli, engine = running
    tty = engine.containers.exec_capture("box", ["sh", "-c", "[ -t 1 ] && echo terminal; echo out; echo err >&2"],
                                          tty=True)
    assert tty.exit_code == 0 and tty.stderr == b""
    assert tty.stdout.replace(b"\r\n", b"\n") == b"terminal\nout\nerr\n"
    typed = engine.containers.exec_capture("box", ["cat"], stdin=b"typed", tty=True)  # ends with ^D ^D
    assert typed.exit_code == 0 and b"typed" in typed.stdout
    # CapEff: Docker's 14 capabilities by default, every one with privileged.
    default = engine.containers.exec_capture("box", ["grep", "CapEff", "/proc/self/status"]).stdout
    full = engine.containers.exec_capture("box", ["grep", "CapEff", "/proc/self/status"], privileged=True).stdout
    assert default == b"CapEff:\t00000000a80425fb\n" and int(full.split()[1], 16) > 0xa80425fb
    missing = engine.containers.exec_capture("box", ["no-such-command"])
    assert missing.exit_code == 127 and b"no-such-command" in missing.stderr
    # A background child holding stdout open does not hold the caller once the command itself exited.
    detached = engine.containers.exec_capture("box", ["sh", "-c", "sleep 60 & echo started"])
    assert detached.exit_code == 0 and detached.stdout == b"started\n"


def test_exec_capture_refuses_stopped_and_missing_containers(running):
    cli, engine = running
    cli("stop", "-t", "0", "box", check=True)
    with pytest.raises(Conflict, match="is not running"):
        engine.containers.exec_capture("box", ["true"])
    with pytest.raises(ContainerNotFound):
        engine.containers.exec_capture("nothere", ["true"])
