"""Isolation through the launcher against the real kernel: cgroups (limits, freeze, stats, OOM, removal),
seccomp, capabilities, no-new-privileges, rlimits, devices, --init, host namespaces, exec_in, terminals."""

from __future__ import annotations

import os
import pty
import resource
import threading

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import CommandNotFound, InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import cgroups
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig, Ulimit
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import launcher
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.isolation import apply_host_config
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.spec import ProcessSpec

from .test_launcher import DOCKER_DEFAULT_CAPS, make_busybox_rootfs, make_spec, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                                reason="needs root and /bin/busybox")


@pytest.fixture(scope="module")
def lower(tmp_path_factory) -> str:
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox-iso") / "layer"))


def spec_for(lower, tmp_path, script: str, hostname: str = "testbox", **host):
    spec = make_spec(lower, tmp_path, ["sh", "-c", script], hostname=hostname)
    apply_host_config(spec, HostConfig(**host))
    return spec


def status_field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {out!r}")


def test_default_isolation_caps_seccomp(lower, tmp_path):
    code, out = run(spec_for(lower, tmp_path, "cat /proc/self/status"))
    assert code == 0, out
    assert int(status_field(out, "CapEff"), 16) == DOCKER_DEFAULT_CAPS
    assert int(status_field(out, "CapBnd"), 16) == DOCKER_DEFAULT_CAPS
    assert status_field(out, "Seccomp") == "2"
    assert status_field(out, "NoNewPrivs") == "0"


def test_seccomp_refuses_namespaces_and_keyring_without_cap_sys_admin(lower, tmp_path):
    _code, out = run(spec_for(lower, tmp_path, "unshare -m true; echo rc=$?; chroot / true; echo chroot=$?"))
    assert "rc=1" in out and "Operation not permitted" in out, out
    assert "chroot=0" in out  # CAP_SYS_CHROOT is a default capability: chroot is allowed
    _code, out = run(spec_for(lower, tmp_path, "unshare -m true; echo rc=$?", cap_add=["SYS_ADMIN"]))
    assert "rc=0" in out, out
    _code, out = run(spec_for(lower, tmp_path, "chroot / true; echo chroot=$?", cap_drop=["SYS_CHROOT"]))
    assert "chroot=1" in out, out


def test_cap_drop_all_and_cap_add(lower, tmp_path):
    _code, out = run(spec_for(lower, tmp_path, "cat /proc/self/status", cap_drop=["ALL"]))
    assert int(status_field(out, "CapEff"), 16) == 0 and int(status_field(out, "CapBnd"), 16) == 0
    _code, out = run(spec_for(lower, tmp_path, "cat /proc/self/status", cap_drop=["ALL"], cap_add=["NET_ADMIN"]))
    assert int(status_field(out, "CapEff"), 16) == 1 << 12
    _code, out = run(spec_for(lower, tmp_path, "cat /proc/self/status", cap_drop=["chown"]))
    assert int(status_field(out, "CapEff"), 16) == DOCKER_DEFAULT_CAPS & ~1


def test_unknown_capability_is_refused(lower, tmp_path):
    with pytest.raises(InvalidArgument):
        spec_for(lower, tmp_path, "true", cap_add=["NOT_A_CAP"])


def test_privileged_lifts_restrictions(lower, tmp_path):
    script = ("cat /proc/self/status; mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted;"
              " head -c 1 /proc/kcore | wc -c; echo x > /proc/sys/kernel/domainname && echo procsys-rw; ls /dev")
    code, out = run(spec_for(lower, tmp_path, script, privileged=True))
    assert code == 0, out
    with open("/proc/self/status") as f:
        host_bounding = int(status_field(f.read(), "CapBnd"), 16)  # every capability this host grants
    assert int(status_field(out, "CapEff"), 16) == host_bounding
    assert status_field(out, "Seccomp") == "0"
    assert "mounted" in out and "procsys-rw" in out
    if os.path.exists("/proc/kcore"):  # (kernels without CONFIG_PROC_KCORE have none)
        assert "\n1\n" in out  # /proc/kcore is not masked
    assert "loop0" in out or "vda" in out or "sda" in out or "nvme0" in out or len(out.split()) > 20


