"""The launcher against the real kernel: namespaces, overlay rootfs, pivot_root, exec errors, no leaks."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    CommandNotExecutable,
    CommandNotFound,
    EngineError,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import launcher
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.spec import (
    ContainerSpec,
    ProcessSpec,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                                reason="needs root and /bin/busybox")

APPLETS = ["sh", "echo", "true", "false", "ls", "cat", "id", "hostname", "mount", "ps", "sleep", "wc",
           "readlink", "pwd", "grep", "touch", "stat", "env", "kill", "test", "mkdir", "head", "tr", "tail", "seq",
           "unshare", "mknod", "df", "dd", "chroot", "sed"]
DOCKER_DEFAULT_CAPS = 0xA80425FB


def make_busybox_rootfs(root: str) -> str:
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin/busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\nwheel:x:10:\nuser:x:1000:\n")
    with open(os.path.join(root, "etc/not-executable"), "w") as f:
        f.write("#!/bin/sh\necho no\n")
    os.chmod(os.path.join(root, "etc/not-executable"), 0o644)
    return root


@pytest.fixture(scope="module")
def lower(tmp_path_factory) -> str:
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox") / "layer"))


def make_spec(lower: str | list[str], tmp_path, args: list[str], **kw) -> ContainerSpec:
    proc_kw = {k: kw.pop(k) for k in ("cwd", "uid", "gid", "additional_gids", "capabilities") if k in kw}
    env = kw.pop("env", ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"])
    return ContainerSpec(
        id="c" * 64, hostname=kw.pop("hostname", "testbox"),
        lower_dirs=[lower] if isinstance(lower, str) else lower,
        container_dir=str(tmp_path / "ctr"), process=ProcessSpec(args=args, env=env, **proc_kw), **kw,
    )


def run(spec: ContainerSpec, stdin: int | None = None) -> tuple[int, str]:
    """Start, collect stdout+stderr, wait, clean up: (exit status, output)."""
    r, w = os.pipe()
    try:
        proc = launcher.start(spec, stdin, w, w)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    code = launcher.wait(proc)
    launcher.cleanup(spec)
    return code, out


def _descendants() -> set[int]:
    """Live (non-zombie) descendants of this test process: anything we started and did not reap."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in "ZX":
                parent[int(entry)] = int(fields[1])
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


@pytest.fixture
def no_orphans():
    """The integration suite's autouse leak check (tests/integration/conftest.py) covers every test here;
    this adds that nothing this process started is left unreaped."""
    yield
    assert not {pid for pid in _descendants() if _comm(pid) not in ("docker-registry", "registry")}


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_echo_reaches_pipe(lower, tmp_path, no_orphans):
    assert run(make_spec(lower, tmp_path, ["echo", "hello", "world"])) == (0, "hello world\n")


def test_exit_code(lower, tmp_path, no_orphans):
    assert run(make_spec(lower, tmp_path, ["sh", "-c", "exit 3"]))[0] == 3


def test_env_and_stdin(lower, tmp_path):
    r, w = os.pipe()
    os.write(w, b"from stdin\n")
    os.close(w)
    spec = make_spec(lower, tmp_path, ["sh", "-c", 'cat; echo "$FOO"'], env=["PATH=/bin", "FOO=bar"])
    code, out = run(spec, stdin=r)
    os.close(r)
    assert (code, out) == (0, "from stdin\nbar\n")


def test_stdin_none_is_dev_null(lower, tmp_path):
    assert run(make_spec(lower, tmp_path, ["cat"])) == (0, "")


def test_missing_command(lower, tmp_path, no_orphans):
    spec = make_spec(lower, tmp_path, ["nosuch", "arg"])
    with pytest.raises(CommandNotFound, match=r'exec: "nosuch": executable file not found in \$PATH') as ei:
        launcher.start(spec, None, 1, 2)
    assert ei.value.exit_code == 127
    launcher.cleanup(spec)


