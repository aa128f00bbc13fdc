"""Time and size formatting as Docker's CLI prints them (go-units HumanDuration / HumanSize)."""

from __future__ import annotations

import datetime as _dt


def utc_now_rfc3339() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch for an RFC 3339 timestamp (nanosecond fractions are cut to microseconds)."""
    if not text:
        return 0.0
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, rest = value.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        return _dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return 0.0


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision (decimal units: 1 kB = 1000 B)."""
    i = 0
    while size >= 1000.0 and i < len(_DECIMAL_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{_DECIMAL_UNITS[i]}"


_BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def human_binary_size(size: float) -> str:
    """go-units BytesSize (binary units, 4 significant digits), as `docker info` shows memory."""
    i = 0
    while size >= 1024.0 and i < len(_BINARY_UNITS) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{_BINARY_UNITS[i]}"
