"""The security probe suite: probes run inside containers started through the engine API, and the
assertions are the issue's: host PIDs invisible, mount refused, /proc/sys read-only, /proc/kcore empty,
Docker's CapEff, an empty CapInh, seccomp mode 2, host files unreachable, a host block device node made with
CAP_MKNOD unopenable; --privileged lifts these; --cap-drop ALL gives
CapEff 0; pids and memory limits enforced (OOM kill: 137); cpu/memory limits visible in the cgroup files.

The same probes also run under ``docker run --network none`` and must give equal results: the ``docker_peer``
fixture (tests/fixtures/docker_peer.py) installs Debian's docker.io and starts a dockerd of its own when needed.
"""

from __future__ import annotations

import os
import stat
import threading
import uuid

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.container.options import CreateOptions
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import cgroups
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig

from tests.fixtures import docker_peer as peer

DOCKER_DEFAULT_CAPEFF = "00000000a80425fb"

docker_peer = peer.docker_peer  # the session fixture, found by pytest under this name

# One shell script, one "probe=value" line per probe: the same script runs under both engines. The pid count is
# taken by a lone ls (sh + ls): a pipeline would race (grep may not be running yet when ls reads /proc).
PROBES = r"""
ls /proc > /tmp/proc.list; echo "pids=$(grep -cE '^[0-9]+$' /tmp/proc.list)"
seen=hidden; grep -qs "$HOSTCOMM" /proc/$HOSTPID/comm && seen=seen; echo "hostpid=$seen"
mkdir -p /mnt/probe; mount -t tmpfs none /mnt/probe 2>/dev/null && echo mount=allowed || echo mount=refused
(echo probe > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=rw || echo procsys=ro
if [ -e /proc/kcore ]; then echo "kcore=$(head -c 4 /proc/kcore 2>/dev/null | wc -c)"; else echo kcore=absent; fi
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
echo "capinh=$(grep CapInh /proc/self/status | cut -f2)"
echo "seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)"
test -e "$HOSTFILE" && echo hostfile=reachable || echo hostfile=unreachable
test -e /dev/.oldroot && echo oldroot=present || echo oldroot=absent
mknod /tmp/probe-blk b $BLKMAJOR $BLKMINOR 2>/dev/null && echo mknod=allowed || echo mknod=refused
(exec 3</tmp/probe-blk) 2>/dev/null && echo blockdev=open || echo blockdev=denied
"""


def host_block_device(workdir: str) -> tuple[int, int]:
    """A block device of the host that root can open here (the control for ``blockdev=denied``): the disk
    holding / when this host lets root open it (some VMs do not), else another disk or a loop device."""
    root = os.stat("/").st_dev
    candidates = [(os.major(root), os.minor(root))] if os.major(root) else []
    candidates += [tuple(int(x) for x in e.split(":")) for e in sorted(os.listdir("/sys/dev/block"))]
    node = os.path.join(workdir, "control-blk")
    for major, minor in candidates:
        os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
        try:
            os.close(os.open(node, os.O_RDONLY | os.O_NONBLOCK))
            return major, minor
        except OSError:
            continue
        finally:
            os.unlink(node)
    pytest.fail("no block device of this host opens even for root: the device probe would prove nothing")


def probe_env() -> tuple[str, list[str]]:
    """A host file the container must not reach, and the env telling the probes what to look for."""
    path = f"/tmp/pycontainer-probe-{uuid.uuid4().hex}"
    with open(path, "w") as f:
        f.write("host secret\n")
    with open(f"/proc/{os.getpid()}/comm") as f:
        comm = f.read().strip()
    major, minor = host_block_device("/tmp")
    return path, [f"HOSTFILE={path}", f"HOSTPID={os.getpid()}", f"HOSTCOMM={comm}", f"BLKMAJOR={major}",
                  f"BLKMINOR={minor}"]


def run_in_container(engine: Engine, image: str, argv: list[str], env: list[str] | None = None,
                     **host) -> tuple[int, str]:
    """Create a container through the engine API, run it with stdout+stderr on a pipe, remove it."""
    from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import launcher

    containers = engine.containers
    record = containers.create(CreateOptions(image=image, command=argv, env=env or [],
                                             host_config=HostConfig(**host)))
    r, w = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        with os.fdopen(r, "rb") as pipe:
            while data := pipe.read(65536):
                chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        try:
            process, spec = containers.launch(record, None, w, w)  # the monitor's start path
            os.close(w)
            w = -1
            code = launcher.wait(process)
            containers.record_exit(record, spec, code, oom_killed=process.oom_killed)
        finally:
            if w >= 0:
                os.close(w)
            reader.join()
    finally:
        containers.remove(record.id, force=True)
    return code, b"".join(chunks).decode(errors="replace")


def parse(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line and " " not in line.split("=")[0])


@pytest.fixture
def engine(engine_config) -> Engine:
    return Engine(engine_config)


