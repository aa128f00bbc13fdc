"""`ps --filter`: Docker's container filters (id, name, label, status, ancestor, exited, volume).

Values of one key are alternatives (OR); different keys must all match (AND), as in Docker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument

if TYPE_CHECKING:
    from ..records.containers import ContainerRecord

KEYS = ("id", "name", "label", "status", "ancestor", "exited", "volume", "before", "since", "network")
# Docker filters this engine has nothing to match with yet: refused, never silently ignored.
UNSUPPORTED = ("health", "publish", "expose", "isolation", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        if key in UNSUPPORTED:
            raise InvalidArgument(f"filter '{key}' is not supported by this engine yet")
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
    from ..event_filters import label_matches
    from ..runtime.volumes import uses_volume

    def created_of(ref: str) -> str:
        # before/since name a container; Docker compares creation times.
        match = [r for r in records if r.id.startswith(ref) or r.name == ref]
        if not match:
            raise InvalidArgument(f"No such container: {ref}")
        return match[0].config.created

    bounds = {key: [created_of(v) for v in filters.get(key, [])] for key in ("before", "since")}

    def ok(record: ContainerRecord) -> bool:
        checks = {
            "id": record.id.startswith,
            "name": lambda v: re.search(v, record.name) is not None,
            "label": lambda v: label_matches(record.config.labels, v),
            "before": lambda v: all(record.config.created < t for t in bounds["before"]),
            "since": lambda v: all(record.config.created > t for t in bounds["since"]),
            "network": lambda v: v in _networks(record),
            "status": lambda v: record.state.status == v,
            "exited": lambda v: record.state.status == "exited" and record.state.exit_code == int(v),
            "ancestor": lambda v: _ancestor(record, v, engine.images if engine else None),
            "volume": lambda v: uses_volume(record.directory, v),
        }
        return all(any(checks[key](v) for v in values) for key, values in filters.items())

    return [r for r in records if ok(r)]


def _networks(record: ContainerRecord) -> set[str]:
    host = record.config.host_config
    return {host.network_mode, *host.networks}
