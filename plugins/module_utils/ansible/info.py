"""The `pycontainer_info` module's logic: engine facts, read-only."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from .glue import filter_items


def gather_facts(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    from ..system.facts import engine_info

    facts: dict[str, Any] = {"info": engine_info(engine)}
    if params.get("disk_usage", True):
        from ..system.disk_usage import measure

        facts["df"] = measure(engine).summary()
    if params.get("containers"):
        from ..container.filters import filter_containers, parse_filters
        from ..system.views import container_row

        records = filter_containers(engine.containers.list(all=True),
                                    parse_filters(filter_items(params.get("containers_filters"))), engine)
        facts["containers"] = [container_row(r, trunc=False) for r in records]
    if params.get("images"):
        from ..system.views import image_rows

        facts["images"] = [row for record in engine.images.list() for row in image_rows(record, trunc=False)]
    return {"changed": False, "ansible_facts": {"pycontainer": facts}}
