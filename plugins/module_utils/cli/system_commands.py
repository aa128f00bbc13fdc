"""Engine-wide verbs: events / system events, version (info, system df, system prune join them here)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .. import trace
from ..engine import Engine
from ..errors import InvalidArgument
from ..version import ENGINE_VERSION
from .common import CliParser, confirm, err, out

API_VERSION = "1.43"  # the Docker API whose shapes the engine's outputs follow


def cmd_events(engine: Engine, args: argparse.Namespace) -> int:
    from ..event_filters import EventFilter, format_event_line, parse_time
    from .output import render_template

    now_ns = time.time_ns()
    since = parse_time(args.since, now_ns) if args.since else None
    until = parse_time(args.until, now_ns) if args.until else None
    if since is not None and until is not None and until < since:
        raise InvalidArgument("--until must not be before --since")
    event_filter = EventFilter.parse(args.filter)

    def emit(event: dict) -> None:
        if not event_filter.matches(event):
            return
        if args.format == "json" or args.format == "{{json .}}":
            line = json.dumps(event, separators=(",", ":"))
        elif args.format:
            line = render_template(args.format, {**event, "ID": event["Actor"]["ID"], "Status": event["Action"]})
        else:
            line = format_event_line(event)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    # Without --since, Docker shows only what happens from now on.
    start = since if since is not None else now_ns
    if until is not None:
        for event in engine.events.read(since_ns=start, until_ns=until):
            emit(event)
        return 0
    from ..linux.inotify import DirectoryWatch

    for event in engine.events.follow(DirectoryWatch, since_ns=start):
        emit(event)
    return 0


def version_info(engine: Engine) -> dict:
    import platform  # only `version` needs it, and it costs every command ~3 ms to import

    uname = platform.uname()
    return {
        "Client": {"Version": ENGINE_VERSION, "ApiVersion": API_VERSION, "PythonVersion": platform.python_version(),
                   "Os": "linux", "Arch": _go_arch(uname.machine)},
        "Server": {"Version": ENGINE_VERSION, "ApiVersion": API_VERSION, "PythonVersion": platform.python_version(),
                   "Os": "linux", "Arch": _go_arch(uname.machine), "KernelVersion": uname.release,
                   "Components": [{"Name": "Engine", "Version": ENGINE_VERSION}]},
    }


def _go_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def cmd_version(engine: Engine, args: argparse.Namespace) -> int:
    info = version_info(engine)
    if args.format == "json":
        out(json.dumps(info, separators=(",", ":")))
        return 0
    if args.format:
        from .output import render_template

        out(render_template(args.format, info))
        return 0
    for title, part in (("Client", info["Client"]), ("Server: pycontainer engine", info["Server"])):
        out(f"{title}:")
        out(f" Version:           {part['Version']}")
        out(f" API version:       {part['ApiVersion']}")
        out(f" Python version:    {part['PythonVersion']}")
        if "KernelVersion" in part:
            out(f" Kernel version:    {part['KernelVersion']}")
        out(f" OS/Arch:           {part['Os']}/{part['Arch']}")
        if title == "Client":
            out("")
    return 0


def cmd_info(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.facts import engine_info

    info = engine_info(engine)
    trace.mark("facts")
    if args.format == "json":
        out(json.dumps(info, separators=(",", ":")))
    elif args.format:
        from .output import render_template

        out(render_template(args.format, info))
    else:
        out(render_info(info))
        for warning in info["Warnings"]:
            err(warning)
    return 0


def render_info(info: dict) -> str:
    """`docker info`'s layout (the Server part: this engine has no separate client)."""
    from ..timefmt import human_binary_size

    lines = [
        "Client:",
        f" Version:    {info['ServerVersion']}",
        " Context:    default",
        " Debug Mode: false",
        "",
        "Server:",
        f" Containers: {info['Containers']}",
        f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}",
        f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}",
        f" Server Version: {info['ServerVersion']}",
        f" Storage Driver: {info['Driver']}",
        *[f"  {key}: {value}" for key, value in info["DriverStatus"]],
        f" Logging Driver: {info['LoggingDriver']}",
        f" Cgroup Driver: {info['CgroupDriver']}",
        f" Cgroup Version: {info['CgroupVersion']}",
        " Security Options:",
        *[f"  {option.split(',')[0].removeprefix('name=')}" for option in info["SecurityOptions"]],
        f" Kernel Version: {info['KernelVersion']}",
        f" Operating System: {info['OperatingSystem']}",
        f" OSType: {info['OSType']}",
        f" Architecture: {info['Architecture']}",
        f" CPUs: {info['NCPU']}",
        f" Total Memory: {human_binary_size(info['MemTotal'])}",
        f" Name: {info['Name']}",
        f" ID: {info['ID']}",
        f" Docker Root Dir: {info['DockerRootDir']}",
        f" Debug Mode: {'true' if info['Debug'] else 'false'}",
        " Experimental: false",
        " Insecure Registries:",
        *[f"  {cidr}" for cidr in info["RegistryConfig"]["InsecureRegistryCIDRs"]],
    ]
    if info["RegistryConfig"]["Mirrors"]:
        lines += [" Registry Mirrors:", *[f"  {m}" for m in info["RegistryConfig"]["Mirrors"]]]
    lines.append(" Live Restore Enabled: false")
    return "\n".join(lines)


def _reclaimable(reclaimable: int, total: int) -> str:
    from ..timefmt import human_size

    text = human_size(reclaimable)
    return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text


