"""The `pycontainer_network` module's logic: desired network state -> engine calls, with check and diff mode
(community.docker.docker_network's rules for the options it shares)."""

from __future__ import annotations

import ipaddress
from typing import Any

from ..engine import Engine
from ..errors import NotFound


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
        if params.get("force"):
            for container_id, member in sorted((before.get("Containers") or {}).items()):
                result["actions"].append(f"Disconnected container {member['Name']}")
                if not check_mode:
                    networks.disconnect(name, engine.containers.lookup(container_id), force=True)
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


# --- the pycontainer module's networking options ---------------------------------------------------------

CONTAINER_NETWORK_ARGUMENTS: dict[str, dict[str, Any]] = {
    "published_ports": {"type": "list", "elements": "str", "aliases": ["ports"]},
    "publish_all_ports": {"type": "bool"},  # unset: not compared (the container's stays)
    "exposed_ports": {"type": "list", "elements": "str", "aliases": ["exposed", "expose"]},
    "networks": {"type": "list", "elements": "dict", "options": {
        "name": {"type": "str", "required": True},
        "ipv4_address": {"type": "str"},
        "aliases": {"type": "list", "elements": "str"},
    }},
    "dns_servers": {"type": "list", "elements": "str"},
    "dns_search_domains": {"type": "list", "elements": "str"},
    "dns_opts": {"type": "list", "elements": "str"},
    "etc_hosts": {"type": "dict"},
}


def container_network_fields(params: dict[str, Any]) -> dict[str, Any]:
    """HostConfig keyword arguments for the pycontainer module's networking options (and network_mode)."""
    from ..network.etcfiles import parse_extra_host
    from ..network.ports import merge_bindings, split_port_key

    networks = {}
    for item in params.get("networks") or []:
        settings: dict[str, Any] = {}
        if item.get("ipv4_address"):
            settings["ipv4_address"] = item["ipv4_address"]
        if item.get("aliases"):
            settings["aliases"] = list(item["aliases"])
        networks[item["name"]] = settings
    mode = params.get("network_mode") or (next(iter(networks)) if networks else "bridge")
    expose = []
    for item in params.get("exposed_ports") or []:
        port, proto = split_port_key(str(item))
        expose.append(f"{port}/{proto}")
    extra_hosts = [f"{name}:{ip}" for name, ip in (params.get("etc_hosts") or {}).items()]
    for item in extra_hosts:
        parse_extra_host(item)
    return {
        "network_mode": mode,
        "port_bindings": merge_bindings([str(p) for p in params.get("published_ports") or []]),
        "publish_all_ports": bool(params.get("publish_all_ports")),
        "expose": expose,
        "dns": list(params.get("dns_servers") or []),
        "dns_search": list(params.get("dns_search_domains") or []),
        "dns_options": list(params.get("dns_opts") or []),
        "extra_hosts": extra_hosts,
        "networks": networks,
    }
