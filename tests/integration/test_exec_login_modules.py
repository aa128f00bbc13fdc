"""Exec with captured output (the engine API the connection plugin and pycontainer_exec use), the
pycontainer_exec module and the pycontainer_login module, through real `ansible` runs."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import Conflict, ContainerNotFound

from tests.fixtures.registry import REGISTRY_PASSWORD as PASSWORD
from tests.fixtures.registry import REGISTRY_USER as USER
from tests.integration.helpers import Cli, run_module_examples, write_engine_config
from tests.integration.test_ansible import adhoc
from tests.integration.test_lifecycle import wait_for

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
    tty_probe = ["sh", "-c", "[ -t 1 ] && echo terminal; echo out; echo err >&2"]
    tty = engine.containers.exec_capture("box", tty_probe, tty=True)
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


# --- pycontainer_exec -------------------------------------------------------------------------------------


def _args(cli: Cli, **options: object) -> str:
    """Module arguments as JSON (``-a`` takes it), with this test's engine root and config."""
    return json.dumps({"root": cli.root, "config": cli.config, **options})


def test_exec_module_returns_output_and_rc_without_failing(running):
    cli, _engine = running
    rc, result = adhoc("pycontainer_exec", _args(cli, container="box", env={"X": 1}, chdir="/tmp",
                                                 command="sh -c 'echo $X; pwd; echo oops >&2; exit 3'"))
    # A non-zero exit is a result with rc, as with docker_container_exec; Ansible counts the task failed.
    assert rc != 0 and "Traceback" not in result.get("exception", "")
    assert result["changed"] is True and result["rc"] == 3 and result["msg"] == "non-zero return code"
    assert (result["stdout"], result["stdout_lines"]) == ("1\n/tmp", ["1", "/tmp"])
    assert (result["stderr"], result["stderr_lines"]) == ("oops", ["oops"])
    rc, fed = adhoc("pycontainer_exec", _args(cli, container="box", argv=["cat"], stdin="in", user="nobody"))
    assert rc == 0 and fed["stdout"] == "in" and fed["rc"] == 0
    rc, raw = adhoc("pycontainer_exec", _args(cli, container="box", argv=["cat"], stdin="in",
                                              strip_empty_ends=False))
    assert rc == 0 and raw["stdout"] == "in\n"
    rc, plain = adhoc("pycontainer_exec", _args(cli, container="box", argv=["cat"], stdin="in",
                                                stdin_add_newline=False, strip_empty_ends=False))
    assert rc == 0 and plain["stdout"] == "in"
    rc, missing = adhoc("pycontainer_exec", _args(cli, container="box", command="no-such-command"))
    assert rc != 0 and missing["rc"] == 127 and "no-such-command" in missing["stderr"]


def test_exec_module_check_mode_detach_and_refusals(running):
    cli, _engine = running
    touch = {"container": "box", "command": "touch /tmp/ran"}
    rc, check = adhoc("pycontainer_exec", _args(cli, **touch), "--check")
    assert rc == 0 and check["changed"] is True and "rc" not in check
    assert cli("exec", "box", "test", "-e", "/tmp/ran").returncode == 1  # check mode ran nothing
    rc, detached = adhoc("pycontainer_exec", _args(cli, detach=True, **touch))
    assert rc == 0 and detached["changed"] is True and "rc" not in detached
    wait_for(lambda: cli("exec", "box", "test", "-e", "/tmp/ran").returncode == 0, what="detached exec")
    rc, both = adhoc("pycontainer_exec", _args(cli, container="box", command="true", argv=["true"]))
    assert rc != 0 and "mutually exclusive" in both["msg"]
    rc, gone = adhoc("pycontainer_exec", _args(cli, container="nothere", command="true"))
    assert rc != 0 and gone["msg"] == "No such container: nothere"
    cli("stop", "-t", "0", "box", check=True)
    for extra in ((), ("--check",)):
        rc, stopped = adhoc("pycontainer_exec", _args(cli, **touch), *extra)
        assert rc != 0 and stopped["msg"].endswith("is not running"), stopped