def df_rows(summary: dict[str, dict[str, int]]) -> list[dict[str, str]]:
    """`system df` rows as Docker's --format json prints them (every value a string)."""
    from ..timefmt import human_size

    rows = []
    for kind, label in (("Images", "Images"), ("Containers", "Containers"), ("Volumes", "Local Volumes"),
                        ("BuildCache", "Build Cache")):
        numbers = summary[kind]
        reclaimable = (human_size(numbers["Reclaimable"]) if kind == "BuildCache"
                       else _reclaimable(numbers["Reclaimable"], numbers["Size"]))
        rows.append({"Active": str(numbers["Active"]), "Reclaimable": reclaimable, "Size": human_size(numbers["Size"]),
                     "TotalCount": str(numbers["TotalCount"]), "Type": label})
    return rows


def cmd_df(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.disk_usage import measure
    from .output import render

    usage = measure(engine)
    rows = df_rows(usage.summary())
    if not args.verbose:
        out(render(rows, [("TYPE", "Type"), ("TOTAL", "TotalCount"), ("ACTIVE", "Active"), ("SIZE", "Size"),
                          ("RECLAIMABLE", "Reclaimable")], args.format))
        return 0
    out(render_df_verbose(usage))
    return 0


def render_df_verbose(usage) -> str:
    from ..timefmt import human_duration, human_size, parse_rfc3339
    from .output import render_table

    now = time.time()
    image_rows = []
    for image in usage.images:
        for tag in image.repo_tags or ["<none>:<none>"]:
            repository, _sep, tag_name = tag.rpartition(":")
            image_rows.append([repository, tag_name, image.id.split(":")[-1][:12],
                               human_duration(now - parse_rfc3339(image.created)) + " ago", human_size(image.size),
                               human_size(image.shared_size), human_size(image.unique_size), str(image.containers)])
    container_rows = [[c.id[:12], c.image, c.command, "0", human_size(c.size_rw), c.created, c.status, c.name]
                      for c in usage.containers]
    volume_rows = [[v.name, str(v.links), human_size(v.size)] for v in usage.volumes]
    return "\n".join([
        "Images space usage:", "",
        render_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
                     image_rows), "",
        "Containers space usage:", "",
        render_table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
                     container_rows), "",
        "Local Volumes space usage:", "",
        render_table(["VOLUME NAME", "LINKS", "SIZE"], volume_rows), "",
        "Build cache usage: 0B", "",
        render_table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], []),
    ])


def cmd_container_prune(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.prune import prune_containers
    from ..timefmt import human_size

    if not args.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    report = prune_containers(engine, args.filter)
    _warn_failed(report.failed)
    if report.deleted:
        out("Deleted Containers:\n" + "\n".join(report.deleted) + "\n")
    out(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0


def _warn_failed(failed: dict[str, str]) -> None:
    for container_id, reason in failed.items():
        err(f"WARNING: container {container_id} was not removed: {reason}")


def cmd_system_prune(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.prune import prune_system
    from ..timefmt import human_size

    if not args.force:
        items = ["all stopped containers", "all networks not used by at least one container"]
        if args.volumes:
            items.append("all anonymous volumes not used by at least one container")
        items.append("all images without at least one container associated to them" if args.all
                     else "all dangling images")
        items.append("unused build cache")
        if not confirm("WARNING! This will remove:\n" + "\n".join(f"  - {i}" for i in items) + "\n"):
            return 0
    report = prune_system(engine, all_images=args.all, volumes=args.volumes, filters=args.filter)
    _warn_failed(report.containers.failed)
    for title, lines in (("Deleted Containers", report.containers.deleted), ("Deleted Networks", report.networks),
                         ("Deleted Volumes", report.volumes), ("Deleted Images", report.images.lines(lower=True))):
        if lines:
            out(f"{title}:\n" + "\n".join(lines) + "\n")
    out(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0


def _add_events_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="Get real time events from the engine")
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="Format the output: json or a Go template")
    p.set_defaults(func=cmd_events)


def _add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="Display system-wide information")
    p.add_argument("-f", "--format", help="Format the output: json or a Go template")
    p.set_defaults(func=cmd_info)


def register(sub: argparse._SubParsersAction) -> None:
    _add_events_parser(sub, "events")
    _add_info_parser(sub)
    p = sub.add_parser("version", help="Show the engine version information")
    p.add_argument("-f", "--format")
    p.set_defaults(func=cmd_version)

    system = sub.add_parser("system", help="Manage the engine")
    system_sub = system.add_subparsers(dest="system_command", metavar="COMMAND", parser_class=CliParser)
    system_sub.required = True
    _add_events_parser(system_sub, "events")
    _add_info_parser(system_sub)
    p = system_sub.add_parser("prune", help="Remove unused data")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones")
    p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help='Provide filter values (e.g. "label=<key>=<value>")')
    p.set_defaults(func=cmd_system_prune)

    container = sub.add_parser("container", help="Manage containers")
    container_sub = container.add_subparsers(dest="container_command", metavar="COMMAND", parser_class=CliParser)
    container_sub.required = True
    p = container_sub.add_parser("prune", help="Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help='Provide filter values (e.g. "until=<timestamp>")')
    p.set_defaults(func=cmd_container_prune)

    p = system_sub.add_parser("df", help="Show engine disk usage")
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information on space usage")
    p.add_argument("--format", help="Format the output: json or a Go template")
    p.set_defaults(func=cmd_df)