def test_missing_absolute_path(lower, tmp_path, no_orphans):
    spec = make_spec(lower, tmp_path, ["/nosuch"])
    with pytest.raises(CommandNotFound, match="no such file or directory"):
        launcher.start(spec, None, 1, 2)


def test_not_executable(lower, tmp_path, no_orphans):
    spec = make_spec(lower, tmp_path, ["/etc/not-executable"])
    with pytest.raises(CommandNotExecutable, match="permission denied") as ei:
        launcher.start(spec, None, 1, 2)
    assert ei.value.exit_code == 126


def test_directory_is_not_executable(lower, tmp_path):
    with pytest.raises(CommandNotExecutable):
        launcher.start(make_spec(lower, tmp_path, ["/etc"]), None, 1, 2)


def test_setup_failure_is_engine_error_and_leaves_nothing(tmp_path, no_orphans):
    spec = make_spec(str(tmp_path / "no-such-layer"), tmp_path, ["true"])
    with pytest.raises(EngineError) as ei:
        launcher.start(spec, None, 1, 2)
    assert type(ei.value) is EngineError  # exactly, not a subclass  # pylint: disable=unidiomatic-typecheck
    assert ei.value.exit_code == 125
    assert "overlay" in str(ei.value)


def test_pid_namespace(lower, tmp_path):
    script = "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o pid"
    code, out = run(make_spec(lower, tmp_path, ["sh", "-c", script]))
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "sh -c cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o pid "
    pids = [int(p) for p in lines[2:]]
    assert 1 in pids and max(pids) < 20  # only the container's few processes


def test_hostname(lower, tmp_path):
    assert run(make_spec(lower, tmp_path, ["hostname"], hostname="myhost"))[1] == "myhost\n"


def test_rootfs_is_overlay_and_writes_go_to_upper(lower, tmp_path, no_orphans):
    script = "echo data > /newfile; rm /etc/group; grep ' / / ' /proc/self/mountinfo"
    spec = make_spec(lower, tmp_path, ["sh", "-c", script])
    code, out = run(spec)
    assert code == 0
    assert " - overlay " in out
    with open(os.path.join(spec.upper_dir, "newfile")) as f:
        assert f.read() == "data\n"
    assert not os.path.exists(os.path.join(lower, "newfile"))
    assert os.path.exists(os.path.join(lower, "etc/group"))  # lower untouched, whiteout in upper
    assert os.path.exists(os.path.join(spec.upper_dir, "etc/group"))
    assert os.listdir(spec.rootfs) == []  # the overlay never existed in the host mount namespace
    assert set(os.listdir(spec.upper_dir)) == {"newfile", "etc"}  # no trace of /dev, old root, ...


def test_mountinfo_is_pivoted(lower, tmp_path):
    code, out = run(make_spec(lower, tmp_path, ["cat", "/proc/self/mountinfo"]))
    assert code == 0
    mount_points = [line.split()[4] for line in out.splitlines()]
    assert mount_points[0] == "/"
    for needed in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/dev/null"):
        assert needed in mount_points
    assert not any(mp.startswith(str(tmp_path)) or ".oldroot" in mp for mp in mount_points)


def test_proc_sys_readonly_and_masked(lower, tmp_path):
    _status, out = run(make_spec(lower, tmp_path, [
        "sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid && echo WRITABLE; "
                    "grep ' /proc/sys ' /proc/self/mountinfo; wc -c < /proc/keys"]))
    assert "WRITABLE" not in out
    assert "Read-only file system" in out
    assert " /proc/sys ro," in out
    assert out.splitlines()[-1].strip() == "0"


def test_dev(lower, tmp_path):
    code, out = run(make_spec(lower, tmp_path, [
        "sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && readlink /dev/fd "
                    "&& readlink /dev/ptmx && test -c /dev/pts/ptmx && touch /dev/shm/f && echo ok"]))
    assert (code, out.split()) == (0, ["4", "/proc/self/fd", "pts/ptmx", "ok"])


