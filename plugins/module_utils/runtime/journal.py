"""The engine's log and event journal, opened the same way by the engine facade and by the monitor."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..engine_log import EngineLog
from ..events import EventJournal

if TYPE_CHECKING:
    from ..config import EngineConfig


def open_log_and_journal(config: EngineConfig, log_level: str | None = None) -> tuple[EngineLog, EventJournal]:
    """The engine's log and event journal; every recorded event is also one line of the log."""
    config.paths.secure()  # root-only state, also for roots an older version made looser
    log = EngineLog(config.log_file, log_level or config.log_level, config.log_format)

    def log_event(event: dict) -> None:
        actor = event["Actor"]
        log.info(f"{event['Type']} {event['Action']}", id=actor["ID"], **actor["Attributes"])

    events = EventJournal(os.path.join(config.root, "events"), max_bytes=config.events_max_size,
                          max_age_s=config.events_max_age, on_record=log_event)
    return log, events
