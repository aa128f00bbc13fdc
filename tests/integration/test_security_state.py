"""State on disk against a local attacker: an unprivileged host user (setpriv to nobody) must not reach what
pulled images and containers put under the engine root (setuid-root binaries, device nodes), whatever the
umask of whoever ran the engine and however the root was made; the monitor's socket serves root only and
trusts no container ID; the monitor never imports code from the caller's working directory."""

from __future__ import annotations

import glob
import json
import os
import stat
import subprocess

import pytest

from tests.fixtures.images import Dir, TarEntry, busybox_config, busybox_rootfs
from tests.integration.helpers import PYCONTAINER, Cli

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# nobody, but keeping CAP_DAC_OVERRIDE: it traverses 0700 directories and opens 0600 sockets.
NOBODY_DAC = [*NOBODY, "--inh-caps=+dac_override", "--ambient-caps=+dac_override"]


def as_nobody(*argv: str, caps: list[str] | None = None) -> subprocess.CompletedProcess:
    # Through a shell: setpriv resolves the program it runs before it drops to the new uid, so the attacker's
    # own process must be the one that looks the path up.
    return subprocess.run([*(caps or NOBODY), "/bin/sh", "-c", 'exec "$0" "$@"', *argv], capture_output=True,
                          cwd="/", timeout=60, check=False)


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def loose_root(path: str) -> str:
    """The engine root as `mkdir -p /var/lib/pycontainer` leaves it on a fresh host: 0755."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def state_dirs(root: str) -> list[str]:
    """Every directory of the layout that exists, down to the per-container and per-volume ones."""
    names = ("images", "containers", "volumes", "network", "events", "run", "lib")
    top = [root, *(os.path.join(root, d) for d in names)]
    images = [os.path.join(root, "images", d) for d in ("blobs", "layers", "tmp")]
    below = glob.glob(os.path.join(root, "containers", "?" * 64)) + glob.glob(os.path.join(root, "volumes", "*"))
    return [d for d in top + images + below if os.path.isdir(d)]


@pytest.fixture
def suid_image(oci_builder) -> str:
    """A hostile image: a copy of id(1), setuid root, as a layer can carry it."""
    suid_id = TarEntry("bin/suid-id", "file", mode=0o4755, uid=0, gid=0, source="/usr/bin/id")
    ref, _layout = oci_builder.push("statesec/suid:v1", [[Dir("bin"), suid_id]], {"config": {"Cmd": ["/bin/suid-id"]}})
    return ref


def test_other_users_cannot_run_a_setuid_root_binary_from_a_pulled_layer(cli, suid_image, engine_root):
    loose_root(engine_root)
    cli("pull", "-q", suid_image, check=True)
    [binary] = glob.glob(os.path.join(engine_root, "images", "layers", "*", "bin", "suid-id"))
    st = os.stat(binary)
    assert st.st_uid == 0 and st.st_mode & stat.S_ISUID  # the layer holds it as the image made it
    proc = as_nobody(binary)
    assert b"euid=0" not in proc.stdout, proc.stdout
    assert proc.returncode != 0 and b"Permission denied" in proc.stderr


def test_other_users_cannot_use_a_device_node_a_container_made_in_a_named_volume(cli, busybox_image, engine_root):
    loose_root(engine_root)
    cli("volume", "create", "devs", check=True)
    cli("run", "--rm", "--network", "none", "-v", "devs:/data", busybox_image,
        "sh", "-c", "mknod /data/zero c 1 5 && chmod 666 /data/zero", check=True)
    node = os.path.join(engine_root, "volumes", "devs", "_data", "zero")
    assert stat.S_ISCHR(os.stat(node).st_mode)  # the container did plant it
    proc = as_nobody("head", "-c", "4", node)
    assert proc.stdout == b"" and proc.returncode != 0 and b"Permission denied" in proc.stderr


def test_no_state_directory_is_listable_or_traversable_by_other_users(cli, busybox_image, engine_root):
    loose_root(engine_root)
    cli("volume", "create", "vv", check=True)
    cid = cli("run", "-d", "-v", "vv:/v", busybox_image, "sleep", "60", check=True).stdout.strip()
    try:
        dirs = state_dirs(engine_root)
        for name in ("images", "containers", "volumes", "network", "events", "run"):
            assert os.path.join(engine_root, name) in dirs
        assert os.path.join(engine_root, "containers", cid) in dirs
        assert {d: oct(mode(d)) for d in dirs} == {d: "0o700" for d in dirs}
        for d in dirs:
            listing = as_nobody("ls", d)
            assert listing.returncode != 0 and b"Permission denied" in listing.stderr, d
            traverse = as_nobody("stat", os.path.join(d, "."))
            assert traverse.returncode != 0 and b"Permission denied" in traverse.stderr, d
    finally:
        cli("rm", "-f", cid)


def _tree_modes(root: str) -> dict[str, str]:
    """Mode of every directory and of the monitor's socket, container IDs replaced by a placeholder."""
    modes = {}
    ids = [os.path.basename(p) for p in glob.glob(os.path.join(root, "containers", "?" * 64))]
    for dirpath, dirnames, filenames in os.walk(root):
        names = dirnames + [f for f in filenames if f == "monitor.sock"]
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if rel.split("/")[:2] == ["images", "layers"] and rel.count("/") > 2:
                continue  # the inside of a layer is the image's business
            for cid in ids:
                rel = rel.replace(cid, "<id>")
            modes[rel] = oct(mode(path))
    modes["."] = oct(mode(root))
    return modes