def test_only_stdio_fds_reach_the_process(lower, tmp_path):
    extra = os.open("/dev/null", os.O_RDONLY)  # inheritable: must still not leak into the container
    os.set_inheritable(extra, True)
    try:
        code, out = run(make_spec(lower, tmp_path, ["ls", "/proc/self/fd"]))
    finally:
        os.close(extra)
    assert code == 0
    assert out.split() == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


def test_network_none_has_only_lo_up(lower, tmp_path):
    script = "ls /sys/class/net; cat /sys/class/net/lo/flags"
    code, out = run(make_spec(lower, tmp_path, ["sh", "-c", script]))
    assert (code, out.split()) == (0, ["lo", "0x9"])  # IFF_UP | IFF_LOOPBACK


def test_network_host(lower, tmp_path):
    _status, out = run(make_spec(lower, tmp_path, ["ls", "/sys/class/net"], network_mode="host"))
    assert sorted(out.split()) == sorted(os.listdir("/sys/class/net"))


def test_killed_by_signal(lower, tmp_path, no_orphans):
    spec = make_spec(lower, tmp_path, ["sh", "-c", "sleep 100 & sleep 100"])
    proc = launcher.start(spec, None, 1, 2)
    time.sleep(0.1)
    assert launcher.poll(proc) is None
    os.kill(proc.pid, signal.SIGKILL)
    assert launcher.wait(proc) == 128 + signal.SIGKILL
    assert launcher.wait(proc) == 137  # idempotent
    launcher.cleanup(spec)


def test_no_mounts_or_processes_left(lower, tmp_path):
    with open("/proc/self/mountinfo") as f:
        before = f.read()
    spec = make_spec(lower, tmp_path, ["sh", "-c", "sleep 30 & sleep 30 & echo started; wait"])
    r, w = os.pipe()
    proc = launcher.start(spec, None, w, w)
    os.close(w)
    os.read(r, 100)
    os.close(r)
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == proc.pid]
    assert len(children) == 2
    os.kill(proc.pid, signal.SIGKILL)
    launcher.wait(proc)
    launcher.cleanup(spec, remove_layers=True)
    with open("/proc/self/mountinfo") as f:
        assert f.read() == before
    assert not any(os.path.exists(f"/proc/{p}") and _ppid(p) == proc.pid for p in children)
    assert not os.path.exists(spec.upper_dir)
    launcher.cleanup(spec, remove_layers=True)  # idempotent


def _ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return -1


def test_restart_reuses_upper(lower, tmp_path):
    spec = make_spec(lower, tmp_path, ["sh", "-c", "echo $$ >> /log; cat /log"])
    assert run(spec) == (0, "1\n")
    assert run(spec) == (0, "1\n1\n")


def test_user_groups_and_capabilities(lower, tmp_path):
    _status, out = run(make_spec(lower, tmp_path, ["sh", "-c", "id; grep Cap /proc/self/status"],
                                 uid=1000, gid=1000, additional_gids=[10]))
    assert out.splitlines()[0] == "uid=1000(user) gid=1000(user) groups=10(wheel)"
    caps = dict(line.split(":\t") for line in out.splitlines()[1:])
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapBnd"], 16) == DOCKER_DEFAULT_CAPS


def test_root_gets_docker_default_capabilities(lower, tmp_path):
    _status, out = run(make_spec(lower, tmp_path, ["grep", "Cap", "/proc/self/status"]))
    caps = dict(line.split(":\t") for line in out.splitlines())
    assert int(caps["CapEff"], 16) == DOCKER_DEFAULT_CAPS
    # The default set in the bounding, effective and permitted sets; inheritable and ambient empty (Docker's
    # answer to CVE-2022-24769).
    assert int(caps["CapInh"], 16) == 0 and int(caps["CapAmb"], 16) == 0


def test_cwd_is_created(lower, tmp_path):
    assert run(make_spec(lower, tmp_path, ["pwd"], cwd="/work/dir")) == (0, "/work/dir\n")
    assert run(make_spec(lower, tmp_path, ["pwd"], cwd="")) == (0, "/\n")


