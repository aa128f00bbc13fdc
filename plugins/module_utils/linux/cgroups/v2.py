"""cgroup v2 (unified hierarchy): controllers enabled top-down through cgroup.subtree_control."""

from __future__ import annotations

import contextlib
import os
import time

from . import base, devices
from .base import CgroupError, ContainerCgroup, read_int, read_keyed, write

WANTED = ("cpu", "cpuset", "memory", "pids", "io")


class V2Backend:
    name = "v2"

    def __init__(self, mount: str) -> None:
        self.mount = mount

    def container(self, container_id: str, config) -> V2Cgroup:
        return V2Cgroup(self, container_id, config)


class V2Cgroup(ContainerCgroup):
    def __init__(self, backend: V2Backend, container_id: str, config) -> None:
        from . import DEFAULT_PARENT, relative_path

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
        self._apply_limits()
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

    def _apply_limits(self) -> None:
        from . import cpu_quota, shares_to_weight, swap_limit

        c = self.config
        if c.memory > 0:
            if not self._has("memory"):
                raise CgroupError("the memory cgroup controller is not available: cannot limit memory")
            write(f"{self.dir}/memory.max", c.memory)
            if os.path.exists(f"{self.dir}/memory.swap.max"):
                total = swap_limit(c.memory, c.memory_swap)
                write(f"{self.dir}/memory.swap.max", "max" if total < 0 else max(0, total - c.memory))
        if c.nano_cpus > 0 or c.cpu_shares > 0:
            if not self._has("cpu"):
                raise CgroupError("the cpu cgroup controller is not available: cannot limit cpu")
            if c.nano_cpus > 0:
                write(f"{self.dir}/cpu.max", f"{cpu_quota(c.nano_cpus)} 100000")
            if c.cpu_shares > 0:
                write(f"{self.dir}/cpu.weight", shares_to_weight(c.cpu_shares))
        if c.cpuset_cpus:
            if not self._has("cpuset"):
                raise CgroupError("the cpuset cgroup controller is not available")
            write(f"{self.dir}/cpuset.cpus", c.cpuset_cpus)
        if c.pids_limit > 0:
            if not self._has("pids"):
                raise CgroupError("the pids cgroup controller is not available: cannot limit pids")
            write(f"{self.dir}/pids.max", c.pids_limit)

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
        from . import host_memory

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
