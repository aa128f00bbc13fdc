"""Hostile images against the container's set-up: every container path is resolved inside the container's root.

An image can plant symlinks anywhere (``/etc -> /dev/.oldroot/tmp/victim``, ``/etc -> /tmp/victim``,
``/etc -> ../../../../tmp/victim``, ``/sbin -> ...``): whatever the engine creates or mounts for the container
(/etc/hosts, /etc/hostname, /etc/resolv.conf, --device nodes, --init's binary, the working directory) must
land inside the container, never in a host directory of the image's choosing. Also: no host fd and no host
cwd reach the container's processes (CVE-2024-21626 class), the inheritable capability set is empty (CVE-2022-24769),
and ``--user`` is looked up in the container's /etc/passwd whatever its symlinks say.

Each test makes a victim directory under /tmp with a sentinel file and checks afterwards that nothing new
appeared in it and the sentinel is unchanged.
"""

from __future__ import annotations

import os
import shutil
import struct
import uuid

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import EngineError
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import launcher
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.spec import ProcessSpec

from tests.fixtures.images import Dir, File, Symlink, TarEntry, busybox_config, busybox_rootfs

from .test_launcher import make_busybox_rootfs, make_spec, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                                reason="needs root and /bin/busybox")

SENTINEL = b"host data, not the container's\n"
CAP_NET_RAW = 13


@pytest.fixture
def victim():
    """A host directory a hostile image aims at: it must end the test exactly as it began."""
    path = f"/tmp/pycontainer-victim-{uuid.uuid4().hex[:12]}"
    os.mkdir(path, 0o755)
    with open(os.path.join(path, "sentinel"), "wb") as f:
        f.write(SENTINEL)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def assert_untouched(victim: str) -> None:
    assert sorted(os.listdir(victim)) == ["sentinel"], f"the engine wrote into the host directory {victim}"
    with open(os.path.join(victim, "sentinel"), "rb") as f:
        assert f.read() == SENTINEL


@pytest.fixture(scope="module")
def base_layer() -> list:
    return busybox_rootfs()


def push_image(oci_builder, base_layer, name: str, entries: list, **config) -> str:
    """busybox with a hostile layer on top (FROM busybox, as an attacker would)."""
    image_config = busybox_config()
    image_config["config"].update(config)
    ref, _built = oci_builder.push(f"hostile/{name}:v1", [base_layer, entries], image_config)
    return ref


def run_ok(cli, *args: str) -> str:
    proc = cli("run", "--rm", "--network", "none", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- /etc and its files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["oldroot", "absolute", "relative"])
def test_symlinked_etc_cannot_make_the_engine_write_on_the_host(cli, oci_builder, base_layer, victim, how):
    target = {"oldroot": "/dev/.oldroot" + victim, "absolute": victim,
              "relative": "../../../../../../../.." + victim}[how]
    image = push_image(oci_builder, base_layer, f"etc-{how}", [Symlink("etc", target)])
    out = run_ok(cli, "--hostname", "hostile", image, "sh", "-c", "cat /etc/hostname; echo ok")
    assert out.split() == ["hostile", "ok"]
    assert_untouched(victim)
    # exec into the running container: its set-up touches the same paths
    cli("run", "-d", "--name", f"etc-{how}", "--network", "none", image, "sleep", "300", check=True)
    try:
        assert cli("exec", f"etc-{how}", "cat", "/etc/hostname", check=True).stdout.strip()
        assert cli("exec", "-u", "65534", f"etc-{how}", "id", "-u", check=True).stdout.strip() == "65534"
    finally:
        cli("rm", "-f", f"etc-{how}", check=True)
    assert_untouched(victim)


def test_symlinked_etc_files_are_replaced_inside_the_container(cli, oci_builder, base_layer, victim):
    entries = [Symlink("etc/hosts", f"/dev/.oldroot{victim}/hosts"),
               Symlink("etc/resolv.conf", f"/dev/.oldroot{victim}/sentinel"),
               Symlink("etc/hostname", f"../../../../dev/.oldroot{victim}/hostname")]
    image = push_image(oci_builder, base_layer, "etc-files", entries)
    out = run_ok(cli, "--hostname", "hostile", "--add-host", "peer:10.1.2.3", image,
                 "sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf")
    assert "hostile" in out and "10.1.2.3\tpeer" in out and "nameserver" in out
    assert_untouched(victim)


# --- devices, --init, working directory -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["oldroot", "absolute"])
def test_device_target_under_a_symlink_stays_inside(cli, oci_builder, base_layer, victim, how):
    target = "/dev/.oldroot" + victim if how == "oldroot" else victim
    image = push_image(oci_builder, base_layer, f"dev-{how}", [Symlink("dd", target)])
    out = run_ok(cli, "--device", "/dev/null:/dd/null", image, "sh", "-c", "echo x > /dd/null && echo ok")
    assert out.split() == ["ok"]
    assert_untouched(victim)