def test_umask_000_and_077_give_the_same_root_only_modes(busybox_image, tmp_path, registry):
    from tests.integration.helpers import write_engine_config

    os.chmod(tmp_path, 0o755)
    results = {}
    for umask in ("000", "077"):
        root = str(tmp_path / f"root{umask}")  # made by the engine itself
        cli = Cli(root=root, config=write_engine_config(str(tmp_path / f"engine{umask}.json"), registry.host))
        script = (f"umask {umask} && {' '.join(cli.argv())} volume create vv >/dev/null && "
                  f"{' '.join(cli.argv())} run -d --name keep -v vv:/v {busybox_image} sleep 60")
        proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=300, check=False)
        try:
            assert proc.returncode == 0, proc.stderr
            results[umask] = _tree_modes(root)
        finally:
            cli("rm", "-f", "keep")
            cli("volume", "rm", "vv")
    assert results["000"] == results["077"]
    state = [".", "images", "images/blobs", "images/layers", "images/tmp", "containers", "containers/<id>",
             "volumes", "volumes/vv", "network", "events", "run"]
    assert {k: results["000"].get(k) for k in state} == {k: "0o700" for k in state}
    assert results["000"]["volumes/vv/_data"] == "0o755"  # what the container sees stays Docker's
    assert results["000"]["run/monitor.sock"] == "0o600"


def test_a_root_made_by_an_older_version_is_tightened_at_open(cli, engine_root):
    loose_root(engine_root)
    old_layout = {"images": 0o711, "images/layers": 0o711, "images/blobs": 0o755, "volumes": 0o701,
                  "containers": 0o755, "run": 0o755, "events": 0o755, "network": 0o755}
    for rel, old_mode in old_layout.items():
        os.makedirs(os.path.join(engine_root, rel))
        os.chmod(os.path.join(engine_root, rel), old_mode)
    cli("ps", "-a", check=True)
    assert {rel: oct(mode(os.path.join(engine_root, rel))) for rel in [".", *old_layout]} == \
        {rel: "0o700" for rel in [".", *old_layout]}


def _monitor_request(sock_path: str, message: dict, caps: list[str] | None = None) -> dict:
    """One request on the monitor's socket, from a process of its own (as root, or as ``caps`` say)."""
    client = (
        "import json,socket,struct,sys\n"
        "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
        "p=sys.argv[2].encode()\n"
        "try: s.sendall(struct.pack('>cI',b'J',len(p))+p)\n"
        "except OSError: pass\n"
        "b=b''\n"
        "while len(b)<5 or len(b)<5+struct.unpack('>cI',b[:5])[1]:\n"
        "    c=s.recv(65536)\n"
        "    if not c: break\n"
        "    b+=c\n"
        "print(b[5:].decode() if len(b)>=5 else '{\"eof\": true}')\n"
    )
    argv = ["/usr/bin/python3", "-I", "-c", client, sock_path, json.dumps(message)]
    if caps is not None:
        proc = as_nobody(*argv, caps=caps)
    else:
        proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _running(cli: Cli, cid: str) -> bool:
    return json.loads(cli("inspect", cid, check=True).stdout)[0]["State"]["Running"]


