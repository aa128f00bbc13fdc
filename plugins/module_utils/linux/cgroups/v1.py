"""cgroup v1 (one hierarchy per controller), and hybrid: v1 controllers plus an empty cgroup2 hierarchy."""

from __future__ import annotations

import contextlib
import os
import time

from . import base, devices
from .base import (
    CgroupError,
    ContainerCgroup,
    DirOf,
    LimitStep,
    controller_dir,
    read_int,
    read_keyed,
    read_limit,
    write,
)
from .limits import (
    DEFAULT_PARENT,
    PERIOD_US,
    CgroupLimits,
    host_memory,
    relative_path,
    shares_as_weight,
    weight_to_shares,
)

_UNLIMITED = -1
# v1 reads an unlimited memory limit back as PAGE_COUNTER_MAX * page size (about 2**63).
_MEMORY_UNLIMITED = 1 << 62


def make_cpuset(mount: str, path: str) -> None:
    """Create v1 cpuset cgroup ``path`` under ``mount``: a new one starts with no cpus and no mems, so each level
    is filled from the one above."""
    current = mount
    for part in os.path.relpath(path, mount).split("/"):
        child = f"{current}/{part}"
        base.mkdir(child)
        for key in ("cpuset.cpus", "cpuset.mems"):
            if not base.read(f"{child}/{key}").strip():
                write(f"{child}/{key}", base.read(f"{current}/{key}").strip())
        current = child


def limit_steps(dir_of: DirOf, limits: CgroupLimits) -> list[LimitStep]:
    """The v1 files for ``limits``: one hierarchy per controller."""
    steps: list[LimitStep] = []
    mem = controller_dir(dir_of, "memory", limits.memory, ": cannot limit memory")
    if mem:
        limit = limits.memory
        steps.append(LimitStep("memory", f"Set memory.limit_in_bytes {limit} on {mem}",
                               [(f"{mem}/memory.limit_in_bytes", limit)]))
        memsw = f"{mem}/memory.memsw.limit_in_bytes"
        if limits.memory_swap is not None and os.path.exists(memsw):
            # memory <= memory+swap at every step: raise memsw first when memory goes up, last when it goes down.
            raising = limit < 0 or limit > read_int(f"{mem}/memory.limit_in_bytes")
            swap = LimitStep("memory_swap", f"Set memory.memsw.limit_in_bytes {limits.memory_swap} on {mem}",
                             [(memsw, limits.memory_swap)])
            steps.insert(0 if raising else 1, swap)
    shares = limits.cpu_shares
    if shares is None and limits.cpu_weight is not None:
        shares = weight_to_shares(limits.cpu_weight)
    cpu = controller_dir(dir_of, "cpu", shares, ": cannot limit cpu")
    if cpu:
        steps.append(LimitStep("cpu_shares", f"Set cpu.shares {shares} on {cpu}", [(f"{cpu}/cpu.shares", shares)]))
    quota, period = limits.cpu_quota_us, limits.cpu_period_us
    cpu = controller_dir(dir_of, "cpu", quota, ": cannot limit cpu")
    if cpu:
        writes: list[tuple[str, str | int]] = [(f"{cpu}/cpu.cfs_quota_us", quota)]
        if quota > 0 and read_int(f"{cpu}/cpu.cfs_period_us") != period:
            # Lift the quota while the period changes: the kernel checks quota against the parent's at each write.
            writes = [(f"{cpu}/cpu.cfs_quota_us", -1), (f"{cpu}/cpu.cfs_period_us", period), *writes]
        steps.append(LimitStep("cpu_quota_us", f"Set cpu.cfs_quota_us {quota} (period {period}) on {cpu}", writes))
    cpuset = controller_dir(dir_of, "cpuset", limits.cpuset_cpus, "")
    if cpuset:
        steps.append(LimitStep("cpuset_cpus", f"Set cpuset.cpus {limits.cpuset_cpus} on {cpuset}",
                               [(f"{cpuset}/cpuset.cpus", limits.cpuset_cpus)]))
    pids = controller_dir(dir_of, "pids", limits.pids, ": cannot limit pids")
    if pids:
        value = "max" if limits.pids < 0 else limits.pids
        steps.append(LimitStep("pids", f"Set pids.max {value} on {pids}", [(f"{pids}/pids.max", value)]))
    return steps


