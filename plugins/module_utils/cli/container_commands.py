"""Container verbs: run, ps, rm, inspect (create, start, stop, kill, logs, exec... join them here)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .. import trace
from ..container.options import CreateOptions
from ..engine import Engine
from ..errors import EngineError, InvalidArgument
from ..records.hostconfig import HostConfig
from .common import built, err, out, print_inspect, progress
from .network_commands import add_run_network_options, host_config_network_fields
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


def _create_options(args: argparse.Namespace, engine: Engine) -> CreateOptions:
    from ..container.option_table import create_fields_from_cli

    env = _split_env_files(args.env_file)
    for item in args.env:
        if "=" in item:
            env.append(item)
        elif item in os.environ:
            env.append(f"{item}={os.environ[item]}")
    engine.log.add_env(env)  # env values (env files' too) are never logged, as with Docker
    labels = {}
    for item in args.label:
        key, _sep, value = item.partition("=")
        labels[key] = value
    return CreateOptions(
        image=args.image,
        name=args.name,
        command=list(args.command) or None,
        entrypoint=[args.entrypoint] if args.entrypoint is not None else None,
        env=env,
        labels=labels,
        host_config=_host_config(args),
        **create_fields_from_cli(args),  # the option table's: -w, -u, -h, --pull, -t, -i, --stop-*
    )


def _host_config(args: argparse.Namespace) -> HostConfig:
    from ..container.option_table import cli_restart, host_fields_from_cli

    log_options = {}
    for item in args.log_opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid log opt format: {item}")
        log_options[key] = value
    return HostConfig(
        network_mode=args.network, auto_remove=args.rm, mounts=mounts_from_args(args),
        restart_policy=cli_restart(args.restart or "no"), log_driver=args.log_driver or "", log_options=log_options,
        **host_fields_from_cli(args),  # the option table's flags (container/option_table.py)
        **host_config_network_fields(args),  # -p/-P/--expose/--ip/--network-alias/--dns*/--add-host
    )


def cmd_run(engine: Engine, args: argparse.Namespace) -> int:
    options = _create_options(args, engine)
    if args.detach and args.rm and options.host_config.restart_policy.name != "no":
        raise InvalidArgument("Conflicting options: --restart and --rm")
    trace.mark("create options")
    record, session = engine.containers.run(options, stdin=args.interactive, detach=args.detach,
                                            progress=progress(False, sys.stderr))
    if session is None:
        out(record.id)
        return 0
    try:
        return _attached(session, args.interactive, args.detach_keys)
    finally:
        trace.mark("attached: output until exit")


def _attached(session, interactive: bool, detach_keys: str | None) -> int:
    from ..supervision.attach import pump

    try:
        code = pump(session, 0 if interactive else None, detach_keys=_detach_keys(detach_keys))
    finally:
        session.close()
    return 0 if code is None else code


def _detach_keys(spec: str | None) -> bytes:
    """Docker's --detach-keys: "ctrl-p,ctrl-q" style, or single characters."""
    if not spec:
        return b"\x10\x11"
    keys = b""
    for part in spec.split(","):
        part = part.strip().lower()
        if part.startswith("ctrl-") and len(part) == 6:
            char = part[5]
            keys += bytes([{"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(char, ord(char) & 0x1F)])
        elif len(part) == 1:
            keys += part.encode()
        else:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return keys


def cmd_compare(engine: Engine, args: argparse.Namespace) -> int:
    """Not a Docker verb: how container NAME differs from what these `run` options would create (the
    comparison the Ansible module uses to decide on recreating). Exit 0 when nothing differs, 1 otherwise."""
    if not args.name:
        raise InvalidArgument("compare needs --name of the existing container")
    record = engine.containers.lookup(args.name)
    diffs = engine.containers.compare(record, _create_options(args, engine))
    for d in diffs:
        out(f"{d.name}: {json.dumps(d.actual)} -> {json.dumps(d.desired)}")
    return 1 if diffs else 0


def cmd_create(engine: Engine, args: argparse.Namespace) -> int:
    record = engine.containers.create(_create_options(args, engine), progress=progress(False, sys.stderr))
    out(record.id)
    return 0


def _each(refs: Sequence[str], action) -> int:
    """Docker's multi-container verbs: one line per success, one error per failure, exit 1 if any failed."""
    failed = False
    for ref in refs:
        try:
            result = action(ref)
            out(ref if result is None else str(result))
        except EngineError as exc:
            err(f"Error response from daemon: {exc}")
            failed = True
    return 1 if failed else 0


def cmd_start(engine: Engine, args: argparse.Namespace) -> int:
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        record = engine.containers.lookup(args.containers[0])
        if record.state.running:
            session = engine.containers.attach(record.id)
        else:
            session = engine.containers.start_attached(record, stdin=args.interactive)
        return _attached(session, args.interactive, args.detach_keys)
    return _each(args.containers, lambda ref: engine.containers.start(ref) and None)


def cmd_stop(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: engine.containers.stop(ref, args.time, args.signal) and None)


def cmd_restart(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: engine.containers.restart(ref, args.time, args.signal) and None)


def cmd_kill(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: engine.containers.kill(ref, args.signal) and None)


def cmd_pause(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: engine.containers.pause(ref, True) and None)


def cmd_unpause(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers, lambda ref: engine.containers.pause(ref, False) and None)


def cmd_wait(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers, engine.containers.wait)


def cmd_rename(engine: Engine, args: argparse.Namespace) -> int:
    engine.containers.rename(args.container, args.new_name)
    return 0


def cmd_attach(engine: Engine, args: argparse.Namespace) -> int:
    session = engine.containers.attach(args.container)
    stdin = not args.no_stdin and session.record.config.open_stdin
    return _attached(session, stdin, args.detach_keys)


def cmd_logs(engine: Engine, args: argparse.Namespace) -> int:
    from ..supervision.attach import _write_all

    entries = engine.containers.logs(args.container, follow=args.follow, tail=args.tail, since=args.since,
                                     until=args.until)
    for entry in entries:
        line = (entry.time + " " + entry.text) if args.timestamps else entry.text
        _write_all(1 if entry.stream == "stdout" else 2, line.encode())
    return 0


def cmd_top(engine: Engine, args: argparse.Namespace) -> int:
    from .output import render_table

    titles, rows = engine.containers.top(args.container, args.ps_args)
    out(render_table(titles, rows))
    return 0


def cmd_exec(engine: Engine, args: argparse.Namespace) -> int:
    env = list(_split_env_files(args.env_file))
    for item in args.env:
        env.append(item if "=" in item else f"{item}={os.environ.get(item, '')}")
    engine.log.add_env(env)
    return engine.containers.exec(args.container, list(args.command), interactive=args.interactive,
                                  tty=args.tty, detach=args.detach, user=args.user, env=env,
                                  workdir=args.workdir, privileged=args.privileged,
                                  detach_keys=_detach_keys(args.detach_keys))


def cmd_stats(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.views import STATS_COLUMNS
    from .output import render

    if args.no_stream:
        rows = engine.containers.stats(args.containers, all=args.all)
        out(render(rows, STATS_COLUMNS, args.format))
        return 0
    while True:  # Docker redraws in place; so do we, until interrupted
        rows = engine.containers.stats(args.containers, all=args.all)
        sys.stdout.write("\x1b[2J\x1b[H" + render(rows, STATS_COLUMNS, args.format) + "\n")
        sys.stdout.flush()


def cmd_ps(engine: Engine, args: argparse.Namespace) -> int:
    from ..container.filters import filter_containers, parse_filters
    from ..system.views import container_row, container_size

    filters = parse_filters(args.filter)
    records = engine.containers.list(all=args.all or args.latest or args.last is not None or
                                     any(k in filters for k in ("status", "exited")))
    records = filter_containers(records, filters, engine)
    trace.mark("store reads")
    for r in records:
        if r.damaged:  # shown as Docker shows a dead container; the reason goes to stderr
            err(f"WARNING: container {r.id[:12]} has a damaged record ({r.damaged}): "
                "it can be inspected and removed (rm -f)")
    if args.latest:
        records = records[:1]
    elif args.last is not None and args.last >= 0:
        records = records[: args.last]
    if args.quiet:
        out("\n".join(r.id if args.no_trunc else r.id[:12] for r in records))
        return 0
    from .output import render

    columns = PS_COLUMNS + ([("SIZE", "Size")] if args.size else [])
    rows = []
    for r in records:
        row = container_row(r, trunc=not args.no_trunc)
        if args.size or (args.format and ".Size" in args.format):
            row["Size"] = container_size(r, engine)
        rows.append(row)
    out(render(rows, columns, args.format))
    trace.mark("render")
    return 0


def cmd_rm(engine: Engine, args: argparse.Namespace) -> int:
    return _each(args.containers,
                 lambda ref: engine.containers.remove(ref, force=args.force, volumes=args.volumes) and None)


def cmd_update(engine: Engine, args: argparse.Namespace) -> int:
    """`docker update`: limits and restart policy of existing containers, in place (container/update.py)."""
    from ..container.option_table import update_flag_options
    from ..container.update import UpdateOptions

    changes = UpdateOptions(**{o.update: o.from_cli(getattr(args, o.dest)) if o.from_cli else getattr(args, o.dest)
                               for o in update_flag_options() if getattr(args, o.dest) is not None})
    if changes.empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    return _each(args.containers, lambda ref: engine.containers.update(ref, changes) and None)


def cmd_inspect(engine: Engine, args: argparse.Namespace) -> int:
    from ..errors import ContainerNotFound, ImageNotFound
    from ..system.views import inspect_container, inspect_image

    documents = []
    for name in args.names:
        try:
            documents.append(inspect_container(engine.containers.lookup(name)))
        except ContainerNotFound:
            try:
                documents.append(inspect_image(engine.images.inspect(name)))
            except (ImageNotFound, InvalidArgument):  # not an image reference either: Docker's wording
                raise ContainerNotFound(f"No such object: {name}") from None
    return print_inspect(documents, args.format)


def _add_run_options(p: argparse.ArgumentParser, run: bool = True) -> None:
    if not built(p):  # another verb is being run: do not load the option table for nothing
        return
    from ..container.option_table import BY_NAME, add_flag, flag_options

    p.add_argument("--name")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    if run:
        p.add_argument("-d", "--detach", action="store_true")
        p.add_argument("--detach-keys")
    add_flag(p, BY_NAME["interactive"])
    add_flag(p, BY_NAME["tty"])
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("--entrypoint")
    add_flag(p, BY_NAME["working_dir"])
    add_flag(p, BY_NAME["user"])
    add_flag(p, BY_NAME["hostname"])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--network", "--net", default="bridge")
    add_run_network_options(p)
    add_mount_options(p)  # -v/--volume, --mount, --tmpfs
    add_flag(p, BY_NAME["pull"])
    # lifecycle
    add_flag(p, BY_NAME["restart_policy"])  # --restart
    p.add_argument("--log-driver")
    p.add_argument("--log-opt", action="append", default=[])
    add_flag(p, BY_NAME["kill_signal"])  # --stop-signal
    add_flag(p, BY_NAME["stop_timeout"])
    # isolation and resources (runtime/isolation.py enforces them), from the option table
    for option in flag_options():
        add_flag(p, option)
    p.add_argument("--help", action="help")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="Create and run a new container", add_help=False)
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("create", help="Create a new container", add_help=False)
    _add_run_options(p, run=False)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("compare", add_help=False,
                       help="Show how a container differs from the given run options (exit 1 if it does)")
    _add_run_options(p, run=False)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("start", help="Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--detach-keys")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_start)

    for verb, func, text in (("stop", cmd_stop, "Stop one or more running containers"),
                             ("restart", cmd_restart, "Restart one or more containers")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("-t", "--time", "--timeout", type=int, default=None)
        p.add_argument("-s", "--signal")
        p.add_argument("containers", nargs="+")
        p.set_defaults(func=func)

    p = sub.add_parser("kill", help="Kill one or more running containers")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_kill)

    for verb, func, text in (("pause", cmd_pause, "Pause all processes within one or more containers"),
                             ("unpause", cmd_unpause, "Unpause all processes within one or more containers"),
                             ("wait", cmd_wait, "Block until containers stop, then print their exit codes")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("containers", nargs="+")
        p.set_defaults(func=func)

    p = sub.add_parser("rename", help="Rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    p.set_defaults(func=cmd_rename)

    p = sub.add_parser("attach", help="Attach to a running container's input and output")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--sig-proxy", default="true")
    p.add_argument("--detach-keys")
    p.add_argument("container")
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("logs", help="Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--details", action="store_true")
    p.add_argument("container")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("top", help="Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("exec", help="Execute a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-u", "--user")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--detach-keys")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("stats", help="Display a live stream of container resource usage statistics")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("containers", nargs="*")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("ps", help="List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-n", "--last", type=int)
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("rm", help="Remove one or more containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes of the container")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("update", help="Update configuration of one or more containers")
    if built(p):
        from ..container.option_table import add_flag, update_flag_options

        for option in update_flag_options():  # what `update` may change in place (the option table's)
            add_flag(p, option, default=None)
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_update)

    p = sub.add_parser("inspect", help="Low-level information on containers or images")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_inspect)
