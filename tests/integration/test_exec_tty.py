"""`exec -t`: the process's terminal is a pty of the container's own devpts (/dev/pts/<n> inside), as with
Docker, through the CLI (driven from a real terminal), the engine API (exec_capture) and detach keys."""

from __future__ import annotations

import os
import signal

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine

from tests.integration.test_lifecycle import _read_until, _spawn_in_pty

pytestmark = pytest.mark.integration


@pytest.fixture
def image(cli, busybox_image) -> str:
    cli("pull", "-q", busybox_image, check=True)
    return busybox_image


@pytest.fixture
def box(cli, image):
    cli("run", "-d", "--name", "box", "--network", "none", image, "sleep", "300", check=True)
    try:
        yield cli
    finally:
        cli("rm", "-f", "box")


def test_exec_t_names_a_terminal_of_the_container(box):
    cli = box
    # Without -i too: with a terminal all three stdio are the pty (Docker).
    result = cli("exec", "-t", "box", "sh", "-c", "tty; test -t 0 && echo in-tty; ls /dev/pts", check=True)
    lines = result.stdout.replace("\r\n", "\n").splitlines()
    assert len(lines) == 3, (result.stdout, result.stderr)
    assert lines[0].startswith("/dev/pts/") and lines[0][len("/dev/pts/"):].isdigit(), lines
    assert lines[1] == "in-tty"
    assert lines[0].rsplit("/", 1)[1] in lines[2].split(), lines  # the node is in the container's devpts
    # The controlling terminal: /dev/tty opens (it fails without one); -u: the pty belongs to that user.
    owned = cli("exec", "-t", "-u", "nobody", "box", "sh", "-c", "echo hi > /dev/tty; stat -c %u \"$(tty)\"",
                check=True).stdout.replace("\r\n", "\n").splitlines()
    assert owned == ["hi", "65534"]


def test_exec_it_interactive_shell_window_size_and_detach_keys(box):
    cli = box
    proc, master = _spawn_in_pty(cli, "exec", "-it", "box", "sh")  # our terminal: 33 rows, 101 columns
    try:
        _read_until(master, b"# ")
        os.write(master, b"stty size; tty; echo $TERM; exit 7\r")
        seen = _read_until(master, b"xterm")
        assert b"33 101" in seen and b"/dev/pts/" in seen and b"not a tty" not in seen
        assert proc.wait(timeout=20) == 7
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc, master = _spawn_in_pty(cli, "exec", "-it", "box", "sh")
    try:
        _read_until(master, b"# ")
        os.write(master, b"echo marker-$((6*7))\r")
        _read_until(master, b"marker-42")
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q: the CLI detaches
        assert proc.wait(timeout=20) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exec_capture_tty_runs_on_the_containers_devpts(box):
    cli = box
    engine = Engine.from_options(root=cli.root, config_path=cli.config)
    result = engine.containers.exec_capture("box", ["sh", "-c", "tty; [ -t 0 ] && echo in; echo err >&2"],
                                            tty=True)
    lines = result.stdout.replace(b"\r\n", b"\n").splitlines()
    assert result.exit_code == 0 and result.stderr == b""
    assert lines[0].startswith(b"/dev/pts/") and lines[1:] == [b"in", b"err"], lines
    typed = engine.containers.exec_capture("box", ["cat"], stdin=b"typed\n", tty=True)
    assert typed.exit_code == 0 and typed.stdout.count(b"typed") == 2  # the echo and cat's copy
    # A command that cannot run is still a result, and no pty is left open in the container.
    missing = engine.containers.exec_capture("box", ["no-such-command"], tty=True)
    assert missing.exit_code == 127 and b"executable file not found" in missing.stderr
    assert engine.containers.exec_capture("box", ["ls", "/dev/pts"]).stdout.split() == [b"ptmx"]


def test_run_t_without_i_gives_the_process_a_terminal(cli, image):
    # Docker: with -t all three stdio are the terminal, with or without -i (it used to fail at start).
    result = cli("run", "-t", "--rm", "--network", "none", image, "sh", "-c", "test -t 0 && test -t 1 && echo in-tty")
    assert (result.returncode, result.stdout.replace("\r\n", "\n")) == (0, "in-tty\n"), result.stderr


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").splitlines()


