"""Prune: what `container prune` and `system prune` remove, with Docker's filters, and what it reclaims.

`system prune` runs the kinds in Docker's order (containers, networks, volumes when asked, images, build
cache) under one non-blocking lock per engine root: a second prune at the same time is refused cleanly
rather than racing the first. Each kind records its own `prune` event with the bytes it reclaimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import Conflict, ContainerNotFound, EngineError, InvalidArgument
from ..faults import fault_point
from ..fsutil import ensure_dir

if TYPE_CHECKING:
    from ..image.service import RemovalReport
    from .services import EngineServices

PRUNABLE_STATES = ("created", "exited", "dead")


@dataclass
class PruneFilter:
    """Docker's prune filters: ``until=<time>``, ``label=<k>[=<v>]``, ``label!=<k>[=<v>]`` (all must match)."""

    until_ns: int | None = None
    labels: list[tuple[str, bool]] = field(default_factory=list)   # (wanted "k" or "k=v", must match)

    @classmethod
    def parse(cls, items: list[str] | None, allowed: tuple[str, ...] = ("until", "label", "label!")) -> PruneFilter:
        from ..event_filters import parse_time

        result = cls()
        for item in items or []:
            key, sep, value = item.partition("=")
            if not sep or key not in allowed:
                raise InvalidArgument(f"invalid filter '{item}'")
            if key == "until":
                result.until_ns = parse_time(value)
            else:
                result.labels.append((value, key == "label"))
        return result

    def matches(self, created_rfc3339: str, labels: dict[str, str]) -> bool:
        from ..event_filters import label_matches
        from ..timefmt import parse_rfc3339

        if self.until_ns is not None and parse_rfc3339(created_rfc3339) * 1e9 >= self.until_ns:
            return False
        return all(label_matches(labels, wanted) == positive for wanted, positive in self.labels)


@dataclass
class ContainerPruneReport:
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0
    failed: dict[str, str] = field(default_factory=dict)   # id -> why it could not be removed (the rest go on)


def prune_containers(engine: EngineServices, filters: list[str] | None = None) -> ContainerPruneReport:
    """`container prune`: every stopped container that matches the filters."""
    from ..treesize import tree_size

    matcher = PruneFilter.parse(filters)
    report = ContainerPruneReport()
    for record in engine.containers.list(all=True):
        if record.state.status not in PRUNABLE_STATES or not matcher.matches(record.config.created,
                                                                             record.config.labels):
            continue
        size = tree_size(os.path.join(record.directory, "upper"))
        try:
            engine.containers.remove(record.id)
        except ContainerNotFound:
            continue  # removed meanwhile
        except Conflict:
            continue  # it was started again meanwhile: not ours to remove
        except (EngineError, OSError) as exc:  # one container that cannot go does not stop the prune
            report.failed[record.id] = str(exc)
        else:
            report.deleted.append(record.id)
            report.reclaimed += size
            fault_point("prune.after_remove")
    engine.events.record("container", "prune", "", {"reclaimed": report.reclaimed})
    return report


def prune_networks(engine: EngineServices, filters: list[str] | None = None) -> list[str]:
    """`network prune`: user-defined networks no container uses, that match the filters."""
    matcher = PruneFilter.parse(filters)
    removed = engine.networks.prune(lambda doc: matcher.matches(doc.get("Created", ""), doc.get("Labels") or {}))
    engine.events.record("network", "prune", "", {"reclaimed": 0})
    return removed


@dataclass
class SystemPruneReport:
    containers: ContainerPruneReport
    networks: list[str]
    volumes: list[str]
    volumes_reclaimed: int
    images: RemovalReport

    @property
    def reclaimed(self) -> int:
        return self.containers.reclaimed + self.volumes_reclaimed + self.images.reclaimed


@contextlib.contextmanager
def prune_lock(engine: EngineServices) -> Iterator[None]:
    ensure_dir(engine.config.root)
    fd = os.open(os.path.join(engine.config.root, "prune.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("a prune operation is already running") from None
        yield
    finally:
        os.close(fd)


def prune_system(engine: EngineServices, all_images: bool = False, volumes: bool = False,
                 filters: list[str] | None = None) -> SystemPruneReport:
    """`system prune [-a] [--volumes] [--filter …]`."""
    PruneFilter.parse(filters)  # refuse a bad filter before removing anything
    with prune_lock(engine):
        containers = prune_containers(engine, filters)
        networks = prune_networks(engine, filters)
        volume_names, volume_bytes = [], 0
        if volumes:
            label_filters: dict[str, list[str]] = {}
            for item in filters or []:
                key, _sep, value = item.partition("=")
                if key in ("label", "label!"):
                    label_filters.setdefault(key, []).append(value)
            volume_names, volume_bytes = engine.volumes.prune(filters=label_filters)
        images = engine.images.prune(all_images=all_images, filters=filters)
    return SystemPruneReport(containers=containers, networks=networks, volumes=volume_names,
                             volumes_reclaimed=volume_bytes, images=images)
