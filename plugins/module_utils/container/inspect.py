"""Looking inside a container: `logs`, `top`, `stats` samples."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, ContainerNotFound, EngineError, InvalidArgument

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..records.containers import ContainerRecord, ContainerStore

# (record, (monotonic time, cgroup stats) before, the same after) -> one `docker stats` row
StatsRow = Callable[[Any, "tuple[float, dict] | None", "tuple[float, dict] | None"], dict]


class InspectVerbs:
    """The looking-inside verbs of ``ContainerService`` (a mixin: it provides ``lookup``, ``list``, ``store``)."""

    config: EngineConfig
    store: ContainerStore
    stats_row: StatsRow | None
    lookup: Callable[[str], ContainerRecord]
    list: Callable[..., list]

    def logs(self, ref: str, follow: bool = False, tail: str | int = "all", since: str | None = None,
             until: str | None = None):
        """`docker logs`: entries of the json-file log (an iterator; with ``follow`` it ends with the container)."""
        from ..runtime import logs

        record = self.lookup(ref)
        if record.config.host_config.log_driver == "none":
            raise InvalidArgument('configured logging driver does not support reading')
        since_s = logs.parse_time_arg(since) if since else None
        until_s = logs.parse_time_arg(until) if until else None
        path = logs.log_path(record.directory, record.id)
        try:
            st = os.stat(path)
            offset, inode = st.st_size, st.st_ino
        except FileNotFoundError:
            offset, inode = 0, 0
        entries = logs.read_entries(path)
        if str(tail) not in ("all", "-1", ""):
            try:
                count = int(tail)
            except ValueError:
                raise InvalidArgument(f"invalid value for --tail: {tail}") from None
            entries = entries[-count:] if count > 0 else []

        def selected(items):
            for entry in items:
                if since_s is not None and entry.seconds < since_s:
                    continue
                if until_s is not None and entry.seconds > until_s:
                    return
                yield entry

        def all_entries():
            yield from entries
            if follow and (until_s is None or until_s > time.time()):
                def running() -> bool:
                    try:
                        return self.store.load(record.id).state.running
                    except ContainerNotFound:
                        return False
                yield from logs.follow_entries(path, offset, inode, running)

        return selected(all_entries())

    def top(self, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
        """`docker top`: the host's `ps` (default -ef), rows of the container's processes only."""
        import subprocess

        record = self.lookup(ref)
        if record.state.status not in ("running", "paused"):
            raise Conflict(f"Container {record.id} is not running")
        pids = container_pids(record.state.pid)
        args = list(ps_args or []) or ["-ef"]
        proc = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"Error running ps: {proc.stderr.strip()}")
        lines = proc.stdout.splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise EngineError("Couldn't find PID field in ps output")
        pid_index = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_index and fields[pid_index].isdigit() and int(fields[pid_index]) in pids:
                rows.append(fields)
        return titles, rows

    def stats(self, refs: list[str] | None = None, all: bool = False) -> list[dict]:
        """One `docker stats --no-stream` sample per container (CPU % over a short interval)."""
        from ..linux.cgroups import container_cgroup

        if self.stats_row is None:  # the row's format is the system views' (above this layer): the engine's
            raise EngineError("stats: no row format given to this container service")
        records = [self.lookup(r) for r in refs] if refs else self.list(all=all)
        first = {}
        for record in records:
            if record.state.status in ("running", "paused"):
                with contextlib.suppress(Exception):
                    first[record.id] = (time.monotonic(), container_cgroup(record.id, self.config).stats())
        if first:
            time.sleep(0.5)
        rows = []
        for record in records:
            before = first.get(record.id)
            after = None
            if before is not None:
                with contextlib.suppress(Exception):
                    after = (time.monotonic(), container_cgroup(record.id, self.config).stats())
            rows.append(self.stats_row(record, before, after))
        return rows


def container_pids(pid1: int) -> set[int]:
    """Host pids of the processes in the pid namespace of ``pid1``."""
    try:
        target = os.readlink(f"/proc/{pid1}/ns/pid")
    except OSError:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == target:
                    pids.add(int(entry))
            except OSError:
                continue
    return pids
