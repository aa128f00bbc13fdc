"""Signals as Docker names them, and killing a process known by pid and start time."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from ..errors import InvalidArgument
from ..records.containers import process_alive


def parse_signal(value: str | int) -> int:
    """Docker's signal names: KILL, SIGKILL, 9, sigterm."""
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        number = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
        if number is None:
            raise InvalidArgument(f"Invalid signal: {value}")
    if not 0 < int(number) < 65:
        raise InvalidArgument(f"Invalid signal: {value}")
    return int(number)


def kill_and_wait(pid: int, start_time: int, timeout: float = 10.0) -> None:
    if not process_alive(pid, start_time):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid, start_time):
        time.sleep(0.01)
