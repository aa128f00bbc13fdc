"""`docker update`: change a container's resource limits and restart policy without recreating it.

The new limits go to the running container's cgroup first (through the cgroup layer's directories), then the
record is saved (one atomic write of config.json), so a failed write (e.g. a memory limit below what the
container already uses: EBUSY) leaves the stored configuration as it was. A stopped container only has its
record changed: the next start creates its cgroup from the record. The monitor reads the restart policy
from the record when the container exits, so a new policy applies to the running container too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidArgument
from ..records.hostconfig import HostConfig, RestartPolicy

if TYPE_CHECKING:
    from ..linux.cgroups import CgroupConfig, ContainerCgroup
    from ..records.containers import ContainerRecord
    from ..runtime.lifecycle import Lifecycle


@dataclass
class UpdateOptions:
    """What to change; None leaves a setting as it is (Docker's update flags)."""

    memory: int | None = None           # bytes; 0 unlimited
    memory_swap: int | None = None      # bytes of memory+swap; -1 unlimited, 0 twice the memory
    nano_cpus: int | None = None        # 0 unlimited
    pids_limit: int | None = None       # 0 or -1 unlimited
    restart_policy: RestartPolicy | None = None

    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def applied_to(self, host: HostConfig) -> HostConfig:
        """A copy of ``host`` with these changes, checked as Docker checks `update`."""
        new = dataclasses.replace(host)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                setattr(new, f.name, dataclasses.replace(value) if f.name == "restart_policy" else value)
        _check(new, self)
        return new


def _check(host: HostConfig, changes: UpdateOptions) -> None:
    from ..runtime.isolation import cgroup_config

    cgroup_config(host, None, None)  # the limits as start checks them (minimum memory, swap >= memory, cpus)
    if changes.restart_policy is not None:
        host.restart_policy.check(
            host.auto_remove, "Restart policy cannot be updated because AutoRemove is enabled for the container")


def update_container(service: Lifecycle, ref: str, changes: UpdateOptions) -> ContainerRecord:
    """Apply ``changes`` to container ``ref``: its cgroup when it runs, then its record."""
    from ..linux.cgroups import container_cgroup
    from ..runtime.isolation import cgroup_config

    if changes.empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    record = service.lookup(ref)
    with service.store.container_lock(record):
        record = service.store.load(record.id)  # the record as it is now, under the lock
        old = record.config.host_config
        new = changes.applied_to(old)
        if record.state.status in ("running", "paused"):
            parent = service.config.cgroup_parent
            cgroup = container_cgroup(record.id, cgroup_config(new, parent, None))
            if cgroup.exists():
                try:
                    write_limits(cgroup, cgroup_config(new, parent, None))
                except BaseException:
                    with contextlib.suppress(Exception):  # put back what the record still says
                        write_limits(cgroup, cgroup_config(old, parent, None))
                    raise
        record.config.host_config = new
        service.store.save_config(record)
    service.event(record, "update")
    return record


def write_limits(cgroup: ContainerCgroup, config: CgroupConfig) -> None:
    """Write memory, swap, CPU quota and pids limits, unlimited ones included (creation only writes set
    ones), in an order the kernel accepts."""
    from ..linux.cgroups.v1 import V1Cgroup

    if isinstance(cgroup, V1Cgroup):
        _write_v1(cgroup.dirs, config)
    else:
        _write_v2(cgroup.paths()[0], config)


def _write_v1(dirs: dict[str, str], c: CgroupConfig) -> None:
    from ..linux.cgroups import cpu_quota, swap_limit
    from ..linux.cgroups.base import CgroupError, read_int, write

    mem = dirs.get("memory")
    if mem and os.path.isdir(mem):
        limit = c.memory if c.memory > 0 else -1
        swap = swap_limit(c.memory, c.memory_swap)
        memsw = f"{mem}/memory.memsw.limit_in_bytes"
        steps = [(f"{mem}/memory.limit_in_bytes", limit)]
        if os.path.exists(memsw):
            # memory <= memory+swap at every step: raise memsw first when memory goes up, last when it goes down.
            raising = limit < 0 or limit > read_int(f"{mem}/memory.limit_in_bytes")
            steps = [(memsw, swap), *steps] if raising else [*steps, (memsw, swap)]
        for path, value in steps:
            write(path, value)
    elif c.memory > 0:
        raise CgroupError("the memory cgroup controller is not available: cannot limit memory")
    cpu = dirs.get("cpu")
    if cpu and os.path.isdir(cpu):
        if c.nano_cpus > 0:
            write(f"{cpu}/cpu.cfs_period_us", 100_000)
        write(f"{cpu}/cpu.cfs_quota_us", cpu_quota(c.nano_cpus) if c.nano_cpus > 0 else -1)
    elif c.nano_cpus > 0:
        raise CgroupError("the cpu cgroup controller is not available: cannot limit cpu")
    pids = dirs.get("pids")
    if pids and os.path.isdir(pids):
        write(f"{pids}/pids.max", c.pids_limit if c.pids_limit > 0 else "max")
    elif c.pids_limit > 0:
        raise CgroupError("the pids cgroup controller is not available: cannot limit pids")


def _write_v2(path: str, c: CgroupConfig) -> None:
    from ..linux.cgroups import cpu_quota, swap_limit
    from ..linux.cgroups.base import CgroupError, write

    def need(name: str, wanted: bool) -> bool:
        if os.path.exists(f"{path}/{name}"):
            return True
        if wanted:
            raise CgroupError(f"{name} is not available in {path}: cannot set that limit")
        return False

    if need("memory.max", c.memory > 0):
        write(f"{path}/memory.max", c.memory if c.memory > 0 else "max")
        if os.path.exists(f"{path}/memory.swap.max"):
            total = swap_limit(c.memory, c.memory_swap)
            write(f"{path}/memory.swap.max", "max" if total < 0 else max(0, total - c.memory))
    if need("cpu.max", c.nano_cpus > 0):
        write(f"{path}/cpu.max", f"{cpu_quota(c.nano_cpus) if c.nano_cpus > 0 else 'max'} 100000")
    if need("pids.max", c.pids_limit > 0):
        write(f"{path}/pids.max", c.pids_limit if c.pids_limit > 0 else "max")
