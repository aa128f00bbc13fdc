"""The `pycontainer_image` module's logic: desired image state -> actions, with check and diff mode.

``changed`` means the local image ID behind the name changed (pulled, loaded, imported or removed);
a push is reported in ``actions`` but changes nothing locally.
"""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..errors import ImageNotFound, InvalidArgument
from ..image.reference import parse_reference
from ..system.views import inspect_image


def image_reference(name: str, tag: str | None) -> str:
    """``name`` with ``tag`` applied when the name carries neither tag nor digest (as community.docker)."""
    if tag:
        last = name.rsplit("/", 1)[-1]
        if ":" not in last and "@" not in name:
            return f"{name}:{tag}"
    return name


def _lookup(engine: Engine, reference: str):
    try:
        return engine.images.inspect(reference)
    except ImageNotFound:
        return None


def ensure_image(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    reference = image_reference(params["name"], params.get("tag"))
    ref = parse_reference(reference)  # validates the reference before anything else
    familiar = ref.familiar
    before = _lookup(engine, reference)
    before_id = before.id if before else None
    actions: list[str] = []
    after_id: str | None = before_id
    after = before
    force = bool(params.get("force"))

    if params.get("state", "present") == "absent":
        if before is not None:
            actions.append(f"Removed image {familiar}")
            if not check_mode:
                engine.images.remove(reference, force=force)
                after = _lookup(engine, reference)
            after_id = after.id if after and not check_mode else None
        return _result(before_id, after_id, None if check_mode else after, actions)

    source = params.get("source") or "pull"
    path = params.get("path")
    if source in ("load", "import") and not path:
        raise InvalidArgument(f"source={source} needs path")
    wanted = before is None or force or (source == "pull" and params.get("pull", "missing") == "always")
    if wanted:
        if source == "pull":
            if check_mode:
                after_id = engine.images.resolve_remote(reference, params.get("platform")).image_id
            else:
                after = engine.images.pull(reference, platform=params.get("platform"))
                after_id = after.id
            if after_id != before_id:
                actions.append(f"Pulled image {familiar}")
        elif source == "load":
            if check_mode:
                after_id = _archive_id(engine, path, familiar)
            else:
                engine.images.load(path=path)
                after = _lookup(engine, reference)
                if after is None:
                    raise ImageNotFound(f"the archive {path} does not contain an image named {familiar}")
                after_id = after.id
            if after_id != before_id:
                actions.append(f"Loaded image {familiar} from {path}")
        else:
            if check_mode:
                after_id = "(imported)"  # an import's ID includes its creation time: always new
            else:
                after, _changed = engine.images.import_image(path, reference, platform=params.get("platform"))
                after_id = after.id
            actions.append(f"Imported image {familiar} from {path}")
    if params.get("push"):
        if after_id is None and not check_mode:
            raise ImageNotFound(f"No such image: {familiar}")
        if not check_mode:
            engine.images.push(reference)
        actions.append(f"Pushed image {familiar}")
    return _result(before_id, after_id, after, actions)


def _archive_id(engine: Engine, path: str, familiar: str) -> str:
    images = engine.images.archive_ids(path)
    for image_id, tags in images:
        if familiar in [parse_reference(t).familiar for t in tags]:
            return image_id
    raise ImageNotFound(f"the archive {path} does not contain an image named {familiar}")


def _result(before_id, after_id, after, actions: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "changed": before_id != after_id,
        "actions": actions,
        "diff": {"before": {"id": before_id}, "after": {"id": after_id}},
    }
    if after is not None:
        result["image"] = inspect_image(after)
    return result


# The name the module used before state/source existed.
ensure_image_present = ensure_image
