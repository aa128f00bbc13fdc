"""Container verbs: run, ps, rm, inspect (create, start, stop, kill, logs, exec... join them here)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..engine import Engine
from ..errors import EngineError, InvalidArgument
from ..runtime.hostconfig import HostConfig
from ..runtime.service import CreateOptions, Stdio
from .common import err, out, print_inspect, progress
from .volume_commands import add_mount_options, mounts_from_args

PS_COLUMNS = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
              ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]


def _split_env_files(paths: Sequence[str]) -> list[str]:
    env: list[str] = []
    for path in paths:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {exc.strerror}") from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                # Docker: a bare name takes the value from the caller's environment, if set.
                if line in os.environ:
                    env.append(f"{line}={os.environ[line]}")
                continue
            env.append(line)
    return env


def _create_options(args: argparse.Namespace) -> CreateOptions:
    env = _split_env_files(args.env_file)
    for item in args.env:
        if "=" in item:
            env.append(item)
        elif item in os.environ:
            env.append(f"{item}={os.environ[item]}")
    labels = {}
    for item in args.label:
        key, _, value = item.partition("=")
        labels[key] = value
    return CreateOptions(
        image=args.image,
        name=args.name,
        command=list(args.command) or None,
        entrypoint=[args.entrypoint] if args.entrypoint is not None else None,
        env=env,
        working_dir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        labels=labels,
        host_config=HostConfig(network_mode=args.network, auto_remove=args.rm, mounts=mounts_from_args(args)),
        pull=args.pull,
    )


def cmd_run(engine: Engine, args: argparse.Namespace) -> int:
    if args.detach:
        raise InvalidArgument("detached containers (-d) are not supported yet: run in the foreground")
    options = _create_options(args)
    stdin = 0 if args.interactive else None
    stdio = Stdio(stdin=stdin, stdout=1, stderr=2)
    result = engine.containers.run(options, stdio, progress=progress(False, sys.stderr))
    return result.exit_code


def cmd_ps(engine: Engine, args: argparse.Namespace) -> int:
    from ..views import container_row

    records = engine.containers.list(all=args.all or args.latest or args.last is not None)
    if args.latest:
        records = records[:1]
    elif args.last is not None and args.last >= 0:
        records = records[: args.last]
    if args.quiet:
        out("\n".join(r.id if args.no_trunc else r.id[:12] for r in records))
        return 0
    from .output import render

    out(render([container_row(r, trunc=not args.no_trunc) for r in records], PS_COLUMNS, args.format))
    return 0


def cmd_rm(engine: Engine, args: argparse.Namespace) -> int:
    failed = False
    for ref in args.containers:
        try:
            engine.containers.remove(ref, force=args.force, volumes=args.volumes)
            out(ref)
        except EngineError as exc:
            err(f"Error response from daemon: {exc}")
            failed = True
    return 1 if failed else 0


def cmd_inspect(engine: Engine, args: argparse.Namespace) -> int:
    from ..errors import ContainerNotFound, ImageNotFound
    from ..views import inspect_container, inspect_image

    documents = []
    for name in args.names:
        try:
            documents.append(inspect_container(engine.containers.lookup(name)))
        except ContainerNotFound:
            try:
                documents.append(inspect_image(engine.images.inspect(name)))
            except ImageNotFound:
                raise ContainerNotFound(f"No such object: {name}") from None
    return print_inspect(documents, args.format)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("--entrypoint")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--network", "--net", default="none")
    add_mount_options(p)  # -v/--volume, --mount, --tmpfs
    p.add_argument("--pull", default="missing", choices=["missing", "always", "never"])
    p.add_argument("--help", action="help")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)




def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="Create and run a new container", add_help=False)
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("ps", help="List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-n", "--last", type=int)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("rm", help="Remove one or more containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes of the container")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("inspect", help="Low-level information on containers or images")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_inspect)
