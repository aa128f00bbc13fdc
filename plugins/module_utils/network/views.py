"""inspect's NetworkSettings of a container, as Docker shows it running and stopped."""

from __future__ import annotations

from typing import Any

# What a network endpoint holds only while the container runs (Docker blanks them once it stops).
_RUNTIME_FIELDS = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
                   "DNSNames": None}


def network_settings(saved: dict[str, Any] | None, running: bool) -> dict[str, Any]:
    """``saved``: what networking reported at the last start (kept in the container's state)."""
    if not saved:
        return {"Networks": {}}
    if running:
        return dict(saved)
    stopped = {**saved, **{k: v for k, v in _RUNTIME_FIELDS.items() if k in saved and k != "DNSNames"}}
    stopped["Ports"] = {}
    stopped["Networks"] = {name: {**ep, **{k: v for k, v in _RUNTIME_FIELDS.items() if k in ep}}
                           for name, ep in (saved.get("Networks") or {}).items()}
    return stopped
