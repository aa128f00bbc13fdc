"""Cgroups: one interface, three backends (v1, v2 unified, hybrid), chosen by looking at the mounts.

    cg = container_cgroup(container_id, CgroupConfig(parent="pycontainer", memory=64 << 20))
    cg.create(); cg.add(pid)          # the launcher does this in its parent hook, before the child goes on
    cg.freeze(); cg.thaw(); cg.stats(); cg.oom_killed(); cg.pids(); cg.destroy()

Layout: ``<hierarchy>/<parent>/pycontainer-<id>`` in every hierarchy the backend uses (Docker's cgroupfs
layout, with the id prefixed so leftovers are easy to spot). The default parent (``pycontainer``) belongs to
the engine: created on demand, removed when its last container goes. A configured parent (the cgroups role
sets one, possibly with limits of its own) is created if missing but never removed.

Backends:
- v1: one hierarchy per controller (cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids), located
  from /proc/self/mountinfo, so co-mounted controllers (cpu,cpuacct) work too. Device rules go to
  devices.deny/devices.allow; a host without the devices hierarchy (and no cgroup2 one) is refused at create.
- v2: /sys/fs/cgroup is cgroup2; controllers are enabled in the parents' ``cgroup.subtree_control``. Device
  rules become a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup at create
  (``devices.py``: one rule model for both versions).
- hybrid: v1 controllers plus an empty cgroup2 mount (systemd's /sys/fs/cgroup/unified): resources come from
  v1, and the container also gets a v2 cgroup there, which gives ``cgroup.kill`` (atomic kill of everything,
  even frozen tasks) for ``destroy`` (and carries the device program when the v1 devices hierarchy is absent).

Limits: one ``CgroupLimits`` (``limits.py``) for every cgroup; each backend maps it to its control files
(``limit_steps``) for ``ContainerCgroup.update`` (create writes through it too) and for the cgroups role's
``ParentCgroup`` (``parent.py``), which also reads the values back. No other part of the engine names a cgroup file.
The package's modules import downward only: limits, base, devices, v1/v2, detect, parent, then this re-export (lazy).

Limits follow Docker's semantics: ``memory_swap`` 0 with a memory limit means twice the memory, -1 unlimited;
``nano_cpus`` becomes a CFS quota over a 100 ms period; ``pids_limit`` 0 or -1 means unlimited.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import ContainerCgroup

# Re-exports, resolved on first use (PEP 562): `info` reads the layout through ``detect`` and must not pay for
# loading both backends, the device-program compiler and the limit tables.
_EXPORTS = {
    "CgroupError": ".base", "ContainerCgroup": ".base",
    "DEFAULT_DEVICE_RULES": ".limits", "DEFAULT_PARENT": ".limits", "NAME_PREFIX": ".limits",
    "CgroupConfig": ".limits", "CgroupLimits": ".limits", "cpu_quota": ".limits", "host_memory": ".limits",
    "parse_device_rule": ".limits", "relative_path": ".limits", "shares_to_weight": ".limits",
    "swap_limit": ".limits",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


_BACKEND = None


def backend():
    """The backend for this host (detected once per process)."""
    global _BACKEND
    if _BACKEND is None:
        from . import detect

        _BACKEND = detect.detect()
    return _BACKEND


def container_cgroup(container_id: str, config: object = None) -> ContainerCgroup:
    """The cgroup of one container (nothing is created until ``create``).

    ``config`` is a CgroupConfig, or anything with a ``cgroup_parent`` attribute (the EngineConfig) when
    only the location matters (stats, freeze, destroy).
    """
    from .limits import DEFAULT_PARENT, CgroupConfig

    if isinstance(config, CgroupConfig):
        cfg = config
    else:
        cfg = CgroupConfig(parent=getattr(config, "cgroup_parent", None) or DEFAULT_PARENT)
    return backend().container(container_id, cfg)
