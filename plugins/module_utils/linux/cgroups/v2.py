"""cgroup v2 (unified hierarchy): controllers enabled top-down through cgroup.subtree_control."""

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
from .limits import DEFAULT_PARENT, PERIOD_US, CgroupLimits, host_memory, relative_path, shares_to_weight

WANTED = ("cpu", "cpuset", "memory", "pids", "io")


def limit_steps(dir_of: DirOf, limits: CgroupLimits) -> list[LimitStep]:
    """The v2 files for ``limits``: one directory, a controller counts when the parent enabled it."""
    steps: list[LimitStep] = []
    mem = controller_dir(dir_of, "memory", limits.memory, ": cannot limit memory")
    if mem:
        value = "max" if limits.memory < 0 else limits.memory
        steps.append(LimitStep("memory", f"Set memory.max {value} on {mem}", [(f"{mem}/memory.max", value)]))
        if limits.memory_swap is not None and os.path.exists(f"{mem}/memory.swap.max"):
            # v2 limits the swap alone: memory+swap minus the memory.
            total = limits.memory_swap
            swap = "max" if total < 0 or limits.memory < 0 else max(0, total - limits.memory)
            steps.append(LimitStep("memory_swap", f"Set memory.swap.max {swap} on {mem}",
                                   [(f"{mem}/memory.swap.max", swap)]))
    weight = limits.cpu_weight
    if weight is None and limits.cpu_shares is not None:
        weight = shares_to_weight(limits.cpu_shares)
    cpu = controller_dir(dir_of, "cpu", weight, ": cannot limit cpu")
    if cpu:
        steps.append(LimitStep("cpu_weight", f"Set cpu.weight {weight} on {cpu}", [(f"{cpu}/cpu.weight", weight)]))
    quota = limits.cpu_quota_us
    cpu = controller_dir(dir_of, "cpu", quota, ": cannot limit cpu")
    if cpu:
        value = f"{'max' if quota < 0 else quota} {limits.cpu_period_us}"
        steps.append(LimitStep("cpu_quota_us", f"Set cpu.max {value} on {cpu}", [(f"{cpu}/cpu.max", value)]))
    cpuset = controller_dir(dir_of, "cpuset", limits.cpuset_cpus, "")
    if cpuset:
        steps.append(LimitStep("cpuset_cpus", f"Set cpuset.cpus {limits.cpuset_cpus} on {cpuset}",
                               [(f"{cpuset}/cpuset.cpus", limits.cpuset_cpus)]))
    pids = controller_dir(dir_of, "pids", limits.pids, ": cannot limit pids")
    if pids:
        value = "max" if limits.pids < 0 else limits.pids
        steps.append(LimitStep("pids", f"Set pids.max {value} on {pids}", [(f"{pids}/pids.max", value)]))
    return steps


def read_limits(path: str | None) -> CgroupLimits:
    """The limits as the kernel has them in cgroup ``path`` (None fields: file or cgroup missing)."""
    out = CgroupLimits()
    if path is None:
        return out
    out.memory = read_limit(f"{path}/memory.max")
    out.cpu_weight = read_limit(f"{path}/cpu.weight")
    out.pids = read_limit(f"{path}/pids.max")
    try:
        parts = base.read(f"{path}/cpu.max").split()
    except OSError:
        parts = []
    if len(parts) == 2:
        out.cpu_quota_us = -1 if parts[0] == "max" else int(parts[0]) * PERIOD_US // int(parts[1])
    return out


class V2Backend:
    name = "v2"

    def __init__(self, mount: str) -> None:
        self.mount = mount

    def container(self, container_id: str, config) -> V2Cgroup:
        return V2Cgroup(self, container_id, config)


