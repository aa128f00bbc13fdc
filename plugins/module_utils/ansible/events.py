"""The `pycontainer_events` module's logic: events of a time window, filtered, as a list (read-only)."""

from __future__ import annotations

import time
from typing import Any

from ..engine import Engine
from ..event_filters import EventFilter, parse_time
from .glue import filter_items


def list_events(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    now_ns = time.time_ns()
    since = parse_time(params["since"], now_ns) if params.get("since") else 0
    until = parse_time(params["until"], now_ns) if params.get("until") else now_ns
    event_filter = EventFilter.parse(filter_items(params.get("filters")))
    events = [e for e in engine.events.read(since_ns=since, until_ns=until) if event_filter.matches(e)]
    return {"changed": False, "events": events}
