"""The `pycontainer_volume` module's logic: desired volume state -> engine calls, with check and diff mode
(community.docker.docker_volume's options and rules)."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..errors import NotFound
from ..runtime.volumes import inspect_volume


def _differences(current: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Options the existing volume does not have as asked (only those the user set count)."""
    diffs = []
    if params.get("driver") and params["driver"] != current["Driver"]:
        diffs.append("driver")
    if params.get("labels") is not None:
        have = current["Labels"] or {}
        if any(have.get(k) != str(v) for k, v in params["labels"].items()):
            diffs.append("labels")
    if params.get("driver_options") is not None:
        have = current["Options"] or {}
        if {k: str(v) for k, v in params["driver_options"].items()} != have:
            diffs.append("driver_options")
    return diffs


def manage_volume(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name = params["volume_name"]
    state = params.get("state") or "present"
    try:
        before: dict[str, Any] = inspect_volume(engine.volumes.inspect(name))
    except NotFound:
        before = {}
    result: dict[str, Any] = {"changed": False, "actions": []}

    def remove() -> None:
        result["actions"].append(f"Removed volume {name}")
        if not check_mode:
            engine.volumes.remove(name)

    if state == "absent":
        if before:
            remove()
        result.update(changed=bool(before), volume={}, diff={"before": before, "after": {}})
        return result

    recreate = params.get("recreate") or "never"
    if before and (recreate == "always" or (recreate == "options-changed" and _differences(before, params))):
        remove()
        before_existed = True
    else:
        before_existed = False
    after = before
    if not before or before_existed:
        labels = {str(k): str(v) for k, v in (params.get("labels") or {}).items()}
        options = {str(k): str(v) for k, v in (params.get("driver_options") or {}).items()}
        result["actions"].append(f"Created volume {name}")
        if check_mode:
            after = {"Name": name, "Driver": params.get("driver") or "local", "Labels": labels or None,
                     "Options": options or None, "Scope": "local"}
        else:
            after = inspect_volume(engine.volumes.create(name, driver=params.get("driver") or "local",
                                                         labels=labels, options=options))
    result.update(changed=bool(result["actions"]), volume=after, diff={"before": before, "after": after})
    return result
