"""`ps --filter`: Docker's container filters (id, name, label, status, ancestor, exited, volume).

Values of one key are alternatives (OR); different keys must all match (AND), as in Docker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument

if TYPE_CHECKING:
    from ..container_store import ContainerRecord

KEYS = ("id", "name", "label", "status", "ancestor", "exited", "volume", "before", "since", "health",
        "network", "publish", "expose", "isolation", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        if key not in KEYS:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "status" and value not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={value}'")
        if key == "exited":
            try:
                int(value)
            except ValueError:
                raise InvalidArgument(f"invalid filter 'exited={value}'") from None
        filters.setdefault(key, []).append(value)
    return filters


def _label(labels: dict[str, str], expr: str) -> bool:
    key, sep, value = expr.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _ancestor(record: ContainerRecord, value: str, images: Any) -> bool:
    image_id = record.config.image
    if value in (record.config.image_name, image_id) or image_id.split(":")[-1].startswith(value.split(":")[-1]):
        return True
    try:
        return images.inspect(value).id == image_id
    except Exception:
        return False


def filter_containers(records: list[ContainerRecord], filters: dict[str, list[str]], engine: Any = None
                      ) -> list[ContainerRecord]:
    if not filters:
        return records
    from .volumes import uses_volume

    def ok(record: ContainerRecord) -> bool:
        checks = {
            "id": lambda v: record.id.startswith(v),
            "name": lambda v: re.search(v, record.name) is not None,
            "label": lambda v: _label(record.config.labels, v),
            "status": lambda v: record.state.status == v,
            "exited": lambda v: record.state.status == "exited" and record.state.exit_code == int(v),
            "ancestor": lambda v: _ancestor(record, v, engine.images if engine else None),
            "volume": lambda v: uses_volume(record.directory, v),
        }
        for key, values in filters.items():
            check = checks.get(key)
            if check is not None and not any(check(v) for v in values):
                return False
        return True

    return [r for r in records if ok(r)]