@pytest.mark.skipif(not os.path.exists("/usr/bin/tini-static"), reason="--init needs tini-static")
def test_init_binary_target_under_a_symlink_stays_inside(cli, oci_builder, base_layer, victim):
    image = push_image(oci_builder, base_layer, "init", [Symlink("sbin", "/dev/.oldroot" + victim)])
    assert run_ok(cli, "--init", image, "echo", "ok").split() == ["ok"]
    assert_untouched(victim)


@pytest.mark.parametrize("how", ["oldroot", "absolute", "relative"])
def test_workdir_under_a_symlink_is_created_inside(cli, oci_builder, base_layer, victim, how):
    target = {"oldroot": "/dev/.oldroot" + victim, "absolute": victim,
              "relative": "../../../../../../.." + victim}[how]
    image = push_image(oci_builder, base_layer, f"wd-{how}", [Symlink("w", target)], WorkingDir="/w/sub")
    out = run_ok(cli, image, "sh", "-c", "ls; pwd").split()
    assert len(out) == 1 and out[0].endswith("/sub"), out  # an empty directory, not the host's (pwd: where /w led)
    cli("run", "-d", "--name", f"wd-{how}", "--network", "none", image, "sleep", "300", check=True)
    try:
        out = cli("exec", "-w", "/w", f"wd-{how}", "ls", check=True).stdout
        assert out.split() == ["sub"]
    finally:
        cli("rm", "-f", f"wd-{how}", check=True)
    assert_untouched(victim)


# --- fds and cwd (CVE-2024-21626 class) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lower(tmp_path_factory) -> str:
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox-rootfs") / "layer"))


def test_pid1_has_only_stdio_and_a_cwd_inside(lower, tmp_path, victim):
    held = os.open(victim, os.O_RDONLY | os.O_DIRECTORY)  # a host directory the launching process holds
    try:
        code, out = run(make_spec(lower, tmp_path, ["sh", "-c", "ls /proc/1/fd; readlink /proc/1/cwd"]))
    finally:
        os.close(held)
    assert code == 0, out
    assert out.split() == ["0", "1", "2", "/"]


def test_cwd_through_a_leaked_fd_is_refused(lower, tmp_path, victim):
    held = os.open(victim, os.O_RDONLY | os.O_DIRECTORY)  # open in the container's PID 1 until exec
    try:
        spec = make_spec(lower, tmp_path, ["ls"], cwd=f"/proc/self/fd/{held}")
        try:
            code, out = run(spec)
        except EngineError:
            code, out = 125, ""
        finally:
            launcher.cleanup(spec)
    finally:
        os.close(held)
    assert "sentinel" not in out
    assert code != 0


def test_exec_cwd_through_a_leaked_fd_is_refused(lower, tmp_path, victim):
    spec = make_spec(lower, tmp_path, ["sleep", "30"])
    proc = launcher.start(spec, None, 2, 2)
    held = os.open(victim, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r, w = os.pipe()
        try:
            ex = launcher.exec_in(spec, proc.pid, ProcessSpec(args=["ls"], env=["PATH=/bin"],
                                                              cwd=f"/proc/self/fd/{held}"), None, w, w)
        except EngineError:
            ex = None
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        if ex is not None:
            launcher.wait(ex)
        assert ex is None and "sentinel" not in out, out
        r, w = os.pipe()
        ex = launcher.exec_in(spec, proc.pid, ProcessSpec(args=["sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/cwd"],
                                                          env=["PATH=/bin"], cwd="/tmp"), None, w, w)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        assert launcher.wait(ex) == 0, out
        assert out.split() == ["0", "1", "2", "/tmp"]
    finally:
        os.close(held)
        os.kill(proc.pid, 9)
        launcher.wait(proc)
        launcher.cleanup(spec)


# --- capabilities (CVE-2022-24769) ---------------------------------------------------------------------------


def _capinh(out: str) -> int:
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith("CapInh:")), 16)


def test_inheritable_capabilities_are_empty_for_run_and_exec(cli, busybox_image):
    assert _capinh(run_ok(cli, busybox_image, "cat", "/proc/self/status")) == 0
    assert _capinh(run_ok(cli, "--cap-add", "NET_ADMIN", "-u", "1000", busybox_image, "cat", "/proc/self/status")) == 0
    cli("run", "-d", "--name", "capinh", "--network", "none", busybox_image, "sleep", "300", check=True)
    try:
        assert _capinh(cli("exec", "capinh", "cat", "/proc/self/status", check=True).stdout) == 0
        assert _capinh(cli("exec", "--privileged", "capinh", "cat", "/proc/self/status", check=True).stdout) == 0
    finally:
        cli("rm", "-f", "capinh", check=True)


def _file_caps(permitted: int, inheritable: int, effective: bool) -> bytes:
    """A VFS_CAP_REVISION_2 ``security.capability`` value."""
    return struct.pack("<IIIII", 0x02000000 | int(effective), permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       permitted >> 32, inheritable >> 32)