def test_exec_module_examples_run(cli, tmp_path):
    proc = run_module_examples("pycontainer_exec", cli, tmp_path)
    try:
        assert proc.returncode == 0 and "failed=0" in proc.stdout, proc.stdout + proc.stderr
        assert "hello from " in proc.stdout
    finally:
        cli("rm", "-f", "app")


# --- pycontainer_login ------------------------------------------------------------------------------------

def test_login_module_checks_stores_is_idempotent_and_logs_out(htpasswd_registry, cli):
    auth_file = os.path.join(cli.root, "auth.json")
    login = {"registry_url": f"http://{htpasswd_registry.host}/", "username": USER, "password": PASSWORD}
    rc, wrong = adhoc("pycontainer_login", _args(cli, **{**login, "password": "not-it"}), "--check")
    assert rc != 0 and "not-it" not in json.dumps(wrong) and not os.path.exists(auth_file), wrong
    rc, check = adhoc("pycontainer_login", _args(cli, **login), "--check")
    assert rc == 0 and check["changed"] is True and check["actions"] == [f"Logged into {htpasswd_registry.host}"]
    assert not os.path.exists(auth_file)  # check mode stored nothing
    rc, first = adhoc("pycontainer_login", _args(cli, **login))
    assert rc == 0 and first["changed"] is True and first["registry"] == htpasswd_registry.host, first
    assert first["login_result"] == {"Status": "Login Succeeded"} and PASSWORD not in json.dumps(first)
    with open(auth_file) as f:
        assert list(json.load(f)["auths"]) == [htpasswd_registry.host]
    # The CLI sees the same login: pushing to the auth registry works without credentials on the command line.
    cli("pull", "-q", "busybox", check=True)
    cli("tag", "busybox", f"{htpasswd_registry.host}/mine/busybox:1", check=True)
    cli("push", f"{htpasswd_registry.host}/mine/busybox:1", check=True)
    rc, again = adhoc("pycontainer_login", _args(cli, **login))
    assert rc == 0 and again["changed"] is False and "login_result" not in again
    rc, reauth = adhoc("pycontainer_login", _args(cli, reauthorize=True, **login))
    assert rc == 0 and reauth["changed"] is False and reauth["login_result"]["Status"] == "Login Succeeded"
    # Another password for the same registry is checked (and refused) before anything is stored.
    rc, refused = adhoc("pycontainer_login", _args(cli, **{**login, "password": "changed"}))
    assert rc != 0 and "changed" not in json.dumps(refused.get("msg", ""))
    rc, out_check = adhoc("pycontainer_login", _args(cli, registry_url=htpasswd_registry.host, state="absent"),
                          "--check")
    assert rc == 0 and out_check["changed"] is True
    with open(auth_file) as f:
        assert htpasswd_registry.host in json.load(f)["auths"]
    rc, out = adhoc("pycontainer_login", _args(cli, registry_url=htpasswd_registry.host, state="absent"))
    assert rc == 0 and out["changed"] is True
    assert out["actions"] == [f"Removed credentials for {htpasswd_registry.host}"]
    rc, out_again = adhoc("pycontainer_login", _args(cli, registry_url=htpasswd_registry.host, state="absent"))
    assert rc == 0 and out_again["changed"] is False
    rc, missing = adhoc("pycontainer_login", _args(cli, registry_url=htpasswd_registry.host, username=USER))
    assert rc != 0 and "password" in missing["msg"]


def test_login_module_examples_run_and_hide_the_password(htpasswd_registry, engine_root, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), htpasswd_registry.host)
    cli = Cli(root=str(engine_root), config=config)
    placeholders = {"registry.example.com:5000": htpasswd_registry.host, "username: deploy": f"username: {USER}"}
    proc = run_module_examples("pycontainer_login", cli, tmp_path, placeholders,
                               "-e", f"registry_password={PASSWORD}", "-v")
    assert proc.returncode == 0 and "changed=2" in proc.stdout, proc.stdout + proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
