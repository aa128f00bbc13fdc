"""The `pycontainer` command: Docker's verbs and flags over the engine API.

Verbs live in ``image_commands`` and ``container_commands`` (each registers its subcommands). Engine errors
become a one-line message and Docker's exit codes here, and only here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import trace
from ..engine import Engine
from ..engine_log import redact_command
from ..errors import EngineError
from . import container_commands, image_commands, network_commands, system_commands, volume_commands
from .common import CliParser, UnbuiltParser, err

# argparse looks each of its messages up in the gettext catalogues every time it builds a parser (~18 ms for
# our ~60 verbs, on every command). The locale does not change within a process: look each one up once.
if not hasattr(argparse._, "cache_info"):
    import functools

    argparse._ = functools.lru_cache(maxsize=None)(argparse._)


class _OnlyCommand:
    """The subparsers action, building options only for ``command`` (every verb stays listed in --help)."""

    def __init__(self, real: argparse._SubParsersAction, command: str | None) -> None:
        self.real, self.command = real, command

    def add_parser(self, name: str, **kwargs):
        parser = self.real.add_parser(name, **kwargs)
        wanted = self.command is None or self.command in (name, *kwargs.get("aliases", ()))
        return parser if wanted else UnbuiltParser()

    def __getattr__(self, name: str):
        return getattr(self.real, name)


_GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--config", "-l", "--log-level")


def _command_word(argv: Sequence[str]) -> str | None:
    """The verb of this command line (None: unknown, or asking for help), skipping the global options."""
    args = list(argv)
    while args:
        word = args.pop(0)
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            args = args[1:]
        elif word.startswith("-"):
            if word in ("-h", "--help"):
                return None
        else:
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with ``argv``, only the options of the verb it names are built (~60 verbs' worth of
    add_argument calls would otherwise be paid by every command)."""
    parser = CliParser(prog="pycontainer", description="A daemonless container engine")
    parser.add_argument("--root", default=None, help="engine state directory (env PYCONTAINER_ROOT)")
    parser.add_argument("--config", default=None, help="engine config file (env PYCONTAINER_CONFIG)")
    parser.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error"],
                        help="level of the engine's own log (default: the config's log_level)")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=CliParser)
    sub.required = True
    verbs = _OnlyCommand(sub, _command_word(argv)) if argv is not None else sub
    for module in (image_commands, container_commands, system_commands, volume_commands, network_commands):
        module.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """``parser``: the whole CLI's, built once by the warm server (cli/server.py) for every command it forks."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not trace.enabled():  # served: the server began it at the hand-over
        trace.begin()
        trace.mark("imports")
    parser = parser or build_parser(argv)
    args = parser.parse_args(argv)
    trace.mark("parse arguments")
    engine = None
    # Never the raw line: `login -p`, `-e K=V` values are secrets (the log keeps their names only).
    command = redact_command(argv, _command_word(argv), env=getattr(args, "env", None) or (),
                             secrets=[getattr(args, "password", None) or ""] if _command_word(argv) == "login" else ())
    try:
        engine = Engine.from_options(root=args.root, config_path=args.config, log_level=args.log_level)
        engine.log.add_env(getattr(args, "env", None) or ())
        if _command_word(argv) == "login":
            engine.log.add_secret(getattr(args, "password", None))
        engine.log.debug("command", command=command)
        trace.mark("config")
        return args.func(engine, args)
    except EngineError as exc:
        if engine is not None:
            engine.log.error(str(exc), command=command, error=type(exc).__name__, exit_code=exc.exit_code)
        err(f"pycontainer: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if engine is not None:
            engine.log.error(f"internal error: {exc}", command=command, error=type(exc).__name__)
        if os.environ.get("PYCONTAINER_DEBUG"):
            raise
        err(f"pycontainer: internal error: {type(exc).__name__}: {exc}")
        return 125
    finally:
        trace.report()


if __name__ == "__main__":
    raise SystemExit(main())