def test_no_new_privileges_and_unconfined(lower, tmp_path):
    _code, out = run(spec_for(lower, tmp_path, "cat /proc/self/status",
                              security_opt=["no-new-privileges", "seccomp=unconfined"]))
    assert status_field(out, "NoNewPrivs") == "1"
    assert status_field(out, "Seccomp") == "0"


def test_custom_seccomp_profile(lower, tmp_path):
    import json

    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    _code, out = run(spec_for(lower, tmp_path, "mkdir /x; echo rc=$?", security_opt=[f"seccomp={profile}"]))
    assert "Permission denied" in out and "rc=1" in out, out


def test_ulimits_are_set_and_clamped(lower, tmp_path):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code, out = run(spec_for(lower, tmp_path, "ulimit -n; ulimit -Hn",
                             ulimits=[Ulimit("nofile", 1000, 1500)]))
    assert out.split() == ["1000", "1500"], out
    code, out = run(spec_for(lower, tmp_path, "ulimit -n; ulimit -Hn",
                             ulimits=[Ulimit("nofile", 10_000_000, 10_000_000)]))
    assert code == 0, out
    assert out.split() == [str(hard), str(hard)]


def test_devices_and_device_cgroup(lower, tmp_path):
    _code, out = run(spec_for(lower, tmp_path,
                              "echo hi > /dev/mynull && echo ok; mknod /dev/blk b 7 0; head -c 1 /dev/blk; echo rc=$?",
                              devices=["/dev/null:/dev/mynull:rw"]))
    assert "ok" in out, out
    if cgroups.backend().name != "v2":
        assert "Operation not permitted" in out and "rc=1" in out, out


def test_init_reaps_as_pid1(lower, tmp_path):
    code, out = run(spec_for(lower, tmp_path, "cat /proc/1/comm; echo $$", init=True))
    assert code == 0, out
    comm, mypid = out.split()
    assert comm == "docker-init" and mypid != "1"


def test_host_namespaces(lower, tmp_path):
    script = (f"readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname; "
              f"test -d /proc/{os.getpid()} && echo seeshost")
    _code, out = run(spec_for(lower, tmp_path, script, pid_mode="host", ipc_mode="host", uts_mode="host"))
    assert os.readlink("/proc/self/ns/ipc") in out and os.readlink("/proc/self/ns/uts") in out
    assert os.uname().nodename in out and "seeshost" in out
    _code, out = run(spec_for(lower, tmp_path, script))
    assert os.readlink("/proc/self/ns/ipc") not in out and "seeshost" not in out


def test_cgroup_limits_stats_freeze_and_removal(lower, tmp_path):
    spec = spec_for(lower, tmp_path, "cat /proc/self/cgroup; exec sleep 30",
                    memory=64 << 20, nano_cpus=500_000_000, pids_limit=50, cpu_shares=512, cpuset_cpus="0")
    r, w = os.pipe()
    proc = launcher.start(spec, None, w, w)
    os.close(w)
    cg = cgroups.container_cgroup(spec.id, spec.cgroup)
    try:
        assert proc.pid in cg.pids()
        stats = cg.stats()
        assert stats["memory_limit"] == 64 << 20 and stats["pids_limit"] == 50 and stats["pids_current"] >= 1
        assert "cpu_usage_ns" in stats
        if cgroups.backend().name != "v2":
            paths = {p.split("/")[4]: p for p in cg.paths()}  # /sys/fs/cgroup/<controller>/...
            with open(f"{paths['cpu']}/cpu.cfs_quota_us") as f:
                assert f.read().strip() == "50000"
            with open(f"{paths['cpu']}/cpu.shares") as f:
                assert f.read().strip() == "512"
            with open(f"{paths['cpuset']}/cpuset.cpus") as f:
                assert f.read().strip() == "0"
        cg.freeze()
        assert cg.is_frozen()
        with open(f"/proc/{proc.pid}/stat") as f:
            assert f.read().split(") ")[1][0] in "DS"  # frozen tasks sleep
        cg.thaw()
        assert not cg.is_frozen()
    finally:
        os.kill(proc.pid, 9)
        launcher.wait(proc)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        launcher.cleanup(spec)
    assert not cg.exists()
    # the cgroup namespace: the container sees its own cgroup as the root
    assert all(line.endswith(":/") for line in out.splitlines()), out