def test_inheritable_file_capability_gives_a_user_nothing(cli, oci_builder, base_layer):
    # A busybox copy with cap_net_raw+ei: a process whose inheritable set holds NET_RAW gets it by exec'ing it.
    entries = [Dir("opt"), TarEntry("opt/busybox", "file", mode=0o755, source="/bin/busybox",
                                    xattrs={"security.capability": _file_caps(0, 1 << CAP_NET_RAW, True)})]
    image = push_image(oci_builder, base_layer, "filecaps", entries)
    probe = "/opt/busybox grep -E '^Cap(Inh|Prm|Eff)' /proc/self/status"
    no_caps = "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000"
    for user in ("1000", "65534:65534"):
        out = run_ok(cli, "-u", user, image, "sh", "-c", probe)
        assert no_caps in out, out
    cli("run", "-d", "--name", "filecaps", "--network", "none", image, "sleep", "300", check=True)
    try:
        out = cli("exec", "-u", "1000", "filecaps", "sh", "-c", probe, check=True).stdout
        assert no_caps in out, out
    finally:
        cli("rm", "-f", "filecaps", check=True)
    # The exploit was real: the unpacked layer carries the file capability.
    found = [os.path.join(d, "busybox") for d, _dirs, files in os.walk(cli.root)
             if d.endswith("/opt") and "busybox" in files]
    assert found and all(os.getxattr(p, "security.capability") == _file_caps(0, 1 << CAP_NET_RAW, True)
                         for p in found)


# --- --user lookups ------------------------------------------------------------------------------------------


@pytest.fixture
def host_passwd():
    """A host directory holding a passwd file that names 'mallory' with a uid only the host knows."""
    path = f"/tmp/pycontainer-hostetc-{uuid.uuid4().hex[:12]}"
    os.mkdir(path)
    with open(os.path.join(path, "passwd"), "w") as f:
        f.write("mallory:x:4242:4242::/host-home:/bin/sh\n")
    with open(os.path.join(path, "group"), "w") as f:
        f.write("mallory:x:4242:\n")
    yield path
    shutil.rmtree(path)


def _inside(host_passwd: str) -> list:
    """The container's own copy of the host directory's path, naming mallory with uid 1111."""
    rel = host_passwd.lstrip("/")
    return [Dir("tmp"), Dir(rel), File(rel + "/passwd", "mallory:x:1111:1111::/inside:/bin/sh\n"),
            File(rel + "/group", "mallory:x:1111:\n")]


def _whoami(cli, *args: str):
    return cli(*args, "sh", "-c", "echo $(id -u) $(id -g) $HOME")


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_user_lookup_through_a_symlinked_etc_stays_inside_the_root(cli, oci_builder, base_layer, host_passwd, how):
    target = host_passwd if how == "absolute" else "../../../../../.." + host_passwd
    image = push_image(oci_builder, base_layer, f"user-{how}", [*_inside(host_passwd), Symlink("etc", target)])
    proc = _whoami(cli, "run", "--rm", "--network", "none", "-u", "mallory", image)
    assert (proc.returncode, proc.stdout.strip()) == (0, "1111 1111 /inside"), proc.stderr
    cli("run", "-d", "--name", f"user-{how}", "--network", "none", image, "sleep", "300", check=True)
    try:
        proc = _whoami(cli, "exec", "-u", "mallory", f"user-{how}")
        assert (proc.returncode, proc.stdout.strip()) == (0, "1111 1111 /inside"), proc.stderr
    finally:
        cli("rm", "-f", f"user-{how}", check=True)


def test_user_lookup_never_follows_proc_magic_links(cli, oci_builder, base_layer, host_passwd):
    # Read on the host, /proc/1/root is the host's root: the host's passwd would name mallory 4242.
    image = push_image(oci_builder, base_layer, "user-proc-etc", [Symlink("etc", "/proc/1/root" + host_passwd)])
    proc = _whoami(cli, "run", "--rm", "--network", "none", "-u", "mallory", image)
    assert proc.returncode != 0 and "4242" not in proc.stdout, proc.stdout
    assert "unable to find user mallory" in proc.stderr
    image = push_image(oci_builder, base_layer, "user-proc-passwd",
                       [Symlink("etc/passwd", "/proc/1/root" + host_passwd + "/passwd")])
    proc = _whoami(cli, "run", "--rm", "--network", "none", "-u", "mallory", image)
    assert proc.returncode != 0 and "unable to find user mallory" in proc.stderr, proc.stdout
    cli("run", "-d", "--name", "user-proc", "--network", "none", image, "sleep", "300", check=True)
    try:
        proc = _whoami(cli, "exec", "-u", "mallory", "user-proc")
        assert proc.returncode != 0 and "4242" not in proc.stdout, proc.stdout
    finally:
        cli("rm", "-f", "user-proc", check=True)


def test_symlinked_passwd_to_a_host_file_is_read_inside(cli, oci_builder, base_layer, host_passwd):
    entries = [*_inside(host_passwd), Symlink("etc/passwd", "../../../.." + host_passwd + "/passwd")]
    image = push_image(oci_builder, base_layer, "user-passwd", entries)
    out = run_ok(cli, "-u", "mallory", image, "id", "-u")
    assert out.strip() == "1111"
