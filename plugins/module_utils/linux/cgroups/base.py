"""What every cgroup backend offers for one container, and the file helpers they share."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ...errors import EngineError
from .limits import CgroupLimits


class CgroupError(EngineError):
    """A cgroup could not be created, configured or removed."""


def write(path: str, value: str | int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode()


def read_int(path: str, default: int = 0) -> int:
    try:
        text = read(path).strip()
    except OSError:
        return default
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return default


def read_limit(path: str) -> int | None:
    """A limit file as a number: "max" is -1, missing or unreadable None."""
    try:
        text = read(path).strip()
    except OSError:
        return None
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return None


# A backend's directory for one controller, or None when that controller is not there.
DirOf = Callable[[str], "str | None"]


@dataclass
class LimitStep:
    """One limit's writes, in order (a description for plans and check mode)."""

    key: str  # the CgroupLimits field
    description: str
    writes: list[tuple[str, str | int]] = field(default_factory=list)

    def apply(self) -> None:
        for path, value in self.writes:
            write(path, value)


def controller_dir(dir_of: DirOf, controller: str, value: object, what: str) -> str | None:
    """The controller's directory for a limit; None skips it (unset, or lifting a limit the host cannot have);
    CgroupError when a limit is wanted and the controller is missing."""
    if value is None:
        return None
    path = dir_of(controller)
    if path is None and value != -1:
        raise CgroupError(f"the {controller} cgroup controller is not available{what}")
    return path


def read_keyed(path: str) -> dict[str, int]:
    """'key value' lines (memory.stat, cpu.stat, memory.events, memory.oom_control)."""
    out: dict[str, int] = {}
    try:
        text = read(path)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def read_pids(procs_file: str) -> list[int]:
    try:
        return [int(x) for x in read(procs_file).split()]
    except OSError:
        return []


def mkdir(path: str) -> bool:
    """Create ``path`` (parents included); True when this call created the last component."""
    try:
        os.mkdir(path, 0o755)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        try:
            os.mkdir(path, 0o755)
            return True
        except FileExistsError:
            return False


def rmdir(path: str, timeout: float = 5.0) -> None:
    """Remove a cgroup dir, retrying while the kernel still counts exiting tasks (EBUSY)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def rmdir_if_empty(path: str) -> None:
    """Remove an engine-owned parent once it has no children (another container may hold it: fine)."""
    with contextlib.suppress(OSError):
        os.rmdir(path)


def kill_all(procs_file: str, timeout: float = 5.0) -> None:
    """SIGKILL every task listed until none is left (tasks may fork while we kill: loop)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = read_pids(procs_file)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise CgroupError(f"processes {pids} of {os.path.dirname(procs_file)} survive SIGKILL")
        time.sleep(0.002)


class ContainerCgroup:
    """One container's cgroup. Subclasses fill in the backend-specific parts."""

    def __init__(self, container_id: str, config) -> None:
        self.container_id = container_id
        self.config = config

    # lifecycle
    def create(self) -> None:
        """Create the cgroup (and its parent) and apply the limits. Idempotent."""
        raise NotImplementedError

    def add(self, pid: int) -> None:
        """Move ``pid`` (with all its threads) into the cgroup."""
        raise NotImplementedError

    def destroy(self) -> None:
        """Kill whatever still runs in the cgroup and remove it. Idempotent."""
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def update(self, limits: CgroupLimits) -> None:
        """Write ``limits`` (None fields untouched), in an order the kernel accepts. create writes through it."""
        for step in self.limit_steps(limits):
            step.apply()

    def limit_steps(self, limits: CgroupLimits) -> list[LimitStep]:
        raise NotImplementedError

    # runtime
    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Host pids of every process in the container's cgroup."""
        raise NotImplementedError

    def oom_killed(self) -> bool:
        """Whether the kernel OOM killer killed a process of this cgroup since it was created."""
        raise NotImplementedError

    def stats(self) -> dict:
        """Usage figures: cpu_usage_ns, memory_usage (Docker's: without inactive file cache), memory_limit
        (the host's memory when unlimited, as Docker shows it), memory_cache, pids_current, pids_limit
        (0 unlimited), blkio_read_bytes, blkio_write_bytes (absent where the host cannot tell)."""
        raise NotImplementedError

    def paths(self) -> list[str]:
        """The cgroup directories (for tests and diagnostics)."""
        raise NotImplementedError
