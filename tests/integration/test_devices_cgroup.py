"""Device access on cgroup v2, for real: the v2 backend attaches its BPF device program to a cgroup in this host's
cgroup2 mount (a hybrid host: systemd's empty /sys/fs/cgroup/unified), a root process with CAP_MKNOD is moved
in, and tries what an attacker in a container would: mknod + open a node of a host disk, /dev/kmsg.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import uuid

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import cgroups, libc
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups import detect
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.v2 import V2Backend
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.isolation import devices_for

UNIFIED, _V1 = detect.read_layout()
pytestmark = pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 hierarchy mounted on this host")

# The probe: wait for the go-ahead (the parent moves us into the cgroup first), then try each node.
PROBE = r"""
import json, os, sys
sys.stdin.readline()
out = {}
for name, kind, major, minor, flags in json.loads(sys.argv[1]):
    path = os.path.join(sys.argv[2], name)
    try:
        os.mknod(path, 0o600 | (0o060000 if kind == "b" else 0o020000), os.makedev(major, minor))
        out[name + ".mknod"] = "ok"
    except OSError as exc:
        out[name + ".mknod"] = exc.errno
    try:
        os.close(os.open(path, getattr(os, flags)))
        out[name] = "ok"
    except OSError as exc:
        out[name] = exc.errno
print(json.dumps(out))
"""


def openable(kind: str, major: int, minor: int, workdir: str) -> bool:
    """Whether this (unconfined) test process can open such a node: the control for every denial below."""
    path = os.path.join(workdir, f"control-{kind}-{major}-{minor}")
    os.mknod(path, 0o600 | (stat.S_IFBLK if kind == "b" else stat.S_IFCHR), os.makedev(major, minor))
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        return True
    except OSError:
        return False
    finally:
        os.unlink(path)


def host_block_device(workdir: str) -> tuple[int, int]:
    """A block device of the host that root can open outside any device program: the disk holding / when the
    host lets root open it (some VMs do not), else another disk or a loop device."""
    root = os.stat("/").st_dev
    candidates = [(os.major(root), os.minor(root))] if os.major(root) else []
    candidates += [tuple(int(x) for x in e.split(":")) for e in sorted(os.listdir("/sys/dev/block"))]
    for major, minor in candidates:
        if openable("b", major, minor, workdir):
            return major, minor
    pytest.fail("no block device of this host can be opened even without a device program: nothing to test")


KMSG = (1, 11)  # /dev/kmsg: a host char device outside Docker's allow-list (/dev/mem is often locked down)


def attempt(config: cgroups.CgroupConfig, nodes: list[tuple], workdir: str) -> dict:
    """Create the v2 cgroup with ``config``, run the probe inside it, destroy the cgroup; the probe's results."""
    cg = V2Backend(UNIFIED).container(f"devtest-{uuid.uuid4().hex[:12]}", config)
    cg.create()
    try:
        proc = subprocess.Popen([sys.executable, "-c", PROBE, json.dumps(nodes), workdir], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            cg.add(proc.pid)
        finally:
            out, _err = proc.communicate("go\n", timeout=60)
        assert proc.returncode == 0, out
        return json.loads(out)
    finally:
        cg.destroy()


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "nodes"
    path.mkdir()
    return str(path)


def test_default_rules_deny_host_devices_and_allow_dev_null(workdir):
    major, minor = host_block_device(workdir)
    assert openable("c", *KMSG, workdir)
    nodes = [("disk", "b", major, minor, "O_RDONLY"), ("kmsg", "c", *KMSG, "O_RDONLY"),
             ("null", "c", 1, 3, "O_RDWR"), ("zero", "c", 1, 5, "O_RDONLY")]
    got = attempt(cgroups.CgroupConfig(), nodes, workdir)
    # mknod is allowed for any node (Docker's "c *:* m", "b *:* m"); opening is what the rules decide
    assert got["disk.mknod"] == "ok" and got["kmsg.mknod"] == "ok"
    assert got["disk"] == errno.EPERM and got["kmsg"] == errno.EPERM
    assert got["null"] == "ok" and got["zero"] == "ok"


def test_device_flag_allows_its_node_with_its_access(workdir, tmp_path):
    major, minor = host_block_device(workdir)
    host_node = str(tmp_path / "hostdisk")
    os.mknod(host_node, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
    _nodes, rules = devices_for(HostConfig(devices=[f"{host_node}:/dev/xvda:r"]))  # what --device adds
    got = attempt(cgroups.CgroupConfig(device_rules=rules),
                  [("ro", "b", major, minor, "O_RDONLY"), ("rw", "b", major, minor, "O_RDWR")], workdir)
    assert got["ro"] == "ok"
    assert got["rw"] == errno.EPERM


def test_privileged_gets_every_device(workdir):
    major, minor = host_block_device(workdir)
    got = attempt(cgroups.CgroupConfig(device_rules=None), [("disk", "b", major, minor, "O_RDONLY")], workdir)
    assert got["disk"] == "ok"


def test_create_again_replaces_the_program():
    cg = V2Backend(UNIFIED).container(f"devtest-{uuid.uuid4().hex[:12]}", cgroups.CgroupConfig())
    cg.create()
    try:
        cg.create()  # idempotent: one program, not two
        fd = os.open(cg.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(libc.bpf_prog_query(fd, libc.BPF_CGROUP_DEVICE)) == 1
        finally:
            os.close(fd)
    finally:
        cg.destroy()


# End to end: a container started by the engine with the v2 backend on this host's cgroup2 mount (a pure-v2 host,
# as far as the engine can tell). Its process stays in the v1 root cgroups, which allow every device, so the BPF
# program attached at create is the only thing that can refuse.
BLOCK_PROBE = ("mknod /tmp/blk b $BLKMAJOR $BLKMINOR && echo mknod=ok; (exec 3</tmp/blk) 2>/dev/null && echo blk=open "
               "|| echo blk=denied; (exec 3<>/dev/null) && echo null=open")


@pytest.fixture
def v2_engine(engine_config, monkeypatch):
    from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine

    monkeypatch.setattr(cgroups, "_BACKEND", V2Backend(UNIFIED))
    return Engine(engine_config)


@pytest.mark.parametrize("privileged", [False, True])
def test_container_on_v2_backend_gets_the_program(v2_engine, busybox_image, workdir, privileged):
    from tests.integration.test_security_probes import run_in_container

    major, minor = host_block_device(workdir)
    code, out = run_in_container(v2_engine, busybox_image, ["sh", "-c", BLOCK_PROBE],
                                 env=[f"BLKMAJOR={major}", f"BLKMINOR={minor}"], privileged=privileged)
    assert code == 0 and "mknod=ok" in out and "null=open" in out, out
    assert ("blk=open" if privileged else "blk=denied") in out, out
