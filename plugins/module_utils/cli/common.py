"""What every CLI command shares: output, progress lines, inspect documents."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable


class CliParser(argparse.ArgumentParser):
    """Usage errors exit 125 with one line, as Docker's CLI does, instead of argparse's 2.

    Pass it as ``parser_class`` to every ``add_subparsers`` so nested verbs behave the same.
    """

    def error(self, message: str):
        self.print_usage(sys.stderr)
        err(f"{self.prog}: {message}")
        raise SystemExit(125)


class UnbuiltParser:
    """Stands in for the parser of a verb this invocation does not use: its options are never built (and what
    they would be built from, such as the option table, never imported)."""

    def __getattr__(self, _name: str):
        return lambda *args, **kwargs: UnbuiltParser()


def built(parser: object) -> bool:
    """Whether ``parser`` is a real one (the verb being run, or every verb for --help)."""
    return not isinstance(parser, UnbuiltParser)


def confirm(warning: str) -> bool:
    """Docker's prune prompt: the warning, then yes only for "y"/"yes" on stdin (no answer means no)."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def out(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def progress(quiet: bool, stream=None) -> Callable[[str], None] | None:
    if quiet:
        return None
    target = stream or sys.stdout

    def emit(line: str) -> None:
        target.write(line + "\n")
        target.flush()

    return emit


def print_inspect(documents: list[dict], fmt: str | None) -> int:
    if fmt:
        from .output import render_template

        out("\n".join(render_template(fmt, d) for d in documents))
    else:
        out(json.dumps(documents, indent=4))
    return 0
