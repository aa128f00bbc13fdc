"""HostConfig -> the launcher's spec: namespaces, rootfs options, and (as they land) capabilities, seccomp,
cgroup limits, devices and mounts.

Anything the user asked for that this version cannot enforce is refused here, never silently dropped.
"""

from __future__ import annotations

from ..errors import UnsupportedError
from .hostconfig import HostConfig
from .spec import ContainerSpec

# Fields whose default is all this version enforces.
_NOT_YET = ("pid_mode", "ipc_mode", "uts_mode", "privileged", "cap_add", "cap_drop", "security_opt", "devices",
            "device_cgroup_rules", "memory", "memory_swap", "nano_cpus", "cpu_shares", "cpuset_cpus", "pids_limit",
            "ulimits", "init")
# ``mounts`` become ``spec.mounts`` through VolumeService.mount_specs (runtime/volumes.py), called by the
# container service: volumes resolve to paths under the engine root, which this mapping does not know.


def apply_host_config(spec: ContainerSpec, host: HostConfig) -> None:
    defaults = HostConfig()
    unsupported = [name for name in _NOT_YET if getattr(host, name) != getattr(defaults, name)]
    if unsupported:
        raise UnsupportedError(f"not supported yet: {', '.join(unsupported)}")
    spec.network_mode = host.network_mode
    spec.readonly_rootfs = host.read_only
    spec.shm_size = host.shm_size
