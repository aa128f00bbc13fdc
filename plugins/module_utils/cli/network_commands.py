"""Network verbs (`network create|ls|inspect|rm|connect|disconnect|prune`), `port`, and the networking flags of
`run`/`create` (-p/-P/--expose/--ip/--network-alias/--dns*/--add-host/--mac-address)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import EngineError, InvalidArgument
from .common import confirm, err, out, print_inspect

if TYPE_CHECKING:
    from ..engine import Engine
    from ..network.service import NetworkService

NETWORK_COLUMNS = [("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"), ("SCOPE", "Scope")]


def _service(engine: Engine) -> NetworkService:
    networks = getattr(engine, "networks", None)
    if networks is not None:
        return networks
    from ..network.service import NetworkService

    return NetworkService(engine.config, engine.events)


# --- run/create flags ---------------------------------------------------------------------------------

def add_run_network_options(p: argparse.ArgumentParser) -> None:
    """The networking flags of `run`/`create` (``--network`` itself stays with the container verbs)."""
    p.add_argument("-p", "--publish", action="append", default=[], help="publish a container's port(s)")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish all exposed ports to random ports")
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[], dest="network_alias")
    p.add_argument("--mac-address", default="")
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[], dest="dns_option")
    p.add_argument("--add-host", action="append", default=[])


def host_config_network_fields(args: argparse.Namespace) -> dict[str, Any]:
    """HostConfig keyword arguments for the networking flags (``HostConfig(network_mode=..., **these)``)."""
    from ..network.etcfiles import parse_extra_host
    from ..network.ports import merge_bindings, split_port_key

    expose = []
    for item in getattr(args, "expose", []):
        port, _sep, proto = item.partition("/")
        first, _sep, last = port.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise InvalidArgument(f"invalid range format for --expose: {item}") from None
        for n in range(lo, hi + 1):
            number, proto_name = split_port_key(f"{n}/{proto or 'tcp'}")
            expose.append(f"{number}/{proto_name}")
    for item in getattr(args, "add_host", []):
        parse_extra_host(item)  # refuse malformed ones at create, as Docker does
    network = getattr(args, "network", "") or "bridge"
    endpoint: dict[str, Any] = {}
    if getattr(args, "ip", ""):
        endpoint["ipv4_address"] = args.ip
    if getattr(args, "network_alias", []):
        if network in ("bridge", "host", "none"):
            raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
        endpoint["aliases"] = list(args.network_alias)
    if getattr(args, "mac_address", ""):
        endpoint["mac_address"] = args.mac_address
    return {
        "port_bindings": merge_bindings(getattr(args, "publish", [])),
        "publish_all_ports": bool(getattr(args, "publish_all", False)),
        "expose": expose,
        "dns": list(getattr(args, "dns", [])),
        "dns_search": list(getattr(args, "dns_search", [])),
        "dns_options": list(getattr(args, "dns_option", [])),
        "extra_hosts": list(getattr(args, "add_host", [])),
        "networks": {network: endpoint} if endpoint else {},
    }


# --- verbs --------------------------------------------------------------------------------------------

def _row(doc: dict, trunc: bool) -> dict[str, Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted((doc.get("Labels") or {}).items()))
    return {"ID": doc["Id"][:12] if trunc else doc["Id"], "Name": doc["Name"], "Driver": doc["Driver"],
            "Scope": doc["Scope"], "IPv6": "false", "Internal": str(bool(doc.get("Internal"))).lower(),
            "Labels": labels, "CreatedAt": doc.get("Created", "")}


def cmd_create(engine: Engine, args: argparse.Namespace) -> int:
    labels = {}
    for item in args.label:
        key, _sep, value = item.partition("=")
        labels[key] = value
    doc = _service(engine).create(args.name, subnet=args.subnet or "", gateway=args.gateway or "", labels=labels,
                                  internal=args.internal, driver=args.driver)
    out(doc["Id"])
    return 0


def cmd_ls(engine: Engine, args: argparse.Namespace) -> int:
    docs = _service(engine).list()
    for f in args.filter:
        key, _sep, value = f.partition("=")
        if key == "name":
            docs = [d for d in docs if value in d["Name"]]
        elif key == "id":
            docs = [d for d in docs if d["Id"].startswith(value)]
        elif key == "driver":
            docs = [d for d in docs if d["Driver"] == value]
        elif key == "label":
            k, _sep, v = value.partition("=")
            docs = [d for d in docs if k in d.get("Labels", {}) and (not v or d["Labels"][k] == v)]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    if args.quiet:
        out("\n".join(d["Id"] if args.no_trunc else d["Id"][:12] for d in docs))
        return 0
    from .output import render

    out(render([_row(d, not args.no_trunc) for d in docs], NETWORK_COLUMNS, args.format))
    return 0


def cmd_inspect(engine: Engine, args: argparse.Namespace) -> int:
    service = _service(engine)
    documents, failed = [], False
    for ref in args.networks:
        try:
            documents.append(service.inspect(ref))
        except EngineError as exc:
            err(f"Error response from daemon: {exc}")
            failed = True
    print_inspect(documents, args.format)
    return 1 if failed else 0


def cmd_rm(engine: Engine, args: argparse.Namespace) -> int:
    service = _service(engine)
    failed = False
    for ref in args.networks:
        try:
            service.remove(ref)
            out(ref)
        except EngineError as exc:
            err(f"Error response from daemon: {exc}")
            failed = True
    return 1 if failed else 0


def cmd_prune(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.prune import prune_networks

    if not args.force and not confirm("WARNING! This will remove all custom networks not used by at least one "
                                      "container."):
        return 0
    removed = prune_networks(engine, args.filter)
    if removed:
        out("Deleted Networks:\n" + "\n".join(removed))
    return 0


def cmd_connect(engine: Engine, args: argparse.Namespace) -> int:
    record = engine.containers.lookup(args.container)
    _service(engine).connect(args.network, record, aliases=args.alias, ipv4_address=args.ip or "")
    return 0


def cmd_disconnect(engine: Engine, args: argparse.Namespace) -> int:
    record = engine.containers.lookup(args.container)
    _service(engine).disconnect(args.network, record, force=args.force)
    return 0


def cmd_port(engine: Engine, args: argparse.Namespace) -> int:
    """`port NAME [PRIVATE_PORT[/PROTO]]`: `80/tcp -> 0.0.0.0:8080` per mapping."""
    from ..network.ports import display_host_ip, split_port_key

    record = engine.containers.lookup(args.container)
    ports = _service(engine).published_ports(record)
    if args.private_port:
        number, proto = split_port_key(args.private_port)
        matching = [p for p in ports if p.container_port == number and p.proto == proto]
        if not matching:
            raise EngineError(f"No public port '{number}/{proto}' published for {args.container}")
        out("\n".join(f"{display_host_ip(p.host_ip)}:{p.host_port}" for p in matching))
        return 0
    lines = [f"{p.container_port}/{p.proto} -> {display_host_ip(p.host_ip)}:{p.host_port}"
             for p in sorted(ports, key=lambda p: (p.container_port, p.proto, p.host_ip, p.host_port))]
    out("\n".join(lines))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("port", help="List port mappings or a specific mapping for the container")
    p.add_argument("container")
    p.add_argument("private_port", nargs="?")
    p.set_defaults(func=cmd_port)

    net = sub.add_parser("network", help="Manage networks")
    verbs = net.add_subparsers(dest="network_command", metavar="COMMAND", parser_class=type(net))
    verbs.required = True

    p = verbs.add_parser("create", help="Create a network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet")
    p.add_argument("--gateway")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("name")
    p.set_defaults(func=cmd_create)

    p = verbs.add_parser("ls", aliases=["list"], help="List networks")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.set_defaults(func=cmd_ls)

    p = verbs.add_parser("inspect", help="Display detailed information on one or more networks")
    p.add_argument("-f", "--format")
    p.add_argument("networks", nargs="+")
    p.set_defaults(func=cmd_inspect)

    p = verbs.add_parser("rm", aliases=["remove"], help="Remove one or more networks")
    p.add_argument("networks", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = verbs.add_parser("prune", help="Remove all unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. \"until=<timestamp>\")")
    p.set_defaults(func=cmd_prune)

    p = verbs.add_parser("connect", help="Connect a container to a network")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(func=cmd_connect)

    p = verbs.add_parser("disconnect", help="Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(func=cmd_disconnect)