@pytest.fixture
def host_file():
    path, env = probe_env()
    yield env
    os.unlink(path)


def run_probes(engine, image, env, **host) -> dict[str, str]:
    code, out = run_in_container(engine, image, ["sh", "-c", PROBES], env=env, **host)
    assert code == 0, out
    return parse(out)


def test_default_container_is_confined(engine, busybox_image, host_file):
    p = run_probes(engine, busybox_image, host_file)
    assert int(p["pids"]) < 10 and p["hostpid"] == "hidden"
    assert p["mount"] == "refused"
    assert p["procsys"] == "ro"
    assert p["kcore"] in ("0", "absent")  # masked by /dev/null; absent on kernels without CONFIG_PROC_KCORE
    if os.path.exists("/proc/kcore"):
        assert p["kcore"] == "0"
    assert p["capeff"] == DOCKER_DEFAULT_CAPEFF
    assert p["capinh"] == "0000000000000000"  # Docker since CVE-2022-24769
    assert p["seccomp"] == "2"
    assert p["hostfile"] == "unreachable" and p["oldroot"] == "absent"
    # CAP_MKNOD makes the node (Docker's "b *:* m"), the device cgroup (v1) or BPF program (v2) refuses it
    assert p["mknod"] == "allowed" and p["blockdev"] == "denied"


def test_privileged_lifts_confinement(engine, busybox_image, host_file):
    p = run_probes(engine, busybox_image, host_file, privileged=True)
    with open("/proc/self/status") as f:
        bounding = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    assert p["capeff"] == bounding  # every capability the host has
    assert p["capinh"] == "0000000000000000"
    assert p["seccomp"] == "0"
    assert p["mount"] == "allowed"
    assert p["procsys"] == "rw"
    if os.path.exists("/proc/kcore"):
        assert p["kcore"] == "4"
    # still its own pid namespace and root filesystem
    assert p["hostpid"] == "hidden" and p["hostfile"] == "unreachable"
    assert p["blockdev"] == "open"  # every host device


def test_cap_drop_all_gives_no_capabilities(engine, busybox_image, host_file):
    p = run_probes(engine, busybox_image, host_file, cap_drop=["ALL"])
    assert p["capeff"] == p["capinh"] == "0000000000000000"
    assert p["mount"] == "refused" and p["seccomp"] == "2"
    assert p["mknod"] == "refused" and p["blockdev"] == "denied"


def test_pids_limit_enforced(engine, busybox_image):
    script = ("echo pids.max=$(cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max "
              "2>/dev/null); for i in $(seq 30); do sleep 3 & done")
    _code, out = run_in_container(engine, busybox_image, ["sh", "-c", script], pids_limit=8)
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out
    assert parse(out).get("pids.max") == "8"


def test_memory_limit_oom_kill_exit_137(engine, busybox_image):
    code, out = run_in_container(engine, busybox_image, ["tail", "/dev/zero"], memory=16 << 20,
                                 memory_swap=16 << 20)
    assert code == 137, out


def test_cpu_and_memory_limits_visible_in_cgroup_files(engine, busybox_image):
    if cgroups.backend().name == "v2":
        script = "echo mem=$(cat /sys/fs/cgroup/memory.max); echo cpu=$(cut -d' ' -f1 /sys/fs/cgroup/cpu.max)"
    else:
        script = ("echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
                  "echo cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)")
    code, out = run_in_container(engine, busybox_image, ["sh", "-c", script], memory=48 << 20,
                                 nano_cpus=250_000_000)
    p = parse(out)
    assert code == 0 and p["mem"] == str(48 << 20) and p["cpu"] == "25000", out


@pytest.mark.parametrize("flags,host", [([], {}), (["--privileged"], {"privileged": True}),
                                        (["--cap-drop", "ALL"], {"cap_drop": ["ALL"]})])
def test_same_results_as_docker(engine, busybox_image, host_file, docker_peer, flags, host):
    ours = run_probes(engine, busybox_image, host_file, network_mode="none", **host)  # as the peer's
    if flags == ["--privileged"]:
        flags = peer.privileged_flags()  # Docker 20.10's --privileged fails where the bounding set is short
        # "Every capability" is every one the host has for us (test_privileged_lifts_confinement) and every one
        # it knows for the peer: compare on what the peer knows (the rest is reported, not hidden).
        known = docker_peer.capability_mask(busybox_image)
        ours_caps = int(ours["capeff"], 16)
        assert ours_caps & known == known, f"the peer grants {known:x}, we grant {ours_caps:x}"
        ours["capeff"] = f"{ours_caps & known:016x}"
    docker = docker_peer.docker("run", "--rm", "--network", "none", *[f"-e{e}" for e in host_file], *flags,
                                busybox_image, "sh", "-c", PROBES)
    assert docker.returncode == 0, docker.stderr
    theirs = parse(docker.stdout)
    assert ours == theirs