def read_limits(dir_of: DirOf) -> CgroupLimits:
    """The limits as the kernel has them (None: controller or cgroup missing); cpu quota over PERIOD_US and the
    shares on v2's weight scale, so both versions read alike."""
    out = CgroupLimits()
    mem, cpu, pids = dir_of("memory"), dir_of("cpu"), dir_of("pids")
    if mem:
        value = read_limit(f"{mem}/memory.limit_in_bytes")
        out.memory = _UNLIMITED if value is not None and value >= _MEMORY_UNLIMITED else value
    if cpu:
        shares = read_limit(f"{cpu}/cpu.shares")
        out.cpu_weight = None if shares is None else shares_as_weight(shares)
        quota = read_limit(f"{cpu}/cpu.cfs_quota_us")
        period = read_limit(f"{cpu}/cpu.cfs_period_us")
        if quota is not None and period:
            out.cpu_quota_us = _UNLIMITED if quota < 0 else quota * PERIOD_US // period
    if pids:
        out.pids = read_limit(f"{pids}/pids.max")
    return out


class V1Backend:
    def __init__(self, controllers: dict[str, str], unified: str | None = None) -> None:
        self.controllers = controllers  # controller -> mount point
        self.unified = unified  # hybrid: the cgroup2 mount, used for cgroup.kill and membership
        self.name = "hybrid" if unified else "v1"

    def container(self, container_id: str, config) -> V1Cgroup:
        return V1Cgroup(self, container_id, config)


