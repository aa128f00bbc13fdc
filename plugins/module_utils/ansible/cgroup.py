"""The `pycontainer_cgroup` module's logic: the engine's parent cgroup with fleet-level limits.

It looks at the host the way the engine does (``linux/cgroups/detect.py``: v1, v2 or hybrid from
/proc/self/mountinfo), mounts v1 controllers the engine uses that the host left unmounted, enables the v2
controllers in ``cgroup.subtree_control`` from the root down to the parent, creates the parent in every
hierarchy the engine will put containers in, and writes its limits:

    limit        v1 file                                   v2 file
    memory_max   memory.limit_in_bytes                     memory.max
    cpu_weight   cpu.shares (weight * 1024 / 100, systemd's mapping)   cpu.weight
    cpus         cpu.cfs_quota_us over cpu.cfs_period_us   cpu.max ("quota period")
    pids_max     pids.max                                  pids.max

Limits the caller leaves unset (None) are not touched. Values are compared as the kernel reads them back
(memory rounded down to pages), so a second run changes nothing. Stdlib only: no cffi needed.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidArgument
from ..linux.cgroups import base
from ..linux.cgroups.base import CgroupError
from ..linux.cgroups.detect import V1_CONTROLLERS, read_layout
from ..linux.cgroups.v1 import make_cpuset
from ..linux.cgroups.v2 import WANTED as V2_CONTROLLERS

PERIOD_US = 100_000
UNLIMITED = -1
# v1 reads an unlimited memory limit back as PAGE_COUNTER_MAX * page size (about 2**63): anything this
# large is "unlimited".
_V1_MEMORY_UNLIMITED = 1 << 62
_NAME_RE = re.compile(r"[A-Za-z0-9_.@:+-]+(/[A-Za-z0-9_.@:+-]+)*")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass
class Limits:
    """Fleet-level limits of the parent cgroup; None leaves that limit as it is, -1 means unlimited."""

    memory_max: int | None = None   # bytes
    cpu_weight: int | None = None   # 1..10000 (cgroup v2's scale; 100 is the default share)
    cpu_quota_us: int | None = None  # per PERIOD_US
    pids_max: int | None = None


@dataclass
class Layout:
    """The cgroup hierarchies of this host, as the engine sees them."""

    version: str                       # v1 | v2 | hybrid
    v1: dict[str, str] = field(default_factory=dict)   # controller -> mount point
    unified: str | None = None         # the cgroup2 mount (v2, or the empty one of hybrid)


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


def limits_from_params(params: dict[str, Any]) -> Limits:
    weight = params.get("cpu_weight")
    if weight is not None and not 1 <= weight <= 10000:
        raise InvalidArgument(f"cpu_weight must be between 1 and 10000, not {weight}")
    cpus = params.get("cpus")
    if cpus is not None and cpus < 0:
        raise InvalidArgument(f"cpus must not be negative, not {cpus}")
    pids = params.get("pids_max")
    if pids is not None and pids < -1:
        raise InvalidArgument(f"pids_max must be -1, 0 (unlimited) or a positive number, not {pids}")
    return Limits(
        memory_max=parse_memory(params.get("memory_max")),
        cpu_weight=weight,
        cpu_quota_us=None if cpus is None else (UNLIMITED if cpus == 0 else max(1000, round(cpus * PERIOD_US))),
        pids_max=None if pids is None else (UNLIMITED if pids <= 0 else pids),
    )


def detect_layout(mountinfo: str = "/proc/self/mountinfo") -> Layout:
    unified, v1 = read_layout(mountinfo)
    if v1:
        return Layout("hybrid" if unified else "v1", v1, unified)
    return Layout("v2", {}, unified)


def unmounted_v1_controllers(layout: Layout, proc_cgroups: str, unified_controllers: set[str]) -> list[str]:
    """v1 controllers the engine uses that the kernel offers but no hierarchy holds (/proc/cgroups text).

    A controller bound to the cgroup2 hierarchy cannot be mounted as v1 too, so those are left out.
    """
    offered = set()
    for line in proc_cgroups.splitlines():
        parts = line.split()
        if len(parts) == 4 and not line.startswith("#") and parts[3] == "1":
            offered.add(parts[0])
    return [c for c in V1_CONTROLLERS
            if c in offered and c not in layout.v1 and c not in unified_controllers]


def _v1_mount_base(layout: Layout) -> str:
    """Where the host keeps its v1 hierarchies (the directory holding e.g. memory/)."""
    return os.path.dirname(next(iter(layout.v1.values()))) if layout.v1 else "/sys/fs/cgroup"


def _weight_to_shares(weight: int) -> int:
    return max(2, weight * 1024 // 100)


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


class ParentCgroup:
    """The engine's configured parent cgroup in every hierarchy it uses."""

    def __init__(self, name: str, layout: Layout) -> None:
        name = name.strip("/")
        if not name or not _NAME_RE.fullmatch(name) or ".." in name.split("/"):
            raise InvalidArgument(f"invalid cgroup name {name!r}: a relative path of [A-Za-z0-9_.@:+-] parts")
        self.name = name
        self.layout = layout

    # --- where it lives ---

    def dir(self, controller: str) -> str | None:
        if self.layout.version == "v2":
            return f"{self.layout.unified}/{self.name}"
        mount = self.layout.v1.get(controller)
        return f"{mount}/{self.name}" if mount else None

    def paths(self) -> list[str]:
        if self.layout.version == "v2":
            return [f"{self.layout.unified}/{self.name}"]
        out = sorted({f"{m}/{self.name}" for m in self.layout.v1.values()})
        if self.layout.unified:  # hybrid: the engine puts each container in the cgroup2 tree too
            out.append(f"{self.layout.unified}/{self.name}")
        return out

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self.paths())

    # --- reading ---

    def read_limits(self) -> dict[str, int | None]:
        """The limits as the kernel has them (None: controller missing or cgroup not there)."""
        out: dict[str, int | None] = {"memory_max": None, "cpu_weight": None, "cpu_quota_us": None,
                                      "pids_max": None}
        if self.layout.version == "v2":
            d = self.dir("memory")
            if d and os.path.isdir(d):
                out["memory_max"] = _read_limit(f"{d}/memory.max")
                out["cpu_weight"] = _read_limit(f"{d}/cpu.weight")
                out["cpu_quota_us"] = _read_cpu_max(f"{d}/cpu.max")
                out["pids_max"] = _read_limit(f"{d}/pids.max")
            return out
        mem, cpu, pids = self.dir("memory"), self.dir("cpu"), self.dir("pids")
        if mem and os.path.isdir(mem):
            value = _read_limit(f"{mem}/memory.limit_in_bytes")
            out["memory_max"] = UNLIMITED if value is not None and value >= _V1_MEMORY_UNLIMITED else value
        if cpu and os.path.isdir(cpu):
            shares = _read_limit(f"{cpu}/cpu.shares")
            # Reported on v2's scale; the inverse of _weight_to_shares (exact for the values it writes).
            out["cpu_weight"] = None if shares is None else max(1, -(-shares * 100 // 1024))
            quota = _read_limit(f"{cpu}/cpu.cfs_quota_us")
            period = _read_limit(f"{cpu}/cpu.cfs_period_us")
            if quota is not None and period:
                out["cpu_quota_us"] = UNLIMITED if quota < 0 else quota * PERIOD_US // period
        if pids and os.path.isdir(pids):
            out["pids_max"] = _read_limit(f"{pids}/pids.max")
        return out

    # --- planning ---

    def plan_present(self, limits: Limits, mount_controllers: bool) -> Plan:
        plan = Plan()
        current = self.read_limits() if self.exists() else {}
        plan.before = {"exists": self.exists(), "limits": current}
        if mount_controllers:
            self._plan_controllers(plan)
        for path in self.paths():
            if not os.path.isdir(path) and path not in plan.made:
                plan.add(f"Created cgroup {path}", _creator(self, path))
        self._plan_limits(plan, limits, current)
        wanted = dict(current)
        for key, value in asdict(limits).items():
            if value is not None:
                wanted[key] = value
        plan.after = {"exists": True, "limits": wanted}
        return plan

    def _plan_controllers(self, plan: Plan) -> None:
        layout = self.layout
        if layout.version in ("v1", "hybrid"):
            unified_controllers = set()
            if layout.unified:
                unified_controllers = set(_read(f"{layout.unified}/cgroup.controllers").split())
            missing = unmounted_v1_controllers(layout, _read("/proc/cgroups"), unified_controllers)
            mount_base = _v1_mount_base(layout)
            for controller in missing:
                target = f"{mount_base}/{controller}"
                plan.add(f"Mounted the {controller} cgroup controller on {target}", _mounter(controller, target))
                layout.v1[controller] = target  # later steps (the parent, limits) use it
        if layout.version == "v2":
            # Every level from the root down to the parent itself (its children are the containers).
            current = layout.unified
            levels = [current]
            for part in self.name.split("/"):
                current = f"{current}/{part}"
                levels.append(current)
            for level in levels:
                missing = _missing_subtree(level)
                if os.path.isdir(level):
                    if missing:
                        plan.add(f"Enabled {' '.join(missing)} in {level}/cgroup.subtree_control", _enabler([level]))
                else:
                    # Each level is made after its parent enabled the controllers, then enables its own.
                    plan.add(f"Created cgroup {level} with the engine's controllers enabled below it",
                             _enabler([level]))
                    plan.made.add(level)

    def _plan_limits(self, plan: Plan, limits: Limits, current: dict[str, int | None]) -> None:
        def differs(key: str, wanted: int | None) -> bool:
            if wanted is None:
                return False
            have = current.get(key)
            if key == "memory_max" and wanted > 0:
                wanted = _page_floor(wanted)
            return have != wanted

        v2 = self.layout.version == "v2"
        if differs("memory_max", limits.memory_max):
            d = self._need("memory")
            value = limits.memory_max
            if v2:
                plan.add(f"Set memory.max {value} on {d}", _writer(f"{d}/memory.max", "max" if value < 0 else value))
            else:
                plan.add(f"Set memory.limit_in_bytes {value} on {d}", _writer(f"{d}/memory.limit_in_bytes", value))
        if differs("cpu_weight", limits.cpu_weight):
            d = self._need("cpu")
            if v2:
                plan.add(f"Set cpu.weight {limits.cpu_weight} on {d}", _writer(f"{d}/cpu.weight", limits.cpu_weight))
            else:
                shares = _weight_to_shares(limits.cpu_weight)
                plan.add(f"Set cpu.shares {shares} on {d}", _writer(f"{d}/cpu.shares", shares))
        if differs("cpu_quota_us", limits.cpu_quota_us):
            d = self._need("cpu")
            quota = limits.cpu_quota_us
            if v2:
                value = f"{'max' if quota < 0 else quota} {PERIOD_US}"
                plan.add(f"Set cpu.max {value} on {d}", _writer(f"{d}/cpu.max", value))
            else:
                plan.add(f"Set cpu.cfs_quota_us {quota} (period {PERIOD_US}) on {d}",
                         _writer_many([(f"{d}/cpu.cfs_quota_us", -1), (f"{d}/cpu.cfs_period_us", PERIOD_US),
                                       (f"{d}/cpu.cfs_quota_us", quota)]))
        if differs("pids_max", limits.pids_max):
            d = self._need("pids")
            value = "max" if limits.pids_max < 0 else limits.pids_max
            plan.add(f"Set pids.max {value} on {d}", _writer(f"{d}/pids.max", value))

    def _need(self, controller: str) -> str:
        d = self.dir(controller)
        if d is None:
            raise CgroupError(f"the {controller} cgroup controller is not available on this host: "
                              f"cannot set that limit")
        return d

    def plan_absent(self) -> Plan:
        plan = Plan(before={"exists": self.exists(), "limits": self.read_limits() if self.exists() else {}},
                    after={"exists": False, "limits": {}})
        for path in sorted(self.paths(), key=len, reverse=True):
            if os.path.isdir(path):
                children = sorted(e.name for e in os.scandir(path) if e.is_dir())
                if children:
                    raise CgroupError(f"cgroup {path} still holds {', '.join(children)}: remove those containers "
                                      f"first")
                plan.add(f"Removed cgroup {path}", _remover(path))
        return plan


def _read(path: str) -> str:
    try:
        return base.read(path)
    except OSError:
        return ""


def _read_limit(path: str) -> int | None:
    text = _read(path).strip()
    if text == "max":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


def _read_cpu_max(path: str) -> int | None:
    parts = _read(path).split()
    if len(parts) != 2:
        return None
    if parts[0] == "max":
        return UNLIMITED
    return int(parts[0]) * PERIOD_US // int(parts[1])


def _missing_subtree(level: str) -> list[str]:
    available = set(_read(f"{level}/cgroup.controllers").split()) if os.path.isdir(level) else set()
    enabled = set(_read(f"{level}/cgroup.subtree_control").split())
    return [c for c in V2_CONTROLLERS if c in available and c not in enabled]


def _creator(parent: ParentCgroup, path: str):
    def create() -> None:
        cpuset = parent.dir("cpuset")
        if parent.layout.version != "v2" and path == cpuset:
            make_cpuset(parent.layout.v1["cpuset"], path)
        else:
            base.mkdir(path)
    return create


def _mounter(controller: str, target: str):
    def mount() -> None:
        from ..linux import libc  # the syscall layer, not mount(8)

        os.makedirs(target, 0o755, exist_ok=True)
        try:
            libc.mount("cgroup", target, "cgroup", 0, controller)
        except OSError as exc:
            raise CgroupError(f"cannot mount the {controller} cgroup controller on {target}: "
                              f"{os.strerror(exc.errno) if exc.errno else exc}") from None
    return mount


def _enabler(levels: list[str]):
    def enable() -> None:
        for level in levels:
            base.mkdir(level)
            missing = _missing_subtree(level)
            if missing:
                base.write(f"{level}/cgroup.subtree_control", " ".join("+" + c for c in missing))
    return enable


def _writer(path: str, value: str | int):
    return lambda: base.write(path, value)


def _writer_many(items: list[tuple[str, str | int]]):
    def write_all() -> None:
        for path, value in items:
            base.write(path, value)
    return write_all


def _remover(path: str):
    return lambda: base.rmdir(path)


def manage_cgroup(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    from ..linux.cgroups import DEFAULT_PARENT

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
            "limits": parent.read_limits() if exists and not check_mode else plan.after["limits"],
        },
        "diff": {"before": plan.before, "after": plan.after},
    }
    return result


__all__ = ["Layout", "Limits", "ParentCgroup", "detect_layout", "manage_cgroup", "parse_memory"]
