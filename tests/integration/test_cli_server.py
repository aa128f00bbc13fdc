"""The CLI's warm server (cli/server.py): a command run through it behaves as the same command run locally.

``PYCONTAINER_CLI_SERVER=require`` makes the client fail instead of falling back, so each test knows which
path ran; ``=0`` runs the command in the calling process. Everything here is the real console script, the
real server process and real containers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration.helpers import PYCONTAINER
from tests.leakcheck import is_cli_server

CLIENT = "ansible_collections.pycontainer.engine.plugins.module_utils.cli.client"


def run(cli, *args: str, mode: str = "require", env: dict | None = None, cwd: str | None = None,
        input: str | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYCONTAINER_CLI_SERVER=mode, **(env or {}))
    return subprocess.run([*prefix, *cli.argv(), *args], capture_output=True, text=True, env=environ, cwd=cwd,
                          input=input, timeout=120, check=False)


def server_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and is_cli_server(int(entry))]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.fixture
def web(cli, busybox_image):
    cli("run", "-d", "--network", "none", "--name", "srv-web", "-l", "app=x", busybox_image, "sleep", "300",
        check=True)
    yield cli
    cli("rm", "-f", "srv-web", check=True)


def test_outputs_and_exit_codes_are_those_of_a_local_run(web, busybox_image):
    for args in (("inspect", "srv-web"), ("ps", "-a", "--format", "{{.Names}} {{.Labels}}"),
                 ("images", "--format", "{{.Repository}}"), ("info", "--format", "{{.Containers}}"),
                 ("inspect", "no-such-thing"), ("no-such-verb",), ("run", "--no-such-flag", busybox_image)):
        served, local = run(web, *args), run(web, *args, mode="0")
        assert (served.returncode, served.stdout, served.stderr) == (local.returncode, local.stdout, local.stderr)
    for command, code in ((["sh", "-c", "exit 7"], 7), (["no-such-binary"], 127), (["/etc"], 126)):
        served = run(web, "run", "--rm", "--network", "none", busybox_image, *command)
        assert served.returncode == code, served.stderr


def test_the_callers_environment_directory_umask_and_stdin_are_the_commands(cli, busybox_image, tmp_path):
    (tmp_path / "vars.env").write_text("FROM_FILE=1\n")
    out = run(cli, "run", "--rm", "-i", "--network", "none", "--env-file", "vars.env", "-e", "FROM_CALLER",
              busybox_image, "sh", "-c", 'echo "$FROM_FILE $FROM_CALLER $(cat)"', cwd=str(tmp_path),
              env={"FROM_CALLER": "yes"}, input="piped")
    assert (out.returncode, out.stdout) == (0, "1 yes piped\n"), out.stderr
    modes = {}  # a missing bind source is created by the command, with the caller's umask
    for mode in ("require", "0"):
        for umask in ("077", "022"):
            source = tmp_path / f"bind-{mode}-{umask}"
            made = run(cli, "run", "--rm", "--network", "none", "-v", f"{source}:/d", busybox_image, "true",
                       mode=mode, prefix=("sh", "-c", f'umask {umask}; exec "$@"', "sh"))
            assert made.returncode == 0, made.stderr
            modes[mode, umask] = source.stat().st_mode & 0o777
    assert modes["require", "077"] == modes["0", "077"] == 0o700
    assert modes["require", "022"] == modes["0", "022"] == 0o755


def test_signals_reach_the_command_and_the_exit_status_comes_back(cli, busybox_image):
    proc = subprocess.Popen([*cli.argv(), "run", "--rm", "--network", "none", busybox_image, "sh", "-c",
                             'trap "echo got-term; exit 42" TERM; echo up; while :; do sleep 0.1; done'],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYCONTAINER_CLI_SERVER="require"))
    assert proc.stdout.readline() == "up\n"
    proc.send_signal(signal.SIGTERM)  # the CLI's sig-proxy passes it on to the container
    assert proc.wait(timeout=30) == 42
    assert proc.stdout.read() == "got-term\n"


def test_a_command_dies_with_its_caller(web):
    proc = subprocess.Popen([*web.argv(), "logs", "-f", "srv-web"], stdout=subprocess.DEVNULL,
                            env=dict(os.environ, PYCONTAINER_CLI_SERVER="require"))
    deadline = time.monotonic() + 10
    while not (forked := [(s, c) for s in server_pids() for c in children_of(s)]):
        assert time.monotonic() < deadline, "no server forked the command"
        time.sleep(0.05)
    ((server, command),) = forked
    proc.kill()  # no chance to forward anything: the command must notice by itself
    proc.wait()
    deadline = time.monotonic() + 10
    while command in children_of(server):
        assert time.monotonic() < deadline, "`logs -f` outlived the client that asked for it"
        time.sleep(0.05)


def test_another_namespace_gets_a_server_of_its_own(cli):
    host = run(cli, "ps", "-a")
    inside = run(cli, "ps", "-a", prefix=("unshare", "--net"))
    assert host.returncode == inside.returncode == 0, inside.stderr
    deadline = time.monotonic() + 10
    while len(server_pids()) < 2:  # one per context: the host's and the new network namespace's
        assert time.monotonic() < deadline, server_pids()
        time.sleep(0.05)


@pytest.mark.parametrize("prefix, reason", [
    (("unshare", "--net"), "another net namespace"),
    (("unshare", "--mount"), "another mnt namespace"),
    (("capsh", "--drop=cap_sys_admin", "--"), "other credentials or capabilities"),
])
def test_a_caller_from_another_context_is_refused_by_a_server_not_its_own(cli, prefix, reason):
    from ansible_collections.pycontainer.engine.plugins.module_utils.cli import client

    assert run(cli, "ps").returncode == 0  # the host context's server runs
    host_socket = client.socket_path(client.package_dir(), os.path.join(os.path.dirname(PYCONTAINER), "python"))
    assert os.path.exists(host_socket)
    if prefix[0] == "capsh":
        prefix = (*prefix, "-c", 'exec "$0" "$@"')
    asked = {"PYCONTAINER_CLI_SOCKET": host_socket}
    refused = run(cli, "ps", "-a", prefix=prefix, env=asked)
    assert refused.returncode == 125 and reason in refused.stderr, refused.stderr
    local = run(cli, "ps", "-a", mode="1", prefix=prefix, env=asked)  # the default: falls back to running it here
    assert local.returncode == 0 and local.stdout.startswith("CONTAINER ID"), local.stderr


def test_changed_engine_sources_stop_the_server_and_the_next_one_is_current(cli):
    assert run(cli, "ps").returncode == 0
    (old,) = server_pids()
    source = os.path.join(os.path.dirname(PYCONTAINER), "..", "..", ".collections", "ansible_collections",
                          "pycontainer", "engine", "plugins", "module_utils", "cli", "__init__.py")
    st = os.stat(source)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        stale = run(cli, "ps")
        assert stale.returncode == 125 and "sources changed" in stale.stderr
        assert run(cli, "ps").returncode == 0  # a new server, started for it, with the sources as they are
        assert old not in server_pids()
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_socket_and_its_directory_are_root_only(cli):
    """(Callers that are not root never ask: tests/unit/cli/test_client.py.)"""
    from ansible_collections.pycontainer.engine.plugins.module_utils.cli import client

    assert run(cli, "version", "--format", "{{json .}}").returncode == 0
    directory = os.stat(client.RUN_DIR)
    assert (directory.st_uid, directory.st_mode & 0o777) == (0, 0o700)
    ours = client.socket_path(client.package_dir(), os.path.join(os.path.dirname(PYCONTAINER), "python"))
    assert os.stat(ours).st_mode & 0o077 == 0  # only its owner, root, may connect


def test_the_server_leaves_when_idle(cli):
    assert run(cli, "ps", env={"PYCONTAINER_CLI_LINGER": "1"}).returncode == 0
    deadline = time.monotonic() + 10
    while server_pids():
        assert time.monotonic() < deadline, "the CLI server did not exit after its linger"
        time.sleep(0.1)
    from ansible_collections.pycontainer.engine.plugins.module_utils.cli import client

    ours = client.socket_path(client.package_dir(), os.path.join(os.path.dirname(PYCONTAINER), "python"))
    assert not os.path.exists(ours)  # unlinked by the server that leaves


def test_the_client_loads_nothing_heavy():
    """The client imports only what the interpreter has (no json, socket, signal modules): that is its point."""
    code = (f"import sys; import {CLIENT} as c; "
            "print(sorted(m for m in ('json', 'socket', 'signal', 'argparse', 'enum') if m in sys.modules))")
    out = subprocess.run([os.path.join(os.path.dirname(PYCONTAINER), "python"), "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


@pytest.mark.parametrize("mode", ["require", "0"])
def test_a_traced_run_lists_its_phases_the_monitors_included(cli, busybox_image, mode):
    out = run(cli, "run", "--rm", "--network", "none", busybox_image, "true", mode=mode,
              env={"PYCONTAINER_TRACE": "1"})
    assert out.returncode == 0, out.stderr
    phases = {}
    for line in out.stderr.splitlines():
        if not line.startswith("trace: "):
            continue  # the pull's progress (this test's root has no image yet)
        name, _sep, ms = line[len("trace: "):].rpartition(" ")
        phases[name] = float(ms)
    first = "hand-over to the warm CLI server" if mode == "require" else "imports"
    assert next(iter(phases)) == first
    for phase in ("parse arguments", "create (image, record, layers)", "monitor start: fork (namespaces)",
                  "monitor start: container setup until exec (mounts, pivot_root, seccomp)",
                  "monitor start: round trip", "attached: output until exit"):
        assert phase in phases, sorted(phases)
    assert abs(phases.pop("total") - sum(phases.values())) < 1.0
    quiet = run(cli, "ps", mode=mode)
    assert "trace:" not in quiet.stderr


def test_the_command_runs_in_its_callers_cgroup(web, tmp_path):
    from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.detect import read_layout

    unified, v1 = read_layout()
    mount = v1.get("pids") or unified
    group = os.path.join(mount, f"pyc-cli-test-{os.getpid()}")
    os.mkdir(group)
    try:
        def enter() -> None:
            with open(os.path.join(group, "cgroup.procs"), "w") as f:
                f.write("0")

        proc = subprocess.Popen([*web.argv(), "logs", "-f", "srv-web"], stdout=subprocess.DEVNULL, preexec_fn=enter,
                                env=dict(os.environ, PYCONTAINER_CLI_SERVER="require"))
        try:
            deadline = time.monotonic() + 10
            while not (forked := [c for s in server_pids() for c in children_of(s)]):
                assert time.monotonic() < deadline, "no server forked the command"
                time.sleep(0.05)
            with open(f"/proc/{forked[0]}/cgroup") as f:
                assert any(line.endswith(f"/pyc-cli-test-{os.getpid()}") for line in f.read().splitlines())
        finally:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + 10
        while True:
            with open(os.path.join(group, "cgroup.procs")) as f:
                if not f.read().strip():
                    break
            assert time.monotonic() < deadline, "the command outlived its caller"
            time.sleep(0.05)
    finally:
        os.rmdir(group)


def test_a_socket_that_is_not_roots_gets_nothing(cli):
    """PYCONTAINER_CLI_SOCKET may name any socket: one served by another user never sees the command line,
    the environment or the terminal."""
    import pathlib
    import shutil
    import tempfile

    outer = pathlib.Path(tempfile.mkdtemp(prefix="pyc-cli-test-"))  # not under pytest's root-only tmp
    os.chmod(outer, 0o755)
    directory = outer / "evil"
    directory.mkdir()
    os.chown(directory, 65534, 65534)
    socket_path, received = directory / "cli.sock", directory / "received"
    listener = subprocess.Popen(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "/usr/bin/python3", "-c",
         "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); "
         "open(sys.argv[3], 'w').close(); c, _a = s.accept(); open(sys.argv[2], 'wb').write(c.recv(1 << 16))",
         str(socket_path), str(received), str(directory / "ready")])
    try:
        deadline = time.monotonic() + 10
        while not (directory / "ready").exists():
            assert time.monotonic() < deadline and listener.poll() is None, "the fake server did not start"
            time.sleep(0.05)
        env = {"PYCONTAINER_CLI_SOCKET": str(socket_path), "SECRET_FOR_THE_COMMAND": "s3cret"}
        refused = run(cli, "ps", env=env)
        assert refused.returncode == 125 and "not root" in refused.stderr, refused.stderr
        local = run(cli, "ps", mode="1", env=env)
        assert local.returncode == 0 and local.stdout.startswith("CONTAINER ID"), local.stderr
        time.sleep(0.2)
        assert not received.exists() or b"s3cret" not in received.read_bytes()
    finally:
        listener.kill()
        listener.wait()
        shutil.rmtree(outer, ignore_errors=True)
