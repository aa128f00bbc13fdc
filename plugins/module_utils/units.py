"""Sizes as Docker's CLI reads them (go-units RAMInBytes): one parser for the CLI and the modules."""

from __future__ import annotations

import re

from .errors import InvalidArgument


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: binary units, 512m = 512 MiB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?\s*", str(text).lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * 1024 ** "bkmgtp".index(m.group(2) or "b"))