def test_the_monitor_refuses_a_non_root_peer_even_one_that_can_reach_its_socket(cli, busybox_image, engine_root):
    cid = cli("run", "-d", "--network", "none", busybox_image, "sleep", "60", check=True).stdout.strip()
    try:
        sock_path = os.path.join(engine_root, "run", "monitor.sock")
        kill = {"op": "kill", "id": cid, "signal": 9}
        reply = _monitor_request(sock_path, kill, caps=NOBODY_DAC)
        assert reply.get("ok") is not True and "permission denied" in reply.get("error", ""), reply
        assert _running(cli, cid)
        assert _monitor_request(sock_path, {"op": "ping"})["ok"] is True  # root still is served
    finally:
        cli("rm", "-f", cid)


def test_the_monitor_acts_only_on_full_container_ids(cli, busybox_image, engine_root):
    cid = cli("run", "-d", "--network", "none", busybox_image, "sleep", "60", check=True).stdout.strip()
    try:
        sock_path = os.path.join(engine_root, "run", "monitor.sock")
        for bad in (f"{cid}/../{cid}", f"../containers/{cid}", cid[:12], cid.upper(), cid + "0", 7, None, ""):
            reply = _monitor_request(sock_path, {"op": "wait", "id": bad})
            assert reply.get("ok") is not True and reply.get("type") == "InvalidArgument", (bad, reply)
        reply = _monitor_request(sock_path, {"op": "pause", "id": f"{cid}/../{cid}"})
        assert reply.get("type") == "InvalidArgument", reply
        assert _running(cli, cid)
        assert json.loads(cli("inspect", cid, check=True).stdout)[0]["State"]["Paused"] is False
    finally:
        cli("rm", "-f", cid)


def test_the_monitor_does_not_import_modules_from_the_callers_cwd(cli, busybox_image, tmp_path):
    hostile = tmp_path / "hostile-cwd"
    hostile.mkdir()
    os.chmod(hostile, 0o777)  # a directory any local user can plant files in
    for module in ("json", "select", "selectors", "struct"):
        (hostile / f"{module}.py").write_text(
            "import os\n"
            f"open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'imported-{module}'), 'w').close()\n"
            "raise SystemExit('hostile module imported')\n")
    proc = subprocess.run([PYCONTAINER, "--root", cli.root, "--config", cli.config, "run", "--rm", "--network",
                           "none", busybox_image, "echo", "clean"],
                          cwd=hostile, capture_output=True, text=True, timeout=120, check=False)
    assert sorted(p.name for p in hostile.iterdir() if p.name.startswith("imported-")) == []
    assert proc.returncode == 0 and proc.stdout == "clean\n", proc.stderr


def test_a_container_still_runs_as_a_non_root_user_from_root_only_state(cli, oci_builder, engine_root):
    """Overlay lowerdirs, the volume and the container's /etc files are all under 0700 directories."""
    loose_root(engine_root)
    rootfs = busybox_rootfs()
    ref, _layout = oci_builder.push("statesec/bb:v1", [rootfs], busybox_config())
    cli("volume", "create", "data", check=True)
    proc = cli("run", "--rm", "--network", "none", "--user", "65534:65534", "-v", "data:/data", ref,
               "sh", "-c", "id -u && cat /etc/hostname >/dev/null && ls /bin/busybox && ls -ld /data", check=True)
    lines = proc.stdout.splitlines()
    assert lines[0] == "65534" and lines[1] == "/bin/busybox" and lines[2].startswith("drwxr-xr-x")
    assert mode(engine_root) == 0o700