class V2Cgroup(ContainerCgroup):
    def __init__(self, backend: V2Backend, container_id: str, config) -> None:
        super().__init__(container_id, config)
        self.backend = backend
        self.dir = f"{backend.mount}/{relative_path(container_id, config.parent)}"
        self.engine_owned_parent = config.parent.strip("/") == DEFAULT_PARENT

    def paths(self) -> list[str]:
        return [self.dir]

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def create(self) -> None:
        rules = devices.container_rules(self.config.device_rules)  # a bad rule fails before anything exists
        for _attempt in range(5):
            try:
                self._create_dirs()
                break
            except FileNotFoundError:
                continue
        self.update(self.config.limits(initial=True))
        if rules is not None:  # --privileged: no program, every device
            # Before the container's process is added (the launcher's parent hook): it never runs unfiltered.
            devices.attach(self.dir, rules)

    def _create_dirs(self) -> None:
        current = self.backend.mount
        for part in os.path.relpath(self.dir, current).split("/"):
            self._enable_controllers(current)
            current = f"{current}/{part}"
            base.mkdir(current)

    def _enable_controllers(self, path: str) -> None:
        try:
            available = set(base.read(f"{path}/cgroup.controllers").split())
            enabled = set(base.read(f"{path}/cgroup.subtree_control").split())
        except OSError:
            return
        missing = [c for c in WANTED if c in available and c not in enabled]
        if missing:
            # May fail (a parent with processes of its own: no internal processes); the limits will say.
            with contextlib.suppress(CgroupError):
                write(f"{path}/cgroup.subtree_control", " ".join("+" + c for c in missing))

    def _has(self, controller: str) -> bool:
        try:
            return controller in base.read(f"{self.dir}/cgroup.controllers").split()
        except OSError:
            return False

    def _controller_dir(self, controller: str) -> str | None:
        return self.dir if self._has(controller) else None

    def limit_steps(self, limits: CgroupLimits) -> list[LimitStep]:
        return limit_steps(self._controller_dir, limits)

    def add(self, pid: int) -> None:
        write(f"{self.dir}/cgroup.procs", pid)

    def destroy(self) -> None:
        if os.path.isdir(self.dir):
            if os.path.exists(f"{self.dir}/cgroup.kill"):
                write(f"{self.dir}/cgroup.kill", 1)
                deadline = time.monotonic() + 5
                while self.pids() and time.monotonic() < deadline:
                    time.sleep(0.002)
            else:
                if self.is_frozen():
                    self.thaw()
                base.kill_all(f"{self.dir}/cgroup.procs")
            base.rmdir(self.dir)
        if self.engine_owned_parent:
            base.rmdir_if_empty(os.path.dirname(self.dir))

    def freeze(self) -> None:
        write(f"{self.dir}/cgroup.freeze", 1)
        deadline = time.monotonic() + 10
        while read_keyed(f"{self.dir}/cgroup.events").get("frozen") != 1:
            if time.monotonic() > deadline:
                write(f"{self.dir}/cgroup.freeze", 0)
                raise CgroupError("the container could not be frozen (timeout)")
            time.sleep(0.001)

    def thaw(self) -> None:
        write(f"{self.dir}/cgroup.freeze", 0)

    def is_frozen(self) -> bool:
        return read_keyed(f"{self.dir}/cgroup.events").get("frozen") == 1

    def pids(self) -> list[int]:
        return base.read_pids(f"{self.dir}/cgroup.procs")

    def oom_killed(self) -> bool:
        return read_keyed(f"{self.dir}/memory.events").get("oom_kill", 0) > 0

    def stats(self) -> dict:
        out: dict = {}
        cpu = read_keyed(f"{self.dir}/cpu.stat")
        if "usage_usec" in cpu:
            out["cpu_usage_ns"] = cpu["usage_usec"] * 1000
        if os.path.exists(f"{self.dir}/memory.current"):
            usage = read_int(f"{self.dir}/memory.current")
            st = read_keyed(f"{self.dir}/memory.stat")
            inactive = st.get("inactive_file", 0)
            out["memory_usage"] = usage - inactive if usage > inactive else usage
            out["memory_cache"] = st.get("file", 0)
            limit = read_int(f"{self.dir}/memory.max")
            total = host_memory()
            out["memory_limit"] = min(limit, total) if limit > 0 and total else (limit if limit > 0 else total)
            out["memory_max_usage"] = read_int(f"{self.dir}/memory.peak")
        if os.path.exists(f"{self.dir}/pids.current"):
            out["pids_current"] = read_int(f"{self.dir}/pids.current")
            limit = read_int(f"{self.dir}/pids.max")
            out["pids_limit"] = 0 if limit < 0 else limit
        else:
            out["pids_current"] = len(self.pids())
        try:
            text = base.read(f"{self.dir}/io.stat")
        except OSError:
            text = None
        if text is not None:
            rd = wr = 0
            for line in text.splitlines():
                for item in line.split()[1:]:
                    key, _sep, value = item.partition("=")
                    if key == "rbytes":
                        rd += int(value)
                    elif key == "wbytes":
                        wr += int(value)
            out["blkio_read_bytes"], out["blkio_write_bytes"] = rd, wr
        return out
