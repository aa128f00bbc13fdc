"""The `pycontainer_network` module's logic: desired network state -> engine calls, with check and diff mode
(community.docker.docker_network's rules for the options it shares)."""

from __future__ import annotations

import ipaddress
from typing import Any

from .engine import Engine
from .errors import NotFound


def _differences(current: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Options the existing network does not have as asked (only those the user set count)."""
    diffs = []
    config = (current.get("IPAM", {}).get("Config") or [{}])[0]
    wanted = params.get("subnet")
    if wanted and ipaddress.ip_network(wanted, strict=False) != ipaddress.ip_network(config.get("Subnet", "")):
        diffs.append("subnet")
    if params.get("gateway") and params["gateway"] != config.get("Gateway"):
        diffs.append("gateway")
    if params.get("internal") is not None and bool(params["internal"]) != bool(current.get("Internal")):
        diffs.append("internal")
    if params.get("labels") is not None:
        have = current.get("Labels") or {}
        if {str(k): str(v) for k, v in params["labels"].items()} != have:
            diffs.append("labels")
    return diffs


def manage_network(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    name = params["name"]
    state = params.get("state") or "present"
    networks = engine.networks
    try:
        before: dict[str, Any] = networks.inspect(name)
    except NotFound:
        before = {}
    if before and before["Name"] != name:
        before = {}  # an ID prefix matched: the module manages networks by name
    result: dict[str, Any] = {"changed": False, "actions": []}

    def remove() -> None:
        result["actions"].append(f"Removed network {name}")
        if not check_mode:
            networks.remove(name)

    if state == "absent":
        if before:
            remove()
        result.update(changed=bool(before), network={}, diff={"before": before, "after": {}})
        return result

    diffs = _differences(before, params) if before else []
    if diffs:
        result["diffs"] = diffs
        remove()
    after = before
    if not before or diffs:
        labels = {str(k): str(v) for k, v in (params.get("labels") or {}).items()}
        result["actions"].append(f"Created network {name}")
        if check_mode:
            ipam = {"Config": [{"Subnet": params.get("subnet") or "", "Gateway": params.get("gateway") or ""}]}
            after = {"Name": name, "Driver": params.get("driver") or "bridge", "Labels": labels,
                     "Internal": bool(params.get("internal")), "IPAM": ipam}
        else:
            networks.create(name, subnet=params.get("subnet") or "", gateway=params.get("gateway") or "",
                            labels=labels, internal=bool(params.get("internal")),
                            driver=params.get("driver") or "bridge")
            after = networks.inspect(name)
    result.update(changed=bool(result["actions"]), network=after, diff={"before": before, "after": after})
    return result