class V1Cgroup(ContainerCgroup):
    def __init__(self, backend: V1Backend, container_id: str, config) -> None:
        super().__init__(container_id, config)
        self.backend = backend
        self.rel = relative_path(container_id, config.parent)
        self.parent_rel = os.path.dirname(self.rel)
        self.engine_owned_parent = config.parent.strip("/") == DEFAULT_PARENT
        # One directory per distinct mount point (co-mounted controllers share one).
        self.dirs: dict[str, str] = {c: f"{m}/{self.rel}" for c, m in backend.controllers.items()}
        self.unified_dir = f"{backend.unified}/{self.rel}" if backend.unified else None

    def _dir(self, controller: str) -> str | None:
        return self.dirs.get(controller)

    def paths(self) -> list[str]:
        out = sorted(set(self.dirs.values()))
        if self.unified_dir:
            out.append(self.unified_dir)
        return out

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self.paths())

    # --- lifecycle ---

    def create(self) -> None:
        rules = devices.container_rules(self.config.device_rules)
        if rules is not None and not self._dir("devices") and not self.unified_dir:
            # Skipping would leave CAP_MKNOD plus a node of the host's disk as raw disk access.
            raise CgroupError("the devices cgroup controller is not mounted (and there is no cgroup2 hierarchy for "
                              "a BPF device program): cannot restrict the container's device access")
        for _attempt in range(5):
            try:
                self._create_dirs()
                break
            except FileNotFoundError:  # another container's destroy removed the shared parent meanwhile
                continue
        self.update(self.config.limits(initial=True))
        self._apply_device_rules(rules)

    def _create_dirs(self) -> None:
        cpuset = self._dir("cpuset")
        for path in self.paths():
            if path == cpuset:
                self._prepare_cpuset(path)
            else:
                base.mkdir(path)

    def _prepare_cpuset(self, path: str) -> None:
        make_cpuset(self.backend.controllers["cpuset"], path)

    def _existing_dir(self, controller: str) -> str | None:
        d = self._dir(controller)
        return d if d and os.path.isdir(d) else None

    def limit_steps(self, limits: CgroupLimits) -> list[LimitStep]:
        return limit_steps(self._existing_dir, limits)

    def _apply_device_rules(self, rules: list[devices.DeviceRule] | None) -> None:
        """v1 devices controller; on a hybrid host without one, the v2 program on the container's cgroup2 dir
        (create has refused a host with neither)."""
        controller = self._dir("devices")
        if controller:
            for name, line in devices.v1_writes(rules if rules is not None else [devices.DeviceRule("a")]):
                write(f"{controller}/{name}", line)
        elif rules is not None and self.unified_dir:
            devices.attach(self.unified_dir, rules)

    def add(self, pid: int) -> None:
        for path in self.paths():
            write(f"{path}/cgroup.procs", pid)

    def destroy(self) -> None:
        if not self.exists():
            self._remove_parent()
            return
        self._kill_all()
        for path in self.paths():
            base.rmdir(path)
        self._remove_parent()

    def _kill_all(self) -> None:
        if self.unified_dir and os.path.exists(f"{self.unified_dir}/cgroup.kill"):
            # cgroup.kill reaches frozen tasks too and races no fork.
            with contextlib.suppress(CgroupError):
                write(f"{self.unified_dir}/cgroup.kill", 1)
            deadline = time.monotonic() + 5
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.002)
            if not self.pids():
                return
        freezer = self._dir("freezer")
        if freezer and os.path.isdir(freezer) and self.is_frozen():
            self.thaw()  # a frozen task cannot die
        procs = self._procs_file()
        if procs:
            base.kill_all(procs)

    def _remove_parent(self) -> None:
        if not self.engine_owned_parent:
            return
        for path in self.paths():
            base.rmdir_if_empty(os.path.dirname(path))

    def _procs_file(self) -> str | None:
        for controller in ("pids", "memory", "freezer", "cpu"):
            d = self._dir(controller)
            if d and os.path.isdir(d):
                return f"{d}/cgroup.procs"
        for d in self.paths():
            if os.path.isdir(d):
                return f"{d}/cgroup.procs"
        return None

    # --- runtime ---

    def _freezer(self) -> str:
        d = self._dir("freezer")
        if not d:
            raise CgroupError("the freezer cgroup controller is not available: cannot pause")
        return d

    def freeze(self) -> None:
        d = self._freezer()
        write(f"{d}/freezer.state", "FROZEN")
        deadline = time.monotonic() + 10
        while base.read(f"{d}/freezer.state").strip() != "FROZEN":
            if time.monotonic() > deadline:
                write(f"{d}/freezer.state", "THAWED")
                raise CgroupError("the container could not be frozen (timeout)")
            time.sleep(0.001)
            write(f"{d}/freezer.state", "FROZEN")  # v1: re-writing retries a FREEZING cgroup

    def thaw(self) -> None:
        write(f"{self._freezer()}/freezer.state", "THAWED")

    def is_frozen(self) -> bool:
        d = self._dir("freezer")
        try:
            return bool(d) and base.read(f"{d}/freezer.state").strip() == "FROZEN"
        except OSError:
            return False

    def pids(self) -> list[int]:
        procs = self._procs_file()
        return base.read_pids(procs) if procs else []

    def oom_killed(self) -> bool:
        mem = self._dir("memory")
        return bool(mem) and read_keyed(f"{mem}/memory.oom_control").get("oom_kill", 0) > 0

    def stats(self) -> dict:
        out: dict = {}
        acct = self._dir("cpuacct")
        if acct:
            out["cpu_usage_ns"] = read_int(f"{acct}/cpuacct.usage")
        mem = self._dir("memory")
        if mem:
            usage = read_int(f"{mem}/memory.usage_in_bytes")
            st = read_keyed(f"{mem}/memory.stat")
            inactive = st.get("total_inactive_file", st.get("inactive_file", 0))
            out["memory_usage"] = max(0, usage - inactive) if usage > inactive else usage
            out["memory_cache"] = st.get("total_cache", st.get("cache", 0))
            limit = read_int(f"{mem}/memory.limit_in_bytes")
            total = host_memory()
            out["memory_limit"] = min(limit, total) if limit > 0 and total else (limit if limit > 0 else total)
            out["memory_max_usage"] = read_int(f"{mem}/memory.max_usage_in_bytes")
        pids = self._dir("pids")
        if pids:
            out["pids_current"] = read_int(f"{pids}/pids.current")
            limit = read_int(f"{pids}/pids.max")
            out["pids_limit"] = 0 if limit == _UNLIMITED else limit
        blkio = self._dir("blkio")
        if blkio:
            rd = wr = 0
            found = False
            for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
                try:
                    text = base.read(f"{blkio}/{name}")
                except OSError:
                    continue
                found = True
                for line in text.splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "Read":
                        rd += int(parts[2])
                    elif len(parts) == 3 and parts[1] == "Write":
                        wr += int(parts[2])
                break
            if found:
                out["blkio_read_bytes"], out["blkio_write_bytes"] = rd, wr
        return out