def test_limits_visible_from_inside(lower, tmp_path):
    if cgroups.backend().name == "v2":
        script = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max"
        expected = ["33554432", "50000", "100000", "7"]
    else:
        script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                  "/sys/fs/cgroup/pids/pids.max; echo 1 > /sys/fs/cgroup/pids/pids.max")
        expected = ["33554432", "50000", "7"]
    _code, out = run(spec_for(lower, tmp_path, script, memory=32 << 20, nano_cpus=500_000_000, pids_limit=7))
    assert out.split()[:len(expected)] == expected, out
    assert "Read-only file system" in out or cgroups.backend().name == "v2"


def test_pids_limit_enforced(lower, tmp_path):
    _code, out = run(spec_for(lower, tmp_path, "for i in $(seq 20); do sleep 5 & done; wait; echo done",
                              pids_limit=5))
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out


def test_oom_kill_detected(lower, tmp_path):
    spec = spec_for(lower, tmp_path, "exec tail /dev/zero", memory=16 << 20, memory_swap=16 << 20)
    proc = launcher.start(spec, None, 2, 2)
    code = launcher.wait(proc)
    launcher.cleanup(spec)
    assert code == 137 and proc.oom_killed


def test_cleanup_kills_leftovers_of_host_pid_container(lower, tmp_path):
    spec = spec_for(lower, tmp_path, "sleep 60 >/dev/null 2>&1 & echo started", pid_mode="host")
    code, out = run(spec)  # run() cleans up: the orphaned sleep is killed with the cgroup
    assert code == 0 and "started" in out


def test_exec_in_joins_namespaces_cgroup_and_filter(lower, tmp_path):
    spec = spec_for(lower, tmp_path, "sleep 30", hostname="exechost", cap_drop=["NET_RAW"])
    proc = launcher.start(spec, None, 2, 2)
    try:
        r, w = os.pipe()
        ex = launcher.exec_in(spec, proc.pid, ProcessSpec(args=["sh", "-c", "hostname; cat /proc/self/status; "
                                                                "cat /proc/self/cgroup; echo $$; id -u"],
                                                          env=["PATH=/bin"], uid=1000, gid=1000), None, w, w)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        assert launcher.wait(ex) == 0, out
        assert out.startswith("exechost\n")
        assert status_field(out, "Seccomp") == "2"
        assert int(status_field(out, "CapBnd"), 16) == DOCKER_DEFAULT_CAPS & ~(1 << 13)
        assert int(status_field(out, "CapEff"), 16) == 0  # uid 1000
        assert out.split()[-1] == "1000"
        with pytest.raises(CommandNotFound):
            launcher.exec_in(spec, proc.pid, ProcessSpec(args=["nonexistent"], env=["PATH=/bin"]), None, 2, 2)
    finally:
        os.kill(proc.pid, 9)
        launcher.wait(proc)
        launcher.cleanup(spec)


def test_terminal_becomes_controlling_tty(lower, tmp_path):
    master, slave = pty.openpty()
    spec = spec_for(lower, tmp_path, "test -t 0 && echo tty; readlink /proc/self/fd/0; ps -o pid,tty")
    spec.process.terminal = True
    proc = launcher.start(spec, slave, slave, slave)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    t = threading.Thread(target=drain)
    t.start()
    code = launcher.wait(proc)
    t.join(timeout=10)
    os.close(master)
    launcher.cleanup(spec)
    out = b"".join(chunks).decode()
    assert code == 0 and "tty" in out and "/dev/pts/" in out, out
