"""The vertical slice through the real CLI: pull from the real registry, run in real namespaces."""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture
def pulled(cli, busybox_image) -> str:
    cli("pull", "-q", busybox_image, check=True)
    return busybox_image


def test_pull_images_run_prints_output(cli, busybox_image):
    pull = cli("pull", busybox_image, check=True)
    assert pull.stdout.strip().splitlines()[-1] == busybox_image
    images = cli("images", check=True).stdout.splitlines()
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    repository = busybox_image.rsplit(":", 1)[0]
    assert any(line.split()[:2] == [repository, "latest"] for line in images[1:])
    run = cli("run", "--rm", busybox_image, "echo", "hi", check=True)
    assert run.stdout == "hi\n"
    assert cli("ps", "-a", "-q").stdout == ""  # --rm removed it


def test_short_name_resolves_through_the_docker_io_mirror(cli, busybox_image):
    run = cli("run", "--rm", "busybox", "echo", "Hello World")
    assert (run.returncode, run.stdout) == (0, "Hello World\n"), run.stderr
    assert "Unable to find image 'busybox:latest' locally" in run.stderr
    assert cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split() == ["busybox:latest"]


def test_exit_codes_are_dockers(cli, pulled):
    assert cli("run", "--rm", pulled, "sh", "-c", "exit 3").returncode == 3
    missing = cli("run", "--rm", pulled, "no-such-command")
    assert missing.returncode == 127
    assert missing.stderr.strip().splitlines()[-1].endswith(
        'exec: "no-such-command": executable file not found in $PATH')
    not_executable = cli("run", "--rm", pulled, "/etc/passwd")
    assert not_executable.returncode == 126, not_executable.stderr


def test_container_killed_by_a_signal_exits_128_plus_n(cli, pulled):
    import subprocess
    import time

    from tests.integration.helpers import PYCONTAINER

    proc = subprocess.Popen([PYCONTAINER, "--root", cli.root, "--config", cli.config, "run", "--name", "killme",
                             pulled, "sleep", "30"])
    try:
        pid = 0
        for _i in range(200):
            inspect = cli("inspect", "--format", "{{.State.Pid}}", "killme")
            pid = int(inspect.stdout.strip() or 0) if inspect.returncode == 0 else 0
            if pid:
                break
            time.sleep(0.05)
        assert pid, "container never reported running"
        os.kill(pid, 9)
        assert proc.wait(timeout=30) == 137
    finally:
        proc.kill()
        proc.wait()
    assert "Exited (137)" in cli("ps", "-a").stdout
    cli("rm", "killme", check=True)


def test_engine_errors_exit_125_with_one_line(cli, pulled):
    for args in (["run", "--rm", "Not//Valid"], ["pull", "UPPER/case"], ["run", "--pull", "never", "--rm", "nothere"],
                 ["rmi-is-not-a-command"]):
        proc = cli(*args)
        assert proc.returncode == 125, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    proc = cli("run", "--pull", "never", "nothere")
    assert proc.stderr.strip() == "pycontainer: No such image: nothere:latest"


def test_named_container_shows_in_ps_and_name_conflicts(cli, pulled):
    assert cli("run", "--name", "web", pulled, "sh", "-c", "exit 4").returncode == 4
    ps = cli("ps", "-a").stdout.splitlines()
    assert ps[0].split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    row = [line for line in ps[1:] if line.endswith("web")]
    assert row and "Exited (4)" in row[0] and '"sh -c \'exit 4\'"' in row[0]
    assert cli("ps", "-q").stdout == ""  # not running
    conflict = cli("run", "--name", "web", pulled, "true")
    assert conflict.returncode == 125
    assert 'Conflict. The container name "/web" is already in use by container' in conflict.stderr
    inspect = json.loads(cli("inspect", "web", check=True).stdout)[0]
    assert inspect["Name"] == "/web" and inspect["State"]["ExitCode"] == 4 and inspect["State"]["Status"] == "exited"
    as_json = json.loads(cli("ps", "-a", "--format", "json").stdout.splitlines()[0])
    assert as_json["Names"] == "web" and as_json["State"] == "exited"
    assert cli("rm", "web").returncode == 0
    assert cli("ps", "-a", "-q").stdout == ""
    assert not os.listdir(os.path.join(cli.root, "containers", )) or all(
        e.startswith(".") or e == "names.json" for e in os.listdir(os.path.join(cli.root, "containers")))


def test_container_is_isolated_on_an_overlay_root(cli, pulled):
    script = "hostname; ls /proc | grep -c '^[0-9]' ; echo x > /new && cat /new; grep ' / ' /proc/self/mountinfo"
    run = cli("run", "--rm", "--hostname", "box", pulled, "sh", "-c", script, check=True)
    lines = run.stdout.splitlines()
    assert lines[0] == "box"
    assert int(lines[1]) <= 3  # sh, ls, grep: only the container's own processes
    assert lines[2] == "x"
    assert "overlay" in lines[3]
    # The write went to the container's layer, never to the image.
    assert not any(os.path.exists(os.path.join(d, "new")) for d in _layer_dirs(cli.root))


def _layer_dirs(root: str) -> list[str]:
    found = []
    for base, dirs, _files in os.walk(os.path.join(root, "images")):
        found += [os.path.join(base, d) for d in dirs]
    return found


def test_actions_are_recorded_as_events(cli, busybox_image):
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--rm", "--name", "evented", busybox_image, "sh", "-c", "exit 2")
    from ansible_collections.pycontainer.engine.plugins.module_utils.events import EventJournal

    events = list(EventJournal(os.path.join(cli.root, "events")).read())
    assert [(e["Type"], e["Action"]) for e in events] == [
        ("image", "pull"), ("container", "create"), ("container", "attach"), ("network", "connect"),
        ("container", "start"), ("network", "disconnect"), ("container", "die"), ("container", "destroy")]
    die = events[6]["Actor"]
    assert die["Attributes"]["exitCode"] == "2" and die["Attributes"]["name"] == "evented"
