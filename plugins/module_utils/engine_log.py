"""The engine's own log, written by every command (daemonless: there is no daemon log to read).

One line per action and per error, appended with a single O_APPEND write, so concurrent commands never
interleave. Text lines are logfmt as dockerd writes them (``time=… level=info msg="…" key=value``); JSON
lines carry the same keys. The file is reopened for every line, so logrotate's rename needs no signal.
Cheap on purpose: the `logging` package would cost every command its import time.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any

from .errors import InvalidArgument

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}


class EngineLog:
    def __init__(self, path: str, level: str = "info", fmt: str = "text") -> None:
        if level not in LEVELS:
            raise InvalidArgument(f'invalid log level "{level}": use one of debug, info, warn, error')
        if fmt not in ("text", "json"):
            raise InvalidArgument(f'invalid log format "{fmt}": use text or json')
        self.path = path
        self.threshold = LEVELS[level]
        self.fmt = fmt

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Write one line; logging never fails the command it describes."""
        if not self.path or LEVELS[level] < self.threshold:
            return
        stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        record = {"time": stamp, "level": "warning" if level == "warn" else level, "msg": message, **fields}
        if self.fmt == "json":
            line = json.dumps(record, separators=(",", ":"), default=str)
        else:
            line = " ".join(f"{k}={_logfmt(v)}" for k, v in record.items())
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o750, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)


def _logfmt(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return json.dumps(text)
