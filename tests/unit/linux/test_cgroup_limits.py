"""The one limits interface: CgroupConfig -> CgroupLimits -> each backend's files, for create, update and the
cgroups role's parent cgroup. The kernel's cgroup tree is faked by plain files in tmp_path (a plain file keeps
what is written last; the order of writes is recorded where it matters)."""

from __future__ import annotations

import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups import base, parent
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.base import CgroupError
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.limits import (
    CgroupConfig,
    CgroupLimits,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.v1 import V1Backend
from ansible_collections.pycontainer.engine.plugins.module_utils.linux.cgroups.v2 import V2Backend

MIB = 1 << 20
# The interface files the kernel makes in a new cgroup (a write never creates a file).
V1_FILES = {"memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"), "pids": ("pids.max",),
            "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"), "cpuset": ("cpuset.cpus",)}
V2_FILES = ("memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "cpuset.cpus", "pids.max")


def kernel_files(cg_dir, names) -> None:
    cg_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (cg_dir / name).touch()


@pytest.fixture
def writes(monkeypatch):
    """Every cgroup write, in order, as (file name, value); the write itself still happens, replacing the plain
    file's text as the kernel replaces the value."""
    log: list[tuple[str, str]] = []
    real = base.write

    def record(path: str, value) -> None:
        log.append((path.rsplit("/", 1)[1], str(value)))
        os.truncate(path, 0)
        real(path, value)
    monkeypatch.setattr(base, "write", record)
    return log


def v1_container(tmp_path, controllers=("memory", "cpu", "pids"), **config):
    backend = V1Backend({c: str(tmp_path / c) for c in controllers})
    cg = backend.container("c1", CgroupConfig(device_rules=None, **config))
    for c, d in cg.dirs.items():
        kernel_files(tmp_path / d, V1_FILES[c])
    if "memory" in controllers:
        mem = tmp_path / cg.dirs["memory"]
        (mem / "memory.limit_in_bytes").write_text(str(0x7FFFFFFFFFFFF000))
        (mem / "memory.memsw.limit_in_bytes").write_text(str(0x7FFFFFFFFFFFF000))
    if "cpu" in controllers:
        (tmp_path / cg.dirs["cpu"] / "cpu.cfs_period_us").write_text("100000")
    return cg


def read(cg_dir: str, name: str) -> str:
    with open(f"{cg_dir}/{name}") as f:
        return f.read()


# --- CgroupConfig -> CgroupLimits (Docker's semantics) ------------------------------------------------------

def test_config_limits_initial_leaves_unset_out_update_lifts_them():
    config = CgroupConfig(memory=64 * MIB, nano_cpus=500_000_000)
    assert config.limits(initial=True) == CgroupLimits(memory=64 * MIB, memory_swap=128 * MIB, cpu_quota_us=50_000)
    assert CgroupConfig().limits(initial=True) == CgroupLimits()
    assert CgroupConfig().limits() == CgroupLimits(memory=-1, memory_swap=-1, cpu_quota_us=-1, pids=-1)
    assert CgroupConfig(memory=64 * MIB, memory_swap=-1, pids_limit=7).limits() == CgroupLimits(
        memory=64 * MIB, memory_swap=-1, cpu_quota_us=-1, pids=7)


# --- v1 ------------------------------------------------------------------------------------------------------

def test_v1_update_writes_each_limit_to_its_controller(tmp_path, writes):
    cg = v1_container(tmp_path)
    cg.update(CgroupConfig(memory=64 * MIB, memory_swap=96 * MIB, nano_cpus=1_500_000_000, pids_limit=50).limits())
    assert read(cg.dirs["memory"], "memory.limit_in_bytes") == str(64 * MIB)
    assert read(cg.dirs["memory"], "memory.memsw.limit_in_bytes") == str(96 * MIB)
    assert read(cg.dirs["cpu"], "cpu.cfs_quota_us") == "150000"
    assert read(cg.dirs["pids"], "pids.max") == "50"
    # Memory goes down from unlimited: the memory limit first, so memory <= memory+swap at every step.
    assert [name for name, _value in writes][:2] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_v1_update_raising_memory_writes_memsw_first_and_lifts_unset_limits(tmp_path, writes):
    cg = v1_container(tmp_path)
    cg.update(CgroupConfig(memory=64 * MIB, nano_cpus=500_000_000, pids_limit=5).limits())
    writes.clear()
    cg.update(CgroupConfig(memory=256 * MIB).limits())
    assert writes == [("memory.memsw.limit_in_bytes", str(512 * MIB)), ("memory.limit_in_bytes", str(256 * MIB)),
                      ("cpu.cfs_quota_us", "-1"), ("pids.max", "max")]
    writes.clear()
    cg.update(CgroupConfig().limits())  # back to unlimited: memsw first again (the limit goes up)
    assert writes[:2] == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]


def test_v1_create_writes_only_the_set_limits_through_the_same_mapping(tmp_path, writes):
    backend = V1Backend({c: str(tmp_path / c) for c in ("memory", "cpu", "pids")})
    for c in ("memory", "cpu", "pids"):
        for name in ("c1", "c2"):
            kernel_files(tmp_path / c / "pycontainer" / f"pycontainer-{name}", V1_FILES[c])
    backend.container("c1", CgroupConfig(device_rules=None)).create()
    assert writes == []  # a new cgroup is unlimited already
    cg = backend.container("c2", CgroupConfig(device_rules=None, memory=32 * MIB, cpu_shares=512, pids_limit=9))
    cg.create()
    assert sorted(writes) == [("cpu.shares", "512"), ("memory.limit_in_bytes", str(32 * MIB)),
                              ("memory.memsw.limit_in_bytes", str(64 * MIB)), ("pids.max", "9")]


