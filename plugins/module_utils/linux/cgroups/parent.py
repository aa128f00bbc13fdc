"""A parent cgroup at a path in every hierarchy the engine uses (the cgroups role's fleet-level limits).

It reads and writes its limits through the backends' own limit->file tables (``v1.limit_steps``,
``v2.limit_steps``, ``read_limits``), so a limit is spelled for the kernel in one place. The work comes as
steps (description, action) so the caller can plan, show a diff and honour check mode before touching anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from ...errors import InvalidArgument
from . import base, v1, v2
from .base import CgroupError
from .detect import V1_CONTROLLERS, read_layout
from .limits import CgroupLimits

Step = tuple[str, Callable[[], None]]
_NAME_RE = re.compile(r"[A-Za-z0-9_.@:+-]+(/[A-Za-z0-9_.@:+-]+)*")
_CONTROLLER_OF = {"memory": "memory", "memory_swap": "memory", "cpu_quota_us": "cpu", "cpu_shares": "cpu",
                  "cpu_weight": "cpu", "cpuset_cpus": "cpuset", "pids": "pids"}


@dataclass
class Layout:
    """The cgroup hierarchies of this host, as the engine sees them."""

    version: str                       # v1 | v2 | hybrid
    v1: dict[str, str] = field(default_factory=dict)   # controller -> mount point
    unified: str | None = None         # the cgroup2 mount (v2, or the empty one of hybrid)


def detect_layout(mountinfo: str = "/proc/self/mountinfo") -> Layout:
    unified, controllers = read_layout(mountinfo)
    if controllers:
        return Layout("hybrid" if unified else "v1", controllers, unified)
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


def _read(path: str) -> str:
    try:
        return base.read(path)
    except OSError:
        return ""


def _missing_subtree(level: str) -> list[str]:
    available = set(_read(f"{level}/cgroup.controllers").split()) if os.path.isdir(level) else set()
    enabled = set(_read(f"{level}/cgroup.subtree_control").split())
    return [c for c in v2.WANTED if c in available and c not in enabled]


class ParentCgroup:
    """The cgroup ``name`` (relative to each hierarchy's root) in every hierarchy the engine uses."""

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

    def _existing_dir(self, controller: str) -> str | None:
        d = self.dir(controller)
        return d if d and os.path.isdir(d) else None

    # --- limits ---

    def read_limits(self) -> CgroupLimits:
        """The limits as the kernel has them (None: controller missing or cgroup not there)."""
        if self.layout.version == "v2":
            return v2.read_limits(self._existing_dir("memory"))
        return v1.read_limits(self._existing_dir)

    def limit_steps(self, limits: CgroupLimits) -> list[Step]:
        """Writing ``limits`` (None fields untouched); the directories may still be steps away from existing."""
        for f in fields(limits):
            controller = _CONTROLLER_OF.get(f.name)
            if controller and getattr(limits, f.name) is not None and self.dir(controller) is None:
                raise CgroupError(f"the {controller} cgroup controller is not available on this host: "
                                  f"cannot set that limit")
        mapping = v2.limit_steps if self.layout.version == "v2" else v1.limit_steps
        return [(step.description, step.apply) for step in mapping(self.dir, limits)]

    # --- making it ---

    def controller_steps(self) -> tuple[list[Step], set[str]]:
        """Mounting the v1 controllers the engine uses that the host left unmounted; enabling the v2 ones from
        the root down to the parent itself (its children are the containers). Also the directories that makes."""
        layout = self.layout
        steps: list[Step] = []
        made: set[str] = set()
        if layout.version in ("v1", "hybrid"):
            unified_controllers = set()
            if layout.unified:
                unified_controllers = set(_read(f"{layout.unified}/cgroup.controllers").split())
            missing = unmounted_v1_controllers(layout, _read("/proc/cgroups"), unified_controllers)
            mount_base = os.path.dirname(next(iter(layout.v1.values()))) if layout.v1 else "/sys/fs/cgroup"
            for controller in missing:
                target = f"{mount_base}/{controller}"
                steps.append((f"Mounted the {controller} cgroup controller on {target}", _mounter(controller, target)))
                layout.v1[controller] = target  # later steps (the parent, limits) use it
        if layout.version == "v2":
            current = layout.unified
            levels = [current]
            for part in self.name.split("/"):
                current = f"{current}/{part}"
                levels.append(current)
            for level in levels:
                missing = _missing_subtree(level)
                if os.path.isdir(level):
                    if missing:
                        steps.append((f"Enabled {' '.join(missing)} in {level}/cgroup.subtree_control",
                                      _enabler(level)))
                else:
                    # Each level is made after its parent enabled the controllers, then enables its own.
                    steps.append((f"Created cgroup {level} with the engine's controllers enabled below it",
                                  _enabler(level)))
                    made.add(level)
        return steps, made

    def create_steps(self, made: set[str]) -> list[Step]:
        """Creating the directories still missing (``made``: ones an earlier step creates)."""
        return [(f"Created cgroup {path}", self._creator(path))
                for path in self.paths() if not os.path.isdir(path) and path not in made]

    def remove_steps(self) -> list[Step]:
        steps: list[Step] = []
        for path in sorted(self.paths(), key=len, reverse=True):
            if os.path.isdir(path):
                children = sorted(e.name for e in os.scandir(path) if e.is_dir())
                if children:
                    raise CgroupError(f"cgroup {path} still holds {', '.join(children)}: remove those containers "
                                      f"first")
                steps.append((f"Removed cgroup {path}", _remover(path)))
        return steps

    def _creator(self, path: str) -> Callable[[], None]:
        def create() -> None:
            if self.layout.version != "v2" and path == self.dir("cpuset"):
                v1.make_cpuset(self.layout.v1["cpuset"], path)
            else:
                base.mkdir(path)
        return create


def _mounter(controller: str, target: str) -> Callable[[], None]:
    def mount() -> None:
        from .. import libc  # the syscall layer, not mount(8)

        os.makedirs(target, 0o755, exist_ok=True)
        try:
            libc.mount("cgroup", target, "cgroup", 0, controller)
        except OSError as exc:
            raise CgroupError(f"cannot mount the {controller} cgroup controller on {target}: "
                              f"{os.strerror(exc.errno) if exc.errno else exc}") from None
    return mount


def _enabler(level: str) -> Callable[[], None]:
    def enable() -> None:
        base.mkdir(level)
        missing = _missing_subtree(level)
        if missing:
            base.write(f"{level}/cgroup.subtree_control", " ".join("+" + c for c in missing))
    return enable


def _remover(path: str) -> Callable[[], None]:
    return lambda: base.rmdir(path)
