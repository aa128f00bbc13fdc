"""Image verbs: pull, push, images, rmi, tag, history, save, load, import, login, logout and `image ...`."""

from __future__ import annotations

import argparse
import fnmatch
import sys
import threading
import time

from ..engine import Engine
from ..errors import EngineError, InvalidArgument
from .common import CliParser, confirm, err, out, print_inspect, progress

IMAGES_COLUMNS = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                  ("CREATED", "CreatedSince"), ("SIZE", "Size")]
IMAGES_DIGEST_COLUMNS = [*IMAGES_COLUMNS[:2], ("DIGEST", "Digest"), *IMAGES_COLUMNS[2:]]
HISTORY_COLUMNS = [("IMAGE", "ID"), ("CREATED", "CreatedSince"), ("CREATED BY", "CreatedBy"),
                   ("SIZE", "Size"), ("COMMENT", "Comment")]


class TtyProgress:
    """Docker's live pull display: one line per layer, redrawn in place (ANSI cursor moves)."""

    BAR = 50

    def __init__(self, stream) -> None:
        self.stream = stream
        self.order: list[str] = []
        self.rows: dict[str, str] = {}
        self.drawn = 0
        self.lock = threading.Lock()
        self.last = 0.0

    def line(self, text: str) -> None:
        head, sep, _rest = text.partition(": ")
        if sep and head in self.rows:
            return  # a layer's plain status line: its row already says it
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()
            if self.order:
                self.order, self.rows, self.drawn = [], {}, 0  # a new block (next image of -a)

    def layer(self, short: str, status: str, current: int, total: int | None) -> None:
        from ..timefmt import human_size

        if status == "Downloading" and total:
            filled = min(self.BAR, int(self.BAR * current / total)) if total else 0
            arrow = "=" * max(filled - 1, 0) + (">" if filled < self.BAR else "=")
            text = f"Downloading [{arrow.ljust(self.BAR)}]  {human_size(current, 3)}/{human_size(total, 3)}"
        else:
            text = status
        with self.lock:
            if short not in self.rows:
                self.order.append(short)
            self.rows[short] = f"{short}: {text}"
            now = time.monotonic()
            if status == "Downloading" and now - self.last < 0.1:
                return
            self.last = now
            self._draw()

    def _draw(self) -> None:
        parts = []
        if self.drawn:
            parts.append(f"\x1b[{self.drawn}A")
        for short in self.order:
            parts.append("\x1b[2K" + self.rows[short] + "\n")
        self.drawn = len(self.order)
        self.stream.write("".join(parts))
        self.stream.flush()


def cmd_pull(engine: Engine, args: argparse.Namespace) -> int:
    from ..image.reference import parse_reference

    reference = parse_reference(args.image)
    lines, layers = progress(args.quiet), None
    if not args.quiet and sys.stdout.isatty():
        tty = TtyProgress(sys.stdout)
        lines, layers = tty.line, tty.layer
    if args.all_tags:
        records = engine.images.pull_all_tags(args.image, args.platform, lines, layers)
        out(reference.name if reference.tag == "latest" else str(reference))
        return 0 if records else 1
    engine.images.pull(args.image, platform=args.platform, progress=lines, layer_progress=layers)
    out(str(reference))  # Docker prints the fully qualified reference last, -q or not
    return 0


def cmd_push(engine: Engine, args: argparse.Namespace) -> int:
    engine.images.push(args.image, progress=progress(args.quiet))
    return 0


def _image_filters(engine: Engine, filters: list[str]):
    """Docker's `images --filter`: dangling, reference, label, before, since."""
    from ..event_filters import label_matches
    from ..timefmt import parse_rfc3339

    record_tests, row_tests = [], []
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        if key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            want = value.lower() in ("true", "1")
            record_tests.append(lambda r, want=want: (not r.repo_tags) == want)
        elif key == "label":
            record_tests.append(lambda r, v=value: label_matches((r.config.get("config") or {}).get("Labels") or {}, v))
        elif key in ("before", "since"):
            pivot = parse_rfc3339(engine.images.inspect(value).created)
            if key == "before":
                record_tests.append(lambda r, p=pivot: parse_rfc3339(r.created) < p)
            else:
                record_tests.append(lambda r, p=pivot: parse_rfc3339(r.created) > p)
        elif key == "reference":
            row_tests.append(lambda row, v=value: _reference_matches(row, v))
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return record_tests, row_tests


