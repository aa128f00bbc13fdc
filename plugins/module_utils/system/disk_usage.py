"""`system df`: what the store takes on disk, computed as Docker computes it.

Sizes are the bytes of the files themselves (each hardlinked inode once), measured on disk:
- an image's size is the sum of its layers; a layer shared by several images counts once in the total;
- ACTIVE images are used by at least one container; their unique bytes are not reclaimable (Docker's rule:
  reclaimable = all layers - the unique size of active images);
- a container's size is its writable layer; running (or paused) containers' bytes are not reclaimable;
- volumes by usage; volumes no container references are reclaimable.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..treesize import tree_size

if TYPE_CHECKING:
    from .services import EngineServices

ACTIVE_STATES = ("running", "paused", "restarting")


@dataclass
class ImageUsage:
    id: str
    repo_tags: list[str]
    created: str
    size: int
    shared_size: int
    containers: int

    @property
    def unique_size(self) -> int:
        return self.size - self.shared_size


@dataclass
class ContainerUsage:
    id: str
    name: str
    image: str
    command: str
    created: str
    status: str
    state: str
    size_rw: int


@dataclass
class VolumeUsage:
    name: str
    links: int
    size: int


@dataclass
class DiskUsage:
    layers_size: int = 0
    images: list[ImageUsage] = field(default_factory=list)
    containers: list[ContainerUsage] = field(default_factory=list)
    volumes: list[VolumeUsage] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per kind: TotalCount, Active, Size, Reclaimable, in bytes (the numbers behind the table)."""
        active_unique = sum(i.unique_size for i in self.images if i.containers)
        running = sum(c.size_rw for c in self.containers if c.state in ACTIVE_STATES)
        container_bytes = sum(c.size_rw for c in self.containers)
        volume_bytes = sum(v.size for v in self.volumes)
        return {
            "Images": {"TotalCount": len(self.images), "Active": sum(1 for i in self.images if i.containers),
                       "Size": self.layers_size, "Reclaimable": self.layers_size - active_unique},
            "Containers": {"TotalCount": len(self.containers),
                           "Active": sum(1 for c in self.containers if c.state in ACTIVE_STATES),
                           "Size": container_bytes, "Reclaimable": container_bytes - running},
            "Volumes": {"TotalCount": len(self.volumes), "Active": sum(1 for v in self.volumes if v.links),
                        "Size": volume_bytes, "Reclaimable": sum(v.size for v in self.volumes if not v.links)},
            "BuildCache": {"TotalCount": 0, "Active": 0, "Size": 0, "Reclaimable": 0},
        }


def measure(engine: EngineServices) -> DiskUsage:
    from .views import container_row

    images = engine.images.list()
    containers = engine.containers.list(all=True)
    store = engine.images.store
    layer_sizes: dict[str, int] = {}
    layer_users: Counter[str] = Counter()
    for image in images:
        for diff_id in set(image.diff_ids):
            layer_users[diff_id] += 1
            if diff_id not in layer_sizes:
                layer_sizes[diff_id] = tree_size(store.layer_path(diff_id))
    users_by_image = Counter(c.config.image for c in containers)
    usage = DiskUsage(layers_size=sum(layer_sizes.values()))
    for image in images:
        diff_ids = set(image.diff_ids)
        usage.images.append(ImageUsage(
            id=image.id, repo_tags=list(image.repo_tags), created=image.created,
            size=sum(layer_sizes[d] for d in diff_ids),
            shared_size=sum(layer_sizes[d] for d in diff_ids if layer_users[d] > 1),
            containers=users_by_image.get(image.id, 0)))
    for record in containers:
        row = container_row(record)
        usage.containers.append(ContainerUsage(
            id=record.id, name=record.name, image=record.config.image_name, command=row["Command"],
            created=row["RunningFor"], status=row["Status"], state=record.state.status,
            size_rw=tree_size(os.path.join(record.directory, "upper"))))
    usage.volumes = _volumes(engine)
    return usage


def _volumes(engine: EngineServices) -> list[VolumeUsage]:
    volumes = getattr(engine, "volumes", None)
    if volumes is None:
        return []
    return [VolumeUsage(name=v["Name"], links=v.get("UsageData", {}).get("RefCount", 0),
                        size=v.get("UsageData", {}).get("Size", 0)) for v in volumes.usage()]


def as_facts(usage: DiskUsage) -> dict[str, Any]:
    return usage.summary()