def test_v1_a_limit_without_its_controller_is_an_error_lifting_one_is_not(tmp_path, writes):
    cg = v1_container(tmp_path, controllers=("cpu",))
    with pytest.raises(CgroupError, match="the memory cgroup controller is not available: cannot limit memory"):
        cg.update(CgroupLimits(memory=64 * MIB))
    with pytest.raises(CgroupError, match="the pids cgroup controller is not available: cannot limit pids"):
        cg.update(CgroupLimits(pids=5))
    cg.update(CgroupConfig().limits())
    assert writes == [("cpu.cfs_quota_us", "-1")]


def test_v1_weight_becomes_shares_and_a_new_period_lifts_the_quota_first(tmp_path, writes):
    cg = v1_container(tmp_path, controllers=("cpu",))
    cg.update(CgroupLimits(cpu_weight=50, cpu_quota_us=20_000, cpu_period_us=50_000))
    assert writes == [("cpu.shares", "512"), ("cpu.cfs_quota_us", "-1"), ("cpu.cfs_period_us", "50000"),
                      ("cpu.cfs_quota_us", "20000")]


# --- v2 ------------------------------------------------------------------------------------------------------

def v2_container(tmp_path, controllers="cpuset cpu io memory pids"):
    cg = V2Backend(str(tmp_path)).container("c1", CgroupConfig(device_rules=None))
    cg_dir = tmp_path / cg.dir
    kernel_files(cg_dir, [f for f in V2_FILES if f.split(".", maxsplit=1)[0] in controllers.split()])
    (cg_dir / "cgroup.controllers").write_text(controllers + "\n")
    return cg


def test_v2_update_writes_each_limit_and_the_swap_part_alone(tmp_path, writes):
    cg = v2_container(tmp_path)
    cg.update(CgroupConfig(memory=64 * MIB, memory_swap=96 * MIB, nano_cpus=250_000_000, cpu_shares=1024,
                           cpuset_cpus="0", pids_limit=50).limits())
    assert read(cg.dir, "memory.max") == str(64 * MIB)
    assert read(cg.dir, "memory.swap.max") == str(32 * MIB)
    assert read(cg.dir, "cpu.max") == "25000 100000"
    assert read(cg.dir, "cpu.weight") == "39"  # runc's shares -> weight
    assert read(cg.dir, "cpuset.cpus") == "0"
    assert read(cg.dir, "pids.max") == "50"
    writes.clear()
    cg.update(CgroupConfig().limits())
    assert writes == [("memory.max", "max"), ("memory.swap.max", "max"), ("cpu.max", "max 100000"),
                      ("pids.max", "max")]


def test_v2_a_limit_without_its_controller_is_an_error(tmp_path, writes):
    cg = v2_container(tmp_path, controllers="cpu")
    with pytest.raises(CgroupError, match="the memory cgroup controller is not available: cannot limit memory"):
        cg.update(CgroupLimits(memory=64 * MIB))
    with pytest.raises(CgroupError, match="the cpuset cgroup controller is not available"):
        cg.update(CgroupLimits(cpuset_cpus="0"))
    cg.update(CgroupConfig().limits())
    assert writes == [("cpu.max", "max 100000")]


# --- the cgroups role's parent on v1 (the v2 parent: tests/unit/ansible/test_host_config.py) ----------------

def test_v1_parent_plans_through_the_same_files_and_reads_them_back(tmp_path):
    layout = parent.Layout("v1", {c: str(tmp_path / c) for c in ("memory", "cpu", "pids")})
    for c in layout.v1:
        (tmp_path / c).mkdir()
    fleet = parent.ParentCgroup("fleet", layout)
    made = fleet.create_steps(set())
    assert [d for d, _action in made] == [f"Created cgroup {tmp_path}/{c}/fleet" for c in ("cpu", "memory", "pids")]
    for _description, action in made:
        action()
    for c in layout.v1:
        kernel_files(tmp_path / c / "fleet", V1_FILES[c])
    (tmp_path / "cpu" / "fleet" / "cpu.cfs_period_us").write_text("100000")
    steps = fleet.limit_steps(CgroupLimits(memory=256 * MIB, cpu_weight=50, cpu_quota_us=150_000, pids=99))
    assert [d for d, _action in steps] == [
        f"Set memory.limit_in_bytes {256 * MIB} on {tmp_path}/memory/fleet",
        f"Set cpu.shares 512 on {tmp_path}/cpu/fleet",
        f"Set cpu.cfs_quota_us 150000 (period 100000) on {tmp_path}/cpu/fleet",
        f"Set pids.max 99 on {tmp_path}/pids/fleet"]
    for _description, action in steps:
        action()
    assert fleet.read_limits() == CgroupLimits(memory=256 * MIB, cpu_weight=50, cpu_quota_us=150_000, pids=99)
    (tmp_path / "memory" / "fleet" / "memory.limit_in_bytes").write_text(str(0x7FFFFFFFFFFFF000))
    assert fleet.read_limits().memory == -1  # v1's "no limit" is a huge number


def test_v1_parent_refuses_a_limit_whose_controller_is_missing(tmp_path):
    fleet = parent.ParentCgroup("fleet", parent.Layout("v1", {"cpu": str(tmp_path / "cpu")}))
    with pytest.raises(CgroupError, match="the pids cgroup controller is not available on this host"):
        fleet.limit_steps(CgroupLimits(pids=-1))