def _reference_matches(row: dict, pattern: str) -> bool:
    repo, tag = row["Repository"], row["Tag"]
    if repo == "<none>":
        return False
    if ":" in pattern.rpartition("/")[2]:
        return fnmatch.fnmatchcase(f"{repo}:{tag}", pattern)
    return fnmatch.fnmatchcase(repo, pattern)


def cmd_images(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.views import image_rows

    filters = list(args.filter)
    if args.reference:
        filters.append(f"reference={args.reference}")
    record_tests, row_tests = _image_filters(engine, filters)
    records = [r for r in engine.images.list() if all(t(r) for t in record_tests)]
    rows = [row for record in records for row in image_rows(record, trunc=not args.no_trunc)
            if all(t(row) for t in row_tests)]
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        out("\n".join(seen))
        return 0
    from .output import render

    columns = IMAGES_DIGEST_COLUMNS if args.digests else IMAGES_COLUMNS
    out(render(rows, columns, args.format))
    return 0


def cmd_image_inspect(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.views import inspect_image

    return print_inspect([inspect_image(engine.images.inspect(name)) for name in args.names], args.format)


def cmd_rmi(engine: Engine, args: argparse.Namespace) -> int:
    failed = False
    for name in args.images:
        try:
            report = engine.images.remove(name, force=args.force)
        except EngineError as exc:
            err(f"Error response from daemon: {exc}")
            failed = True
            continue
        out("\n".join(report.lines()))
    return 1 if failed else 0


def cmd_tag(engine: Engine, args: argparse.Namespace) -> int:
    engine.images.tag(args.source, args.target)
    return 0


def cmd_history(engine: Engine, args: argparse.Namespace) -> int:
    from ..system.views import history_row

    rows = [history_row(e, trunc=not args.no_trunc, human=args.human)
            for e in engine.images.history(args.image)]
    if args.quiet:
        out("\n".join(r["ID"] for r in rows))
        return 0
    from .output import render

    out(render(rows, HISTORY_COLUMNS, args.format))
    return 0


def cmd_prune(engine: Engine, args: argparse.Namespace) -> int:
    from ..timefmt import human_size

    if not args.force:
        what = "all images without at least one container associated to them" if args.all else "all dangling images"
        if not confirm(f"WARNING! This will remove {what}."):
            return 0
    report = engine.images.prune(all_images=args.all, filters=args.filter)
    lines = report.lines(lower=True)
    if lines:
        out("Deleted Images:\n" + "\n".join(lines) + "\n")
    out(f"Total reclaimed space: {human_size(report.reclaimed, 3)}")
    return 0


def cmd_save(engine: Engine, args: argparse.Namespace) -> int:
    if args.output:
        engine.images.save_to_file(args.images, args.output)
        return 0
    if sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    sys.stdout.flush()
    engine.images.save(args.images, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


def cmd_load(engine: Engine, args: argparse.Namespace) -> int:
    if args.input:
        results = engine.images.load(path=args.input)
    else:
        if sys.stdin.isatty():
            raise InvalidArgument("requested load from stdin, but stdin is empty")
        results = engine.images.load(stream=sys.stdin.buffer)
    for item in results:
        if item.tags:
            for tag in item.tags:
                out(f"Loaded image: {tag}")
        else:
            out(f"Loaded image ID: {item.image_id}")
    return 0


def cmd_import(engine: Engine, args: argparse.Namespace) -> int:
    record, _changed = engine.images.import_image(
        args.file, args.reference, message=args.message or "", changes=args.change,
        stream=sys.stdin.buffer if args.file == "-" else None, platform=args.platform)
    out(record.id)
    return 0


def cmd_login(engine: Engine, args: argparse.Namespace) -> int:
    username, password = args.username, args.password
    if password is not None and args.password_stdin:
        raise InvalidArgument("--password and --password-stdin are mutually exclusive")
    if args.password_stdin:
        if not username:
            raise InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument("Cannot perform an interactive login from a non TTY device")
        username = input("Username: ").strip()
    if password is None:
        import getpass

        if not sys.stdin.isatty():
            raise InvalidArgument("Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ")
    engine.log.add_secret(password)  # however it came: nothing the engine logs from here on may hold it
    engine.images.login(args.server, username, password)
    out("Login Succeeded")
    return 0


def cmd_logout(engine: Engine, args: argparse.Namespace) -> int:
    key, removed = engine.images.logout(args.server)
    out(f"Removing login credentials for {key}" if removed else f"Not logged in to {key}")
    return 0


def _add(sub, names: list[str], help_text: str, func, build) -> None:
    for i, name in enumerate(names):
        p = sub.add_parser(name, help=help_text if i == 0 else argparse.SUPPRESS)
        build(p)
        p.set_defaults(func=func)


def _pull_args(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("--platform")
    p.add_argument("image")


def _push_args(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")


def _images_args(p) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("reference", nargs="?")


def _rmi_args(p) -> None:
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+")


def _tag_args(p) -> None:
    p.add_argument("source")
    p.add_argument("target")


def _history_args(p) -> None:
    p.add_argument("-H", "--human", type=lambda v: v.lower() not in ("false", "0"), default=True, nargs="?",
                   const=True)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format")
    p.add_argument("image")


def _save_args(p) -> None:
    p.add_argument("-o", "--output")
    p.add_argument("images", nargs="+")


def _load_args(p) -> None:
    p.add_argument("-i", "--input")
    p.add_argument("-q", "--quiet", action="store_true")


def _import_args(p) -> None:
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message")
    p.add_argument("--platform")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")


def _prune_args(p) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])


def register(sub: argparse._SubParsersAction) -> None:
    _add(sub, ["pull"], "Download an image from a registry", cmd_pull, _pull_args)
    _add(sub, ["push"], "Upload an image to a registry", cmd_push, _push_args)
    _add(sub, ["images"], "List images", cmd_images, _images_args)
    _add(sub, ["rmi"], "Remove one or more images", cmd_rmi, _rmi_args)
    _add(sub, ["tag"], "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", cmd_tag, _tag_args)
    _add(sub, ["history"], "Show the history of an image", cmd_history, _history_args)
    _add(sub, ["save"], "Save one or more images to a tar archive (streamed to STDOUT by default)",
         cmd_save, _save_args)
    _add(sub, ["load"], "Load an image from a tar archive or STDIN", cmd_load, _load_args)
    _add(sub, ["import"], "Import the contents from a tarball to create a filesystem image", cmd_import,
         _import_args)

    p = sub.add_parser("login", help="Log in to a registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("server", nargs="?")
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="Log out from a registry")
    p.add_argument("server", nargs="?")
    p.set_defaults(func=cmd_logout)

    image = sub.add_parser("image", help="Manage images")
    image_sub = image.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=CliParser)
    image_sub.required = True
    p = image_sub.add_parser("inspect", help="Display detailed information on one or more images")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_image_inspect)
    _add(image_sub, ["ls", "list"], "List images", cmd_images, _images_args)
    _add(image_sub, ["rm", "remove"], "Remove one or more images", cmd_rmi, _rmi_args)
    _add(image_sub, ["pull"], "Download an image from a registry", cmd_pull, _pull_args)
    _add(image_sub, ["push"], "Upload an image to a registry", cmd_push, _push_args)
    _add(image_sub, ["tag"], "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", cmd_tag, _tag_args)
    _add(image_sub, ["history"], "Show the history of an image", cmd_history, _history_args)
    _add(image_sub, ["prune"], "Remove unused images", cmd_prune, _prune_args)
    _add(image_sub, ["save"], "Save one or more images to a tar archive", cmd_save, _save_args)
    _add(image_sub, ["load"], "Load an image from a tar archive or STDIN", cmd_load, _load_args)
    _add(image_sub, ["import"], "Import a tarball to create a filesystem image", cmd_import, _import_args)
