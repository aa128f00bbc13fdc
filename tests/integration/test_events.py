"""`events` through the real CLI: time windows, filters, formats, and following a second process's actions."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

from tests.integration.helpers import PYCONTAINER, Cli, write_engine_config


def test_time_window_filters_and_formats(cli, busybox_image):
    since = f"{time.time():.6f}"
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--rm", "--name", "one", busybox_image, "true", check=True)
    until = f"{time.time():.6f}"
    cli("run", "--rm", "--name", "later", busybox_image, "true", check=True)

    lines = cli("events", "--since", since, "--until", until, "--filter", "type=image", "--filter", "type=container",
                check=True).stdout.splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["image", "pull"], ["container", "create"], ["container", "attach"], ["container", "start"],
        ["container", "die"], ["container", "destroy"]]
    assert "name=one" in lines[1] and "later" not in "".join(lines)

    dies = cli("system", "events", "--since", since, "--until", f"{time.time():.6f}",
               "--filter", "type=container", "--filter", "event=die", "--format", "json", check=True)
    parsed = [json.loads(line) for line in dies.stdout.splitlines()]
    assert [e["Actor"]["Attributes"]["name"] for e in parsed] == ["one", "later"]
    assert all(e["Actor"]["Attributes"]["exitCode"] == "0" for e in parsed)

    names = cli("events", "--since", since, "--until", f"{time.time():.6f}", "--filter", "container=later",
                "--format", "{{.Action}} {{.Actor.Attributes.name}}", check=True).stdout.splitlines()
    assert names == ["create later", "attach later", "start later", "die later", "destroy later"]

    bad = cli("events", "--since", "yesterday", "--until", "1")
    assert bad.returncode == 125 and "invalid time" in bad.stderr


def test_follow_delivers_another_process_s_events(cli, busybox_image):
    cli("pull", "-q", busybox_image, check=True)
    follower = subprocess.Popen([PYCONTAINER, "--root", cli.root, "--config", cli.config, "events",
                                 "--filter", "event=die"], stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # let the follower start watching
        cli("run", "--rm", "--name", "followed", busybox_image, "sh", "-c", "exit 7", check=False)
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lines and " container die " in lines[0] and "exitCode=7" in lines[0], lines
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    assert os.path.isfile(os.path.join(cli.root, "events", "events.jsonl"))


def test_engine_log_has_a_line_per_action_and_errors_with_context(cli, busybox_image):
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--rm", "--name", "logged", busybox_image, "true", check=True)
    cli("--log-level", "debug", "run", "--pull", "never", "--rm", "absent-image")
    with open(os.path.join(os.path.dirname(cli.config), "engine.log")) as f:
        lines = f.read().splitlines()
    messages = [line.split(" msg=", 1)[1].split('"')[1] for line in lines
                if ' msg="' in line and ' msg="network ' not in line]
    assert messages[:6] == ["image pull", "container create", "container attach", "container start",
                            "container die", "container destroy"]
    error = [line for line in lines if " level=error " in line]
    assert len(error) == 1 and "No such image: absent-image:latest" in error[0]
    assert '--log-level debug run --pull never --rm absent-image" error=ImageNotFound' in error[0]
    assert any(" level=debug msg=command " in line for line in lines)


def test_every_action_records_its_event(cli, busybox_image, registry, tmp_path):
    """Issue 6's list: every container, image, network and volume action leaves Docker's event."""
    from ansible_collections.pycontainer.engine.plugins.module_utils.events import EventJournal

    def ok(*args: str) -> None:
        cli(*args, check=True)

    ok("pull", "-q", busybox_image)
    ok("tag", busybox_image, "evt/copy:v1")
    ok("tag", busybox_image, f"{registry.host}/evt/pushed:v1")
    ok("push", f"{registry.host}/evt/pushed:v1")
    ok("save", "-o", str(tmp_path / "img.tar"), "evt/copy:v1")
    ok("rmi", "evt/copy:v1")
    ok("load", "-i", str(tmp_path / "img.tar"))
    with open(tmp_path / "rootfs.tar", "wb") as f:
        f.write(subprocess.run(["tar", "cf", "-", "-C", str(tmp_path), "img.tar"], capture_output=True,
                               check=True).stdout)
    ok("import", str(tmp_path / "rootfs.tar"), "evt/imported:v1")
    ok("rmi", "evt/imported:v1")
    ok("image", "prune", "-f")

    ok("network", "create", "evtnet")
    ok("volume", "create", "evtvol")
    ok("run", "-d", "--name", "evt", "--network", "evtnet", "-v", "evtvol:/data", busybox_image, "sleep", "300")
    ok("exec", "evt", "true")
    ok("pause", "evt")
    ok("unpause", "evt")
    ok("rename", "evt", "evt2")
    ok("restart", "-t", "1", "evt2")
    ok("kill", "evt2")
    ok("start", "evt2")
    ok("stop", "-t", "1", "evt2")
    ok("rm", "evt2")
    cli("run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "--network", "none", busybox_image, "sh", "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a)")
    attach = subprocess.Popen([*cli.argv(), "start", "-a", "hog"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    attach.wait(timeout=60)
    ok("rm", "hog")
    ok("container", "prune", "-f")
    ok("network", "rm", "evtnet")
    ok("network", "prune", "-f")
    ok("volume", "rm", "evtvol")
    ok("volume", "prune", "-f")

    seen = {(e["Type"], e["Action"].split(":")[0]) for e in EventJournal(os.path.join(cli.root, "events")).read()}
    expected = {("container", a) for a in ("create", "start", "die", "stop", "kill", "pause", "unpause", "restart",
                                           "rename", "destroy", "oom", "exec_create", "exec_start", "exec_die",
                                           "attach", "prune")}
    expected |= {("image", a) for a in ("pull", "push", "tag", "untag", "delete", "load", "save", "import", "prune")}
    expected |= {("network", a) for a in ("create", "connect", "disconnect", "destroy", "prune")}
    expected |= {("volume", a) for a in ("create", "mount", "unmount", "destroy", "prune")}
    assert expected - seen == set()


def test_container_log_defaults_come_from_the_engine_config(engine_root, registry, busybox_image, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host, log_driver="json-file",
                                 log_opts={"max-size": "1k", "max-file": "2"})
    cli = Cli(root=str(engine_root), config=config)
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--name", "defaults", "--network", "none", busybox_image, "true", check=True)
    cli("run", "--name", "chosen", "--network", "none", "--log-driver", "none", busybox_image, "true", check=True)
    inspect = json.loads(cli("inspect", "defaults", "chosen", check=True).stdout)
    assert inspect[0]["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}
    assert inspect[1]["HostConfig"]["LogConfig"]["Type"] == "none"
    cli("rm", "defaults", "chosen", check=True)
