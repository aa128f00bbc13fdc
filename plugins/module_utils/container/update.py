"""`docker update`: change a container's resource limits and restart policy without recreating it.

The new limits go to the running container's cgroup first (``ContainerCgroup.update``), then the
record is saved (one atomic write of config.json), so a failed write (e.g. a memory limit below what the
container already uses: EBUSY) leaves the stored configuration as it was. A stopped container only has its
record changed: the next start creates its cgroup from the record. The monitor reads the restart policy
from the record when the container exits, so a new policy applies to the running container too.
"""

from __future__ import annotations

import contextlib
import dataclasses
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


def in_place_changes(names: set[str], want: HostConfig, current: HostConfig) -> UpdateOptions | None:
    """What `update` would change for the differing options ``names`` (the option table's names), or None when
    they need a new container: one of them is not updatable, or update would refuse the result."""
    from .option_table import BY_NAME

    if not names or not all(name in BY_NAME and BY_NAME[name].update for name in names):
        return None
    fields = {BY_NAME[name].update for name in names}  # restart_policy and restart_retries: one field
    changes = UpdateOptions(**{f: getattr(want, f) for f in fields})
    try:
        changes.applied_to(current)
    except InvalidArgument:
        return None
    return changes


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
    """Write memory, swap, CPU quota and pids limits, unlimited ones included (creation only writes set ones).
    CPU shares and cpuset stay as created: `update` does not change them."""
    cgroup.update(dataclasses.replace(config.limits(), cpu_shares=None, cpuset_cpus=None))
