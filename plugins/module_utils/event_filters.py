"""Reading the events journal as `docker events` does: time bounds, filters, and the printed forms."""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InvalidArgument

FILTER_KEYS = ("type", "event", "container", "image", "network", "volume", "label", "scope")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
             "h": 3_600_000_000_000}


def parse_time(text: str, now_ns: int | None = None) -> int:
    """Docker's --since/--until values, in nanoseconds since the epoch.

    A Unix timestamp (``1700000000`` or ``1700000000.5``), an RFC 3339 date or date-time, or a Go duration
    (``10m``, ``1h30m``) counted back from now.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds, _sep, fraction = value.partition(".")
        return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", value):
        total = sum(float(n) * _UNITS_NS[u] for n, u in _DURATION_RE.findall(value))
        return now_ns - int(total)
    try:
        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f'invalid time "{text}": use a Unix timestamp, RFC 3339 or a duration like 10m') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000


@dataclass
class EventFilter:
    """Docker's rules: values of one key are alternatives (OR), different keys must all match (AND)."""

    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: Iterable[str]) -> EventFilter:
        values: dict[str, list[str]] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{item}'")
            values.setdefault(key, []).append(value)
        return cls(values)

    def matches(self, event: dict) -> bool:
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        kind, actor_id = event.get("Type", ""), actor.get("ID", "")
        for key, wanted in self.values.items():
            if key == "type":
                ok = kind in wanted
            elif key == "event":
                # "exec_start: sh" style actions match on their verb too, as Docker does.
                ok = any(event.get("Action", "") == w or event.get("Action", "").split(":")[0] == w for w in wanted)
            elif key == "scope":
                ok = event.get("scope", "local") in wanted
            elif key == "label":
                ok = any(label_matches(attributes, w) for w in wanted)
            elif key == "image":
                ok = any(w in (attributes.get("image"), attributes.get("name") if kind == "image" else None)
                         or (kind == "image" and actor_id.startswith(w)) for w in wanted)
            else:  # container / network / volume: by ID (or prefix) or by name, for events of that type
                ok = kind == key and any(actor_id.startswith(w) or attributes.get("name") == w for w in wanted)
            if not ok:
                return False
        return True


def label_matches(labels: dict, wanted: str) -> bool:
    """Docker's label filter value: ``key`` (present) or ``key=value`` (equal). Shared by every filter."""
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def format_event_line(event: dict) -> str:
    """The line `docker events` prints by default."""
    nanos = event.get("timeNano") or event.get("time", 0) * 1_000_000_000
    seconds, fraction = divmod(nanos, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    actor = event.get("Actor") or {}
    line = f"{stamp}.{fraction:09d}Z {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line
