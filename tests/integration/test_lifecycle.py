"""Supervised containers through the real CLI: detached runs, stop/kill/wait/restart, restart policies, --rm,
logs, attach and terminals, exec, pause, reconciliation after a monitor crash."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration.helpers import PYCONTAINER, Cli, write_engine_config


@pytest.fixture
def image(cli, busybox_image) -> str:
    cli("pull", "-q", busybox_image, check=True)
    return busybox_image


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def state(cli: Cli, name: str) -> dict:
    return json.loads(cli("inspect", name, check=True).stdout)[0]["State"]


def events(cli: Cli) -> list[tuple[str, str]]:
    from ansible_collections.pycontainer.engine.plugins.module_utils.events import EventJournal

    return [(e["Actor"]["Attributes"].get("name", ""), e["Action"])
            for e in EventJournal(os.path.join(cli.root, "events")).read() if e["Type"] == "container"]


def monitor_pid(cli: Cli) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if any(b"supervision.monitor import main" in a for a in argv) and cli.root.encode() in argv:
                return int(entry)
    return 0


def test_detached_container_outlives_the_cli_and_stops_with_sigterm_then_sigkill(cli, image):
    run = cli("run", "-d", "--name", "bg", image, "sh", "-c", "echo started; exec sleep 300", check=True)
    container_id = run.stdout.strip()
    assert len(container_id) == 64 and all(c in "0123456789abcdef" for c in container_id)
    assert run.stderr == ""
    wait_for(lambda: cli("logs", "bg").stdout == "started\n", what="log line")
    s = state(cli, "bg")
    assert s["Status"] == "running" and s["Running"] and s["Pid"] > 0
    assert os.path.exists(f"/proc/{s['Pid']}")
    ps = cli("ps", check=True).stdout.splitlines()
    assert ps[1].startswith(container_id[:12]) and "Up " in ps[1] and ps[1].endswith("bg")
    # sleep as PID 1 ignores SIGTERM (no handler): stop waits for the timeout, then SIGKILL.
    started = time.monotonic()
    assert cli("stop", "-t", "1", "bg", check=True).stdout == "bg\n"
    assert time.monotonic() - started >= 1.0
    s = state(cli, "bg")
    assert (s["Status"], s["ExitCode"], s["Pid"]) == ("exited", 137, 0)
    assert "Exited (137)" in cli("ps", "-a").stdout
    assert cli("wait", "bg").stdout == "137\n"
    assert ("bg", "die") in events(cli) and ("bg", "stop") in events(cli)
    cli("rm", "bg", check=True)


def test_stop_signal_that_the_container_handles_exits_cleanly(cli, image):
    cli("run", "-d", "--name", "trap", image, "sh", "-c",
        "trap 'exit 0' TERM; trap 'exit 10' USR1; while :; do sleep 0.1; done", check=True)
    wait_for(lambda: state(cli, "trap")["Running"], what="running")
    time.sleep(0.2)  # the trap is set once sh has parsed the script
    cli("stop", "trap", check=True)
    assert state(cli, "trap")["ExitCode"] == 0
    cli("start", "trap", check=True)
    wait_for(lambda: state(cli, "trap")["Running"], what="restart")
    time.sleep(0.2)
    assert cli("kill", "-s", "USR1", "trap").returncode == 0
    assert cli("wait", "trap").stdout == "10\n"
    kill_stopped = cli("kill", "trap")
    assert kill_stopped.returncode == 1 and "is not running" in kill_stopped.stderr
    cli("rm", "trap", check=True)


def test_restart_policies(cli, image):
    cli("run", "-d", "--name", "flaky", "--restart", "on-failure:2", image, "sh", "-c", "echo run; exit 3",
        check=True)
    wait_for(lambda: state(cli, "flaky")["Status"] == "exited" and
             json.loads(cli("inspect", "flaky").stdout)[0]["RestartCount"] == 2, what="two restarts")
    assert cli("logs", "flaky").stdout == "run\n" * 3
    assert [a for n, a in events(cli) if n == "flaky"].count("restart") == 2
    cli("run", "-d", "--name", "always", "--restart", "always", image, "sh", "-c", "sleep 0.1; exit 1", check=True)
    wait_for(lambda: json.loads(cli("inspect", "always").stdout)[0]["RestartCount"] >= 1, what="restart")
    cli("stop", "-t", "1", "always", check=True)
    count = json.loads(cli("inspect", "always").stdout)[0]["RestartCount"]
    time.sleep(0.6)
    after = json.loads(cli("inspect", "always").stdout)[0]
    assert after["State"]["Status"] == "exited" and after["RestartCount"] == count  # stopped by hand: no restart
    conflict = cli("run", "--rm", "--restart", "always", image, "true")
    assert conflict.returncode == 125 and "Conflicting options" in conflict.stderr
    cli("rm", "flaky", "always", check=True)


def test_rm_container_whose_command_is_missing_is_removed(cli, image):
    assert cli("run", "--rm", image, "no-such-command").returncode == 127
    assert cli("run", "-d", "--rm", image, "no-such-command").returncode == 127
    assert cli("ps", "-aq").stdout == ""
    kept = cli("run", "--name", "kept", image, "no-such-command")
    assert kept.returncode == 127
    s = state(cli, "kept")
    assert s["Status"] == "created" and s["ExitCode"] == 127 and "executable file not found" in s["Error"]
    cli("rm", "kept", check=True)


def test_detached_rm_removes_the_container_when_it_exits(cli, image):
    container_id = cli("run", "-d", "--rm", image, "sh", "-c", "exit 0", check=True).stdout.strip()
    wait_for(lambda: cli("ps", "-aq").stdout == "", what="removal")
    assert not os.path.exists(os.path.join(cli.root, "containers", container_id))


def test_logs_tail_timestamps_since_and_follow(cli, image):
    cli("run", "-d", "--name", "talk", image, "sh", "-c",
        "for i in 1 2 3; do echo out$i; echo err$i >&2; done; sleep 1; echo late", check=True)
    wait_for(lambda: "err3" in cli("logs", "talk").stderr, what="first lines")
    logs = cli("logs", "talk")
    assert logs.stdout.startswith("out1\nout2\nout3\n") and logs.stderr == "err1\nerr2\nerr3\n"
    tail = cli("logs", "--tail", "2", "talk")
    assert len((tail.stdout + tail.stderr).splitlines()) == 2
    stamped = cli("logs", "-t", "talk").stdout.splitlines()[0]
    stamp, text = stamped.split(" ", 1)
    assert text == "out1" and stamp.endswith("Z") and len(stamp.split(".")[1]) == 10
    assert cli("logs", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02", "talk").stdout == ""
    follow = cli("logs", "-f", "talk", timeout=30)  # ends when the container does
    assert follow.stdout.splitlines()[-1] == "late"
    path = json.loads(cli("inspect", "talk").stdout)[0]["LogPath"]
    with open(path) as f:
        first = json.loads(f.readline())
    assert set(first) == {"log", "stream", "time"} and first["log"] == "out1\n" and first["stream"] == "stdout"
    cli("rm", "talk", check=True)


def test_log_rotation_max_size_max_file_compress(cli, image):
    cli("run", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "--log-opt",
        "compress=true", image, "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        check=True)
    path = json.loads(cli("inspect", "chatty").stdout)[0]["LogPath"]
    files = sorted(os.listdir(os.path.dirname(path)))
    base = os.path.basename(path)
    assert {f for f in files if f.startswith(base)} == {base, base + ".1.gz", base + ".2.gz"}
    assert os.path.getsize(path) <= 2000
    with gzip.open(path + ".1.gz") as f:
        assert json.loads(f.readline())["log"].startswith("line-")
    lines = cli("logs", "chatty").stdout.splitlines()
    assert lines[-1] == "line-199" and lines == [f"line-{i}" for i in range(200 - len(lines), 200)]
    cli("rm", "chatty", check=True)
    cli("run", "--name", "quiet", "--log-driver", "none", image, "echo", "hi", check=True)
    refused = cli("logs", "quiet")
    assert refused.returncode == 125 and "does not support reading" in refused.stderr
    cli("rm", "quiet", check=True)
    bad = cli("run", "--log-opt", "max-file=x", image, "true")
    assert bad.returncode == 125


def test_create_start_attach_rename_wait(cli, image):
    container_id = cli("create", "--name", "later", image, "sh", "-c", "echo from-start; exit 7",
                       check=True).stdout.strip()
    assert len(container_id) == 64
    assert "Created" in cli("ps", "-a").stdout
    assert cli("ps", "-q").stdout == ""
    start = cli("start", "-a", "later")
    assert (start.returncode, start.stdout) == (7, "from-start\n")
    cli("rename", "later", "renamed", check=True)
    assert json.loads(cli("inspect", "renamed").stdout)[0]["Name"] == "/renamed"
    assert cli("inspect", "later").returncode != 0
    assert cli("wait", "renamed").stdout == "7\n"
    assert ("renamed", "rename") in events(cli)
    cli("rm", "renamed", check=True)


def test_foreground_run_with_stdin(cli, image):
    run = cli("run", "--rm", "-i", image, "sh", "-c", "tr a-z A-Z; echo done >&2; exit 4", input="hello\n")
    assert (run.returncode, run.stdout, run.stderr) == (4, "HELLO\n", "done\n")


def test_ps_filters_and_formats(cli, image):
    cli("run", "--name", "ok", "-l", "tier=web", image, "true", check=True)
    cli("run", "--name", "bad", "-l", "tier=db", image, "sh", "-c", "exit 2")
    cli("run", "-d", "--name", "up", image, "sleep", "300", check=True)

    def names(*a):
        return sorted(cli("ps", *a, "--format", "{{.Names}}", check=True).stdout.split())

    assert names() == ["up"]
    assert names("-a") == ["bad", "ok", "up"]
    assert names("-a", "--filter", "status=exited") == ["bad", "ok"]
    assert names("--filter", "exited=2") == ["bad"]
    assert names("-a", "--filter", "label=tier=web") == ["ok"]
    assert names("-a", "--filter", "label=tier") == ["bad", "ok"]
    assert names("-a", "--filter", "name=^u") == ["up"]
    assert names("-a", "--filter", f"ancestor={image}", "--filter", "status=running") == ["up"]
    assert names("-n", "1") == ["up"] and names("-l") == ["up"]
    full = cli("ps", "-q", "--no-trunc", check=True).stdout.strip()
    assert len(full) == 64 and names("-a", "--filter", f"id={full[:5]}") == ["up"]
    assert "virtual" in cli("ps", "-s", check=True).stdout.splitlines()[1]
    assert cli("ps", "--filter", "bogus=1").returncode == 125
    rows = [json.loads(line) for line in cli("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Names"]: r["State"] for r in rows} == {"ok": "exited", "bad": "exited", "up": "running"}
    top = cli("top", "up", check=True).stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and len(top) == 2 and top[1].endswith("sleep 300")
    cli("rm", "-f", "ok", "bad", "up", check=True)
    assert cli("ps", "-aq").stdout == ""


def test_exec_runs_in_the_container(cli, image):
    cli("run", "-d", "--name", "host1", "--hostname", "inside", image, "sleep", "300", check=True)
    out = cli("exec", "-e", "X=1", "-w", "/tmp", "host1", "sh", "-c", "hostname; echo $X; pwd; exit 3")
    assert (out.returncode, out.stdout) == (3, "inside\n1\n/tmp\n")
    piped = cli("exec", "-i", "host1", "cat", input="via-stdin")
    assert piped.stdout == "via-stdin"
    assert cli("exec", "-u", "nobody", "host1", "id", "-u", check=True).stdout.strip() == "65534"
    assert cli("exec", "host1", "no-such-command").returncode == 127
    cli("exec", "-d", "host1", "sh", "-c", "echo detached > /tmp/d", check=True)
    wait_for(lambda: cli("exec", "host1", "cat", "/tmp/d").stdout == "detached\n", what="detached exec")
    cli("rm", "-f", "host1", check=True)
    assert cli("exec", "host1", "true").returncode == 125


def test_pause_and_unpause(cli, image):
    cli("run", "-d", "--name", "pz", image, "sh", "-c", "while :; do date +%s%N > /tmp/t; sleep 0.05; done",
        check=True)
    wait_for(lambda: state(cli, "pz")["Running"], what="running")
    cli("pause", "pz", check=True)
    s = state(cli, "pz")
    assert s["Status"] == "paused" and s["Paused"] and "(Paused)" in cli("ps").stdout
    assert cli("pause", "pz").returncode == 1
    cli("unpause", "pz", check=True)
    assert state(cli, "pz")["Status"] == "running"
    assert [a for n, a in events(cli) if n == "pz" and a in ("pause", "unpause")] == ["pause", "unpause"]
    stats = cli("stats", "--no-stream", "pz", check=True).stdout.splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and "pz" in stats[1].split()
    cli("rm", "-f", "pz", check=True)


def _spawn_in_pty(cli: Cli, *args: str):
    """Run the CLI with a real terminal as stdin/stdout/stderr; return (process, master fd)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen([PYCONTAINER, "--root", cli.root, "--config", cli.config, *args],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    return proc, master


def _read_until(master: int, needle: bytes, timeout: float = 20.0) -> bytes:
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"never saw {needle!r} in {seen!r}")
        ready, _writable, _exceptional = select.select([master], [], [], remaining)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_run_it_gives_a_usable_shell_with_the_window_size(cli, image):
    proc, master = _spawn_in_pty(cli, "run", "-it", "--rm", image, "sh")
    try:
        _read_until(master, b"# ")
        os.write(master, b"stty size; tty; exit 5\r")
        seen = _read_until(master, b"/dev/pts/0")
        assert b"33 101" in seen
        assert proc.wait(timeout=20) == 5
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_itd_attach_and_detach_keys(cli, image):
    cli("run", "-itd", "--name", "term", image, "sh", check=True)
    proc, master = _spawn_in_pty(cli, "attach", "term")
    try:
        time.sleep(0.3)
        os.write(master, b"echo marker-$((6*7))\r")
        _read_until(master, b"marker-42")
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q: detach, the container keeps running
        assert proc.wait(timeout=20) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert state(cli, "term")["Running"]
    cli("rm", "-f", "term", check=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_reconciliation_after_the_monitor_is_killed(cli, image):
    cli("run", "-d", "--name", "orphan", image, "sleep", "300", check=True)
    pid = state(cli, "orphan")["Pid"]
    monitor = monitor_pid(cli)
    assert monitor
    os.kill(monitor, signal.SIGKILL)  # a supervisor crash...
    wait_for(lambda: not _alive(monitor), what="monitor death")
    assert state(cli, "orphan")["Status"] == "running"  # ...leaves the container running, unsupervised
    os.kill(pid, signal.SIGKILL)  # ...and then it dies too (as after a reboot)
    wait_for(lambda: state(cli, "orphan")["Status"] == "exited", what="reconciled state")
    s = state(cli, "orphan")
    assert s["ExitCode"] == 255 and s["Pid"] == 0
    with open(os.path.join(cli.root, "containers", json.loads(cli("inspect", "orphan").stdout)[0]["Id"],
                           "state.json")) as f:
        record = json.load(f)
    assert record["status"] == "exited" and record["resources_held"] is False  # persisted and released
    # The next start gets a new monitor.
    cli("start", "orphan", check=True)
    assert state(cli, "orphan")["Running"]
    cli("rm", "-f", "orphan", check=True)


def test_monitor_kill_with_a_live_container_can_still_be_stopped(cli, image):
    cli("run", "-d", "--name", "alone", image, "sleep", "300", check=True)
    os.kill(monitor_pid(cli), signal.SIGKILL)
    time.sleep(0.2)
    cli("stop", "-t", "0", "alone", check=True)
    s = state(cli, "alone")
    assert s["Status"] == "exited" and s["ExitCode"] == 137
    cli("rm", "alone", check=True)


def test_compare_uses_the_engines_comparison(cli, image):
    cli("create", "--name", "cmp", "-m", "64m", "-e", "A=1", image, "sleep", "1", check=True)
    same = cli("compare", "--name", "cmp", "-m", "64m", "-e", "A=1", image, "sleep", "1")
    assert (same.returncode, same.stdout) == (0, "")
    changed = cli("compare", "--name", "cmp", "-m", "32m", "--restart", "always", image, "sleep", "1")
    assert changed.returncode == 1
    assert changed.stdout.splitlines() == [
        "HostConfig.Memory: 67108864 -> 33554432", 'HostConfig.RestartPolicy: ["no", 0] -> ["always", 0]']
    cli("rm", "cmp", check=True)


def test_oom_kill_is_recorded(cli, image):
    run = cli("run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", image, "sh", "-c",
              "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived")
    assert run.returncode == 137, run.stderr
    s = state(cli, "hog")
    assert s["OOMKilled"] is True and s["ExitCode"] == 137
    assert [a for n, a in events(cli) if n == "hog"][-2:] == ["oom", "die"]
    cli("rm", "hog", check=True)


def test_ps_filters_before_since_network_and_refuses_what_it_cannot_check(engine_root, registry, busybox_image,
                                                                          tmp_path):
    from tests.integration.helpers import Cli

    cli = Cli(root=str(engine_root), config=write_engine_config(str(tmp_path / "engine.json"), registry.host))
    cli("pull", "-q", busybox_image, check=True)
    for name in ("first", "second", "third"):
        cli("run", "--name", name, "--network", "none", busybox_image, "true", check=True)

    def names(*f):
        return cli("ps", "-a", *f, "--format", "{{.Names}}", check=True).stdout.split()

    assert names("--filter", "before=third") == ["second", "first"]
    assert names("--filter", "since=first") == ["third", "second"]
    assert names("--filter", "since=first", "--filter", "before=third") == ["second"]
    assert names("--filter", "network=none") == ["third", "second", "first"]
    assert names("--filter", "network=bridge") == []
    refused = cli("ps", "-a", "--filter", "health=healthy")
    assert refused.returncode == 125 and "not supported" in refused.stderr
