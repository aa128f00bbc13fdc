"""Opt-in phase timings: with ``PYCONTAINER_TRACE=1`` a command prints, when it ends, how many milliseconds
each of its phases took (``trace: <phase> <ms>`` lines on stderr), the monitor's phases included.

Phases are consecutive: ``mark(name)`` ends the phase ``name`` where the previous mark (or ``begin``) left off,
so the lines add up to the command's time from its start. The start is the console script's first line
(``cli/client.py``, on CLOCK_MONOTONIC, which every process shares): a command served by the warm CLI server
counts from its caller's start, handing over included. The interpreter's own start-up comes before that and
is not seen here (``bench/trace_bench.py`` measures it beside). Off, every call is a dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "PYCONTAINER_TRACE"
START_ENV = "PYCONTAINER_TRACE_START"  # the caller's start (seconds on CLOCK_MONOTONIC)

_phases: list[tuple[str, float]] | None = None
_last = 0.0


def enabled() -> bool:
    return _phases is not None


def begin(start: float | None = None) -> None:
    """Record from ``start`` (default: the caller's, from the environment, else now) if tracing is asked for.

    Read at call time, not import: a served command gets its caller's environment after the server imported us.
    """
    global _phases, _last
    if not os.environ.get(ENV):
        _phases = None
        return
    if start is None:
        try:
            start = float(os.environ[START_ENV])
        except (KeyError, ValueError):
            start = time.monotonic()
    _phases, _last = [], start


def begin_remote() -> None:
    """Record for one request of another process (the monitor's part of a start), from now."""
    global _phases, _last
    _phases, _last = [], time.monotonic()


def mark(phase: str) -> None:
    global _last
    if _phases is None:
        return
    now = time.monotonic()
    _phases.append((phase, (now - _last) * 1000))
    _last = now


def take() -> list[tuple[str, float]]:
    """The phases so far, and stop recording (the monitor sends them in its reply)."""
    global _phases
    phases, _phases = _phases or [], None
    return phases


def add(phases: list, prefix: str) -> None:
    """Phases measured by another process (inside the span since the last mark): listed, and the rest of
    the span is attributed to ``prefix`` + ``round trip``."""
    global _last
    if _phases is None:
        return
    now = time.monotonic()
    inside = 0.0
    for name, ms in phases:
        _phases.append((f"{prefix}{name}", float(ms)))
        inside += float(ms)
    _phases.append((f"{prefix}round trip", max(0.0, (now - _last) * 1000 - inside)))
    _last = now


def report() -> None:
    """Print the phases (the last one, ``rest``, up to now) and stop recording."""
    if _phases is None:
        return
    mark("rest")
    total = 0.0
    for name, ms in take():
        total += ms
        sys.stderr.write(f"trace: {name} {ms:.1f}\n")
    sys.stderr.write(f"trace: total {total:.1f}\n")
    sys.stderr.flush()
