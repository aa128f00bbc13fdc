"""Volume verbs (`volume create|ls|inspect|rm|prune`) and the mount flags of `run`/`create`
(`-v/--volume`, `--mount`, `--tmpfs`)."""

from __future__ import annotations

import argparse

from ..engine import Engine
from ..errors import EngineError, InvalidArgument
from .common import CliParser, confirm, err, out

VOLUME_COLUMNS = [("DRIVER", "Driver"), ("VOLUME NAME", "Name")]


# --- mount flags of run/create ----------------------------------------------------------------------------


def add_mount_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--volume", action="append", default=[], metavar="[SRC:]DST[:OPTS]",
                   help="bind mount a host path or mount a named/anonymous volume")
    p.add_argument("--mount", action="append", default=[], metavar="type=...,source=...,target=...",
                   help="attach a filesystem mount (bind, volume, tmpfs)")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]", help="mount a tmpfs")


def mounts_from_args(args: argparse.Namespace) -> list:
    """HostConfig.mounts from the flags, in Docker's order: -v, then --mount, then --tmpfs."""
    from ..runtime.volumes import parse_mount_flag, parse_tmpfs_flag, parse_volume_flag

    return ([parse_volume_flag(v) for v in getattr(args, "volume", [])]
            + [parse_mount_flag(m) for m in getattr(args, "mount", [])]
            + [parse_tmpfs_flag(t) for t in getattr(args, "tmpfs", [])])


# --- volume verbs ------------------------------------------------------------------------------------------


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label '{item}'")
        labels[key] = value
    return labels


def cmd_create(engine: Engine, args: argparse.Namespace) -> int:
    if args.name and args.volume and args.name != args.volume:
        raise InvalidArgument("conflicting options: either specify --name or provide positional arg, not both")
    options = _labels(args.opt)
    record = engine.volumes.create(args.name or args.volume, driver=args.driver, labels=_labels(args.label),
                                   options=options)
    out(record.name)
    return 0


def cmd_ls(engine: Engine, args: argparse.Namespace) -> int:
    from ..runtime.volumes import parse_filters
    from ..system.views import volume_row

    records = engine.volumes.list(parse_filters(args.filter))
    if args.quiet:
        out("\n".join(r.name for r in records))
        return 0
    from .output import render

    out(render([volume_row(r) for r in records], VOLUME_COLUMNS, args.format))
    return 0


def cmd_inspect(engine: Engine, args: argparse.Namespace) -> int:
    from ..errors import NotFound
    from ..runtime.volumes import inspect_volume
    from .common import print_inspect

    documents, missing = [], []
    for name in args.volumes:
        try:
            documents.append(inspect_volume(engine.volumes.inspect(name)))
        except NotFound:
            missing.append(name)
    if documents or not missing:
        print_inspect(documents, args.format)
    for name in missing:
        err(f"Error: No such volume: {name}")
    return 1 if missing else 0


def cmd_rm(engine: Engine, args: argparse.Namespace) -> int:
    failed = False
    for name in args.volumes:
        try:
            if engine.volumes.remove(name, force=args.force):
                out(name)
        except EngineError as exc:
            err(f"Error response from daemon: {exc}")
            failed = True
    return 1 if failed else 0


def cmd_prune(engine: Engine, args: argparse.Namespace) -> int:
    from ..runtime.volumes import parse_filters
    from ..timefmt import human_size

    filters = parse_filters(args.filter)
    if not args.force:
        warning = ("WARNING! This will remove all local volumes not used by at least one container."
                   if args.all else "WARNING! This will remove anonymous local volumes not used by at least one "
                   "container.")
        if not confirm(warning):
            return 0
    deleted, reclaimed = engine.volumes.prune(all=args.all, filters=filters)
    if deleted:
        out("Deleted Volumes:\n" + "\n".join(deleted) + "\n")
    out(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    volume = sub.add_parser("volume", help="Manage volumes")
    vsub = volume.add_subparsers(dest="volume_command", metavar="COMMAND", parser_class=CliParser)
    vsub.required = True

    p = vsub.add_parser("create", help="Create a volume")
    p.add_argument("--name", help="specify volume name")
    p.add_argument("-d", "--driver", default="local", help="specify volume driver name")
    p.add_argument("--label", action="append", default=[], help="set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[], help="set driver specific options")
    p.add_argument("volume", nargs="?")
    p.set_defaults(func=cmd_create)

    p = vsub.add_parser("ls", aliases=["list"], help="List volumes")
    p.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    p.add_argument("-f", "--filter", action="append", default=[], help="filter output (dangling, name, label...)")
    p.add_argument("--format", help="format output: table, json or a Go template")
    p.set_defaults(func=cmd_ls)

    p = vsub.add_parser("inspect", help="Display detailed information on one or more volumes")
    p.add_argument("-f", "--format")
    p.add_argument("volumes", nargs="+")
    p.set_defaults(func=cmd_inspect)

    p = vsub.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    p.add_argument("-f", "--force", action="store_true", help="do not fail on volumes that do not exist")
    p.add_argument("volumes", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = vsub.add_parser("prune", help="Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused volumes, not just anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="provide filter values (e.g. label=<label>)")
    p.set_defaults(func=cmd_prune)
