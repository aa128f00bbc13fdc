"""The `pycontainer` command: Docker's verbs and flags over the engine API.

Engine errors become a one-line message and Docker's exit codes here, and only here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from ..engine import Engine
from ..errors import EngineError, InvalidArgument
from ..runtime.service import CreateOptions, Stdio

PS_COLUMNS = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
              ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]
IMAGES_COLUMNS = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                  ("CREATED", "CreatedSince"), ("SIZE", "Size")]
IMAGES_DIGEST_COLUMNS = [*IMAGES_COLUMNS[:2], ("DIGEST", "Digest"), *IMAGES_COLUMNS[2:]]


def _out(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _progress(quiet: bool, stream=None) -> Callable[[str], None] | None:
    if quiet:
        return None
    target = stream or sys.stdout

    def emit(line: str) -> None:
        target.write(line + "\n")
        target.flush()

    return emit


# -- commands ---------------------------------------------------------------------------------------------
def cmd_pull(engine: Engine, args: argparse.Namespace) -> int:
    from ..image.reference import parse_reference

    reference = parse_reference(args.image)
    engine.images.pull(args.image, platform=args.platform, progress=_progress(args.quiet))
    _out(str(reference))  # Docker prints the fully qualified reference last, -q or not
    return 0


def cmd_images(engine: Engine, args: argparse.Namespace) -> int:
    from ..views import image_rows

    rows = [row for record in engine.images.list() for row in image_rows(record, trunc=not args.no_trunc)]
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        _out("\n".join(seen))
        return 0
    from .output import render

    columns = IMAGES_DIGEST_COLUMNS if args.digests else IMAGES_COLUMNS
    _out(render(rows, columns, args.format))
    return 0


def cmd_image_inspect(engine: Engine, args: argparse.Namespace) -> int:
    from ..views import inspect_image

    return _inspect([inspect_image(engine.images.inspect(name)) for name in args.names], args.format)


def _inspect(documents: list[dict], fmt: str | None) -> int:
    if fmt:
        from .output import render_template

        _out("\n".join(render_template(fmt, d) for d in documents))
    else:
        _out(json.dumps(documents, indent=4))
    return 0


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
        network_mode=args.network,
        auto_remove=args.rm,
        pull=args.pull,
    )


def cmd_run(engine: Engine, args: argparse.Namespace) -> int:
    if args.detach:
        raise InvalidArgument("detached containers (-d) are not supported yet: run in the foreground")
    options = _create_options(args)
    stdin = 0 if args.interactive else None
    stdio = Stdio(stdin=stdin, stdout=1, stderr=2)
    result = engine.containers.run(options, stdio, progress=_progress(False, sys.stderr))
    return result.exit_code


def cmd_ps(engine: Engine, args: argparse.Namespace) -> int:
    from ..views import container_row

    records = engine.containers.list(all=args.all or args.latest or args.last is not None)
    if args.latest:
        records = records[:1]
    elif args.last is not None and args.last >= 0:
        records = records[: args.last]
    if args.quiet:
        _out("\n".join(r.id if args.no_trunc else r.id[:12] for r in records))
        return 0
    from .output import render

    _out(render([container_row(r, trunc=not args.no_trunc) for r in records], PS_COLUMNS, args.format))
    return 0


def cmd_rm(engine: Engine, args: argparse.Namespace) -> int:
    failed = False
    for ref in args.containers:
        try:
            engine.containers.remove(ref, force=args.force)
            _out(ref)
        except EngineError as exc:
            _err(f"Error response from daemon: {exc}")
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
    return _inspect(documents, args.format)


# -- parser -----------------------------------------------------------------------------------------------
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
    p.add_argument("--pull", default="missing", choices=["missing", "always", "never"])
    p.add_argument("--help", action="help")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 125 with one line, as Docker's CLI does, instead of argparse's 2."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        _err(f"{self.prog}: {message}")
        sys.exit(125)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pycontainer", description="A daemonless container engine")
    parser.add_argument("--root", default=None, help="engine state directory (env PYCONTAINER_ROOT)")
    parser.add_argument("--config", default=None, help="engine config file (env PYCONTAINER_CONFIG)")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("pull", help="Download an image from a registry")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform")
    p.add_argument("image")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("images", help="List images")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.set_defaults(func=cmd_images)

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
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("inspect", help="Low-level information on containers or images")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_inspect)

    image = sub.add_parser("image", help="Manage images")
    image_sub = image.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=_Parser)
    image_sub.required = True
    p = image_sub.add_parser("inspect")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_image_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        engine = Engine.from_options(root=args.root, config_path=args.config)
        return args.func(engine, args)
    except EngineError as exc:
        _err(f"pycontainer: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("PYCONTAINER_DEBUG"):
            raise
        _err(f"pycontainer: internal error: {type(exc).__name__}: {exc}")
        return 125


if __name__ == "__main__":
    sys.exit(main())
