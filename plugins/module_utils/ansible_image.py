"""The `pycontainer_image` module's logic: desired image state -> actions, with check and diff mode."""

from __future__ import annotations

from typing import Any

from .engine import Engine
from .errors import ImageNotFound
from .image.reference import parse_reference
from .views import inspect_image


def image_reference(name: str, tag: str | None) -> str:
    """``name`` with ``tag`` applied when the name carries neither tag nor digest (as community.docker)."""
    if tag:
        last = name.rsplit("/", 1)[-1]
        if ":" not in last and "@" not in name:
            return f"{name}:{tag}"
    return name


def ensure_image_present(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    reference = image_reference(params["name"], params.get("tag"))
    familiar = parse_reference(reference).familiar  # validates the reference before anything else
    try:
        before = engine.images.inspect(reference)
    except ImageNotFound:
        before = None
    result: dict[str, Any] = {"changed": False, "actions": []}
    if before is not None and params.get("pull", "missing") == "missing":
        result["image"] = inspect_image(before)
    elif check_mode:
        if before is None:
            result.update(changed=True, actions=[f"Pulled image {familiar}"])
        else:
            # Without pulling we cannot know the remote ID cheaply yet: report the present image unchanged.
            result["image"] = inspect_image(before)
    else:
        after = engine.images.pull(reference, platform=params.get("platform"))
        result["image"] = inspect_image(after)
        if before is None or before.id != after.id:
            result.update(changed=True, actions=[f"Pulled image {familiar}"])
    after_id = result["image"]["Id"] if "image" in result else "(pulled)"
    result["diff"] = {"before": {"id": before.id if before else None}, "after": {"id": after_id}}
    return result