def test_cwd_not_accessible_for_user(lower, tmp_path):
    spec = make_spec(lower, tmp_path, ["pwd"], cwd="/root", uid=1000, gid=1000)
    os.chmod(os.path.join(lower, "root"), 0o700)
    with pytest.raises(EngineError, match="chdir to cwd"):
        launcher.start(spec, None, 1, 2)


def test_readonly_rootfs(lower, tmp_path):
    script = "touch /x 2>/dev/null && echo WRITABLE; touch /dev/shm/y && echo shm-ok"
    _status, out = run(make_spec(lower, tmp_path, ["sh", "-c", script], readonly_rootfs=True))
    assert out.split() == ["shm-ok"]


def test_etc_files_bound_without_following_image_symlinks(lower, tmp_path, tmp_path_factory):
    # An image whose /etc/hosts points at /etc/passwd must not make us bind over the real target.
    evil = str(tmp_path_factory.mktemp("evil"))
    os.makedirs(evil + "/etc")
    os.symlink("/etc/passwd", evil + "/etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    spec = make_spec([lower, evil], tmp_path, ["sh", "-c", "cat /etc/hosts; head -1 /etc/passwd"],
                     etc_files={"/etc/hosts": str(hosts)})
    assert run(spec) == (0, "127.0.0.1 localhost\nroot:x:0:0:root:/root:/bin/sh\n")


def test_many_layers_exceeding_mount_options_page(lower, tmp_path):
    layers = [lower]
    for i in range(120):
        d = tmp_path / "layers" / f"{i:03d}-{'x' * 40}"
        (d / "files").mkdir(parents=True)
        (d / "files" / f"f{i}").write_text(str(i))
        (d / "files" / "top").write_text(str(i))
        layers.append(str(d))
    assert len(":".join(layers)) > 4096
    code, out = run(make_spec(layers, tmp_path, ["sh", "-c", "ls /files | wc -l; cat /files/top"]))
    assert (code, out.split()) == (0, ["121", "119"])  # 120 files + top; the last layer is the topmost


def test_container_survives_launcher_crash_and_leaves_no_mount(lower, tmp_path):
    """The overlay lives only in the container's mount namespace: a launcher that dies right after start
    leaves the container running (adopted by init) and nothing mounted on the host."""
    import subprocess
    import sys

    spec = make_spec(lower, tmp_path, ["sleep", "30"])
    code = (
        "import os, sys, pickle\n"
        "from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import launcher\n"
        "spec = pickle.loads(sys.stdin.buffer.read())\n"
        "null = os.open('/dev/null', os.O_WRONLY)\n"
        "p = launcher.start(spec, None, null, null)\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    import pickle

    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(spec), capture_output=True,
                         check=True).stdout
    pid = int(out)
    try:
        assert _ppid(str(pid)) == 1 or os.path.exists(f"/proc/{pid}")
        assert launcher.mounts.mountpoints_under(spec.container_dir) == []
        with open(f"/proc/{pid}/root/etc/passwd") as f:  # the running rootfs is reachable via /proc
            assert f.read().startswith("root:")
    finally:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}")
    assert run(make_spec(lower, tmp_path, ["true"])) == (0, "")  # upper/work free again


def test_join_namespaces_of_running_container(lower, tmp_path):
    import socket

    from ansible_collections.pycontainer.engine.plugins.module_utils.linux import namespaces

    from .linux.helpers import in_child

    spec = make_spec(lower, tmp_path, ["sleep", "30"], hostname="joined")
    proc = launcher.start(spec, None, 1, 2)
    try:
        def child():
            namespaces.join(proc.pid, ["uts", "ipc", "network", "mount"])
            return socket.gethostname(), sorted(os.listdir("/")), os.listdir("/sys/class/net")

        assert in_child(child) == ("joined", ["bin", "dev", "etc", "proc", "root", "sys", "tmp"], ["lo"])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        launcher.wait(proc)
        launcher.cleanup(spec)
