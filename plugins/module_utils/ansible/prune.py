"""The `pycontainer_prune` module's logic: prune each kind asked for; check mode lists without removing."""

from __future__ import annotations

from typing import Any

from ..engine import Engine
from ..system.prune import PRUNABLE_STATES, PruneFilter, prune_containers, prune_lock, prune_networks
from .glue import filter_items as _items


def _would_prune(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    """What a real run would delete (no bytes: nothing is measured for removal)."""
    result: dict[str, Any] = {}
    if params["containers"]:
        matcher = PruneFilter.parse(_items(params.get("containers_filters")))
        result["containers"] = [r.id for r in engine.containers.list(all=True)
                                if r.state.status in PRUNABLE_STATES
                                and matcher.matches(r.config.created, r.config.labels)]
    if params["networks"]:
        matcher = PruneFilter.parse(_items(params.get("networks_filters")))
        used = {name for r in engine.containers.list(all=True)
                for name in (r.config.host_config.network_mode, *r.config.host_config.networks)}
        result["networks"] = [doc["Name"] for doc in engine.networks.list()
                              if doc["Name"] not in ("bridge", "host", "none") and doc["Name"] not in used
                              and matcher.matches(doc.get("Created", ""), doc.get("Labels") or {})]
    if params["volumes"]:
        result["volumes"] = [v.name for v in engine.volumes.list() if v.anonymous and not engine.volumes.users(v.name)]
    if params["images"]:
        wanted_all = str((params.get("images_filters") or {}).get("dangling", "true")).lower() in ("false", "0")
        used = {r.config.image for r in engine.containers.list(all=True)}
        result["images"] = [i.id for i in engine.images.list()
                            if i.id not in used and (wanted_all or not i.repo_tags)]
    return result


def prune(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if check_mode:
        would = _would_prune(engine, params)
        result = {f"{kind}": ids for kind, ids in would.items()}
        result["changed"] = any(would.values())
        return result
    result: dict[str, Any] = {}
    with prune_lock(engine):
        if params["containers"]:
            report = prune_containers(engine, _items(params.get("containers_filters")))
            result.update(containers=report.deleted, containers_space_reclaimed=report.reclaimed)
        if params["networks"]:
            result["networks"] = prune_networks(engine, _items(params.get("networks_filters")))
        if params["volumes"]:
            names, reclaimed = engine.volumes.prune(filters={
                k: v if isinstance(v, list) else [v] for k, v in (params.get("volumes_filters") or {}).items()})
            result.update(volumes=names, volumes_space_reclaimed=reclaimed)
        if params["images"]:
            report = engine.images.prune(filters=_items(params.get("images_filters")))
            result.update(images=report.deleted, images_space_reclaimed=report.reclaimed)
    result["changed"] = any(result.get(k) for k in ("containers", "networks", "volumes", "images"))
    return result
