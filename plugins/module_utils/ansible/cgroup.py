"""The `pycontainer_cgroup` module's logic: the engine's parent cgroup with fleet-level limits.

It looks at the host the way the engine does (``linux/cgroups``: v1, v2 or hybrid from /proc/self/mountinfo),
mounts v1 controllers the engine uses that the host left unmounted, enables the v2 controllers from the root
down to the parent, creates the parent in every hierarchy the engine will put containers in, and writes its
limits through the same limit->file tables the containers' cgroups use (``linux/cgroups/parent.py``):
memory_max, cpu_weight (v2's scale; systemd's mapping to v1 shares), cpus (a CFS quota over a 100 ms period)
and pids_max.

Limits the caller leaves unset (None) are not touched. Values are compared as the kernel reads them back
(memory rounded down to pages), so a second run changes nothing. Stdlib only: no cffi needed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgument
from ..linux.cgroups import parent as cgroup_parent
from ..linux.cgroups.base import CgroupError
from ..linux.cgroups.limits import DEFAULT_PARENT, PERIOD_US, UNLIMITED, CgroupLimits
from ..linux.cgroups.parent import Layout, detect_layout, unmounted_v1_controllers

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# The module's names for the limits it manages (its parameters and return values).
_MODULE_KEYS = {"memory_max": "memory", "cpu_weight": "cpu_weight", "cpu_quota_us": "cpu_quota_us", "pids_max": "pids"}


def parse_memory(text: str | int | None) -> int | None:
    """Docker's --memory units (binary: 1k = 1024); 0, -1 or "max" mean unlimited."""
    if text is None or text == "":
        return None
    value = str(text).strip().lower()
    if value in ("max", "-1", "0", "unlimited"):
        return UNLIMITED
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?", value)
    if not m:
        raise InvalidArgument(f"invalid memory_max {text!r}: use bytes or a number with k, m, g or t, or max")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def limits_from_params(params: dict[str, Any]) -> CgroupLimits:
    weight = params.get("cpu_weight")
    if weight is not None and not 1 <= weight <= 10000:
        raise InvalidArgument(f"cpu_weight must be between 1 and 10000, not {weight}")
    cpus = params.get("cpus")
    if cpus is not None and cpus < 0:
        raise InvalidArgument(f"cpus must not be negative, not {cpus}")
    pids = params.get("pids_max")
    if pids is not None and pids < -1:
        raise InvalidArgument(f"pids_max must be -1, 0 (unlimited) or a positive number, not {pids}")
    return CgroupLimits(
        memory=parse_memory(params.get("memory_max")),
        cpu_weight=weight,
        cpu_quota_us=None if cpus is None else (UNLIMITED if cpus == 0 else max(1000, round(cpus * PERIOD_US))),
        pids=None if pids is None else (UNLIMITED if pids <= 0 else pids),
    )


def module_limits(limits: CgroupLimits) -> dict[str, int | None]:
    """The limits under the module's names."""
    return {key: getattr(limits, name) for key, name in _MODULE_KEYS.items()}


def _page_floor(value: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    return value // page * page


@dataclass
class Plan:
    """What reaching the desired state takes: each step is (description, callable)."""

    steps: list[tuple[str, Any]] = field(default_factory=list)
    made: set[str] = field(default_factory=set)  # directories an earlier step creates
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def add(self, description: str, action) -> None:
        self.steps.append((description, action))


class ParentCgroup(cgroup_parent.ParentCgroup):
    """The engine's configured parent cgroup in every hierarchy it uses, planned as the module reports it."""

    def plan_present(self, limits: CgroupLimits, mount_controllers: bool) -> Plan:
        plan = Plan()
        exists = self.exists()
        current = module_limits(self.read_limits()) if exists else {}
        plan.before = {"exists": exists, "limits": current}
        if mount_controllers:
            steps, made = self.controller_steps()
            plan.steps.extend(steps)
            plan.made |= made
        plan.steps.extend(self.create_steps(plan.made))
        wanted = module_limits(limits)
        changes = {_MODULE_KEYS[key]: value for key, value in wanted.items() if _differs(key, value, current)}
        plan.steps.extend(self.limit_steps(CgroupLimits(**changes)))
        plan.after = {"exists": True, "limits": {**current, **{k: v for k, v in wanted.items() if v is not None}}}
        return plan

    def plan_absent(self) -> Plan:
        plan = Plan(before={"exists": self.exists(),
                            "limits": module_limits(self.read_limits()) if self.exists() else {}},
                    after={"exists": False, "limits": {}})
        plan.steps.extend(self.remove_steps())
        return plan


def _differs(key: str, wanted: int | None, current: dict[str, int | None]) -> bool:
    if wanted is None:
        return False
    if key == "memory_max" and wanted > 0:
        wanted = _page_floor(wanted)
    return current.get(key) != wanted


def manage_cgroup(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if not params.get("name"):
        from ..config import load_config

        params = {**params, "name": load_config(params.get("config"), params.get("root")).cgroup_parent}
    if params["name"].strip("/") == DEFAULT_PARENT:
        # The engine removes its default parent when the last container goes: limits set there would vanish.
        raise InvalidArgument(f"{DEFAULT_PARENT!r} is the engine's own default parent cgroup; choose another name")
    layout = detect_layout()
    parent = ParentCgroup(params["name"], layout)
    if (params.get("state") or "present") == "absent":
        plan = parent.plan_absent()
    else:
        plan = parent.plan_present(limits_from_params(params), params.get("mount_controllers", True))
    if not check_mode:
        for _description, action in plan.steps:
            action()
    exists = parent.exists()
    result: dict[str, Any] = {
        "changed": bool(plan.steps),
        "actions": [description for description, _action in plan.steps],
        "cgroup": {
            "version": layout.version,
            "name": parent.name,
            "controllers": dict(sorted(layout.v1.items())),
            "unified": layout.unified,
            "paths": parent.paths(),
            "exists": exists if not check_mode else plan.after["exists"],
            "limits": module_limits(parent.read_limits()) if exists and not check_mode else plan.after["limits"],
        },
        "diff": {"before": plan.before, "after": plan.after},
    }
    return result


__all__ = ["CgroupError", "CgroupLimits", "Layout", "ParentCgroup", "detect_layout", "limits_from_params",
           "manage_cgroup", "module_limits", "parse_memory", "unmounted_v1_controllers"]