def test_run_t_names_a_terminal_of_the_containers_devpts(cli, image):
    # It used to be a host pty: `tty` said "not a tty" and `stty size` failed (the container's /dev/pts
    # cannot name a node of the host's devpts). Run from a real terminal (33x101): the container's terminal
    # has that window from the start (Docker's ConsoleSize), before the command's first `stty size`.
    proc, master = _spawn_in_pty(cli, "run", "-t", "--rm", "--network", "none", image, "sh", "-c",
                                 "tty; ls /dev/pts; stty size; echo hi > /dev/tty; echo end-$((6*7))")
    try:
        seen = _read_until(master, b"end-42")
        assert proc.wait(timeout=20) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = _lines(seen.decode())
    assert len(lines) == 5, lines
    assert lines[0].startswith("/dev/pts/") and lines[0][len("/dev/pts/"):].isdigit(), lines
    assert lines[0].rsplit("/", 1)[1] in lines[1].split(), lines  # the node is in the container's devpts
    assert lines[2:] == ["33 101", "hi", "end-42"]  # the size; /dev/tty: the controlling terminal


def test_run_t_user_init_and_logs(cli, image):
    # -u: the terminal belongs to that user (it can write to it); --init: tini is PID 1, the command its child.
    result = cli("run", "-t", "--init", "-u", "nobody", "--name", "tinit", "--network", "none", image, "sh", "-c",
                 "tty; stat -c %u \"$(tty)\"; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo hi > /dev/tty",
                 check=True)
    try:
        lines = _lines(result.stdout)
        assert lines[0].startswith("/dev/pts/"), lines
        assert lines[1] == "65534" and lines[2].startswith("/sbin/docker-init -- sh"), lines
        assert lines[3] == "hi"
        assert _lines(cli("logs", "tinit", check=True).stdout) == lines  # a -t container's output is logged
    finally:
        cli("rm", "-f", "tinit")


def test_run_it_and_dit_attach_follow_the_window(cli, image):
    import fcntl
    import struct
    import termios

    proc, master = _spawn_in_pty(cli, "run", "-it", "--rm", "--network", "none", image, "sh")  # 33x101
    try:
        _read_until(master, b"# ")
        os.write(master, b"stty size; tty; exit 5\r")
        seen = _read_until(master, b"/dev/pts/0")
        assert b"33 101" in seen and b"not a tty" not in seen
        assert proc.wait(timeout=20) == 5
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cli("run", "-dit", "--name", "term", "--network", "none", image, "sh", check=True)
    try:
        proc, master = _spawn_in_pty(cli, "attach", "term")
        try:
            # The attach's resize (0x0 -> 33x101) makes sh redraw its prompt: the CLI is in raw mode by then
            # (typed earlier, setraw's flush could eat it).
            _read_until(master, b"# ")
            os.write(master, b"echo marker-$((6*7)); tty\r")
            assert b"/dev/pts/0" in _read_until(master, b"/dev/pts/0")
            # A window change of the caller reaches the container's terminal (SIGWINCH -> resize -> TIOCSWINSZ).
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 77, 0, 0))
            os.kill(proc.pid, signal.SIGWINCH)
            _read_until_size(master, b"41 77")
            os.write(master, b"\x10\x11")  # ctrl-p ctrl-q: detach, the container keeps running
            assert proc.wait(timeout=20) == 0
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "marker-42" in cli("logs", "term", check=True).stdout
    finally:
        cli("rm", "-f", "term")


def _read_until_size(master: int, size: bytes) -> None:
    """Ask `stty size` until the resize (asynchronous: a signal, then a message to the monitor) shows."""
    for attempt in range(50):
        os.write(master, b"stty size; echo done-%d\r" % attempt)
        seen = _read_until(master, b"\ndone-%d" % attempt)
        if size in seen:
            return
    raise AssertionError(f"the window never became {size!r}")
