"""cgroup v1 (one hierarchy per controller), and hybrid: v1 controllers plus an empty cgroup2 hierarchy."""

from __future__ import annotations

import contextlib
import os
import time

from . import base, devices
from .base import CgroupError, ContainerCgroup, read_int, read_keyed, write

_UNLIMITED = -1


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


class V1Backend:
    def __init__(self, controllers: dict[str, str], unified: str | None = None) -> None:
        self.controllers = controllers  # controller -> mount point
        self.unified = unified  # hybrid: the cgroup2 mount, used for cgroup.kill and membership
        self.name = "hybrid" if unified else "v1"

    def container(self, container_id: str, config) -> V1Cgroup:
        return V1Cgroup(self, container_id, config)


class V1Cgroup(ContainerCgroup):
    def __init__(self, backend: V1Backend, container_id: str, config) -> None:
        from . import DEFAULT_PARENT, relative_path

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
        self._apply_limits()
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

    def _apply_limits(self) -> None:
        from . import cpu_quota, swap_limit

        c = self.config
        mem = self._dir("memory")
        if mem:
            if c.memory > 0:
                write(f"{mem}/memory.limit_in_bytes", c.memory)
            swap = swap_limit(c.memory, c.memory_swap)
            if c.memory > 0 and os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):
                write(f"{mem}/memory.memsw.limit_in_bytes", swap)
        elif c.memory > 0:
            raise CgroupError("the memory cgroup controller is not available: cannot limit memory")
        cpu = self._dir("cpu")
        if c.nano_cpus > 0 or c.cpu_shares > 0:
            if not cpu:
                raise CgroupError("the cpu cgroup controller is not available: cannot limit cpu")
            if c.nano_cpus > 0:
                write(f"{cpu}/cpu.cfs_period_us", 100_000)
                write(f"{cpu}/cpu.cfs_quota_us", cpu_quota(c.nano_cpus))
            if c.cpu_shares > 0:
                write(f"{cpu}/cpu.shares", c.cpu_shares)
        if c.cpuset_cpus:
            cpuset = self._dir("cpuset")
            if not cpuset:
                raise CgroupError("the cpuset cgroup controller is not available")
            write(f"{cpuset}/cpuset.cpus", c.cpuset_cpus)
        pids = self._dir("pids")
        if c.pids_limit > 0:
            if not pids:
                raise CgroupError("the pids cgroup controller is not available: cannot limit pids")
            write(f"{pids}/pids.max", c.pids_limit)

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
        from . import host_memory

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
