"""The engine's own log, written by every command (daemonless: there is no daemon log to read).

One line per action and per error, appended with a single O_APPEND write, so concurrent commands never
interleave. Text lines are logfmt as dockerd writes them (``time=… level=info msg="…" key=value``); JSON
lines carry the same keys. The file is reopened for every line, so logrotate's rename needs no signal.
Cheap on purpose: the `logging` package would cost every command its import time.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Sequence
from typing import Any

from .errors import InvalidArgument

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}
REDACTED = "*****"
# Credentials that may ride along in a message (a registry's error body, a header echoed back): whatever follows
# an HTTP auth scheme or a token key is never written.
_CREDENTIAL_RE = re.compile(
    r"""(?i)(\b(?:basic|bearer)\s+|["']?\b(?:access_token|refresh_token|token|password|authorization)["']?\s*[:=]\s*"""
    r"""["']?(?:(?:basic|bearer)\s+)?)[^\s"',}]+""")


class EngineLog:
    def __init__(self, path: str, level: str = "info", fmt: str = "text") -> None:
        if level not in LEVELS:
            raise InvalidArgument(f'invalid log level "{level}": use one of debug, info, warn, error')
        if fmt not in ("text", "json"):
            raise InvalidArgument(f'invalid log format "{fmt}": use text or json')
        self.path = path
        self.threshold = LEVELS[level]
        self.fmt = fmt
        self._secrets: list[str] = []

    def add_secret(self, *values: str | None) -> None:
        """Strings never to be written (a password, env values): replaced wherever they appear in a line."""
        for value in values:
            if value and value not in self._secrets:
                self._secrets.append(value)
        self._secrets.sort(key=len, reverse=True)  # the longest first: a secret inside another one

    def add_env(self, env: Sequence[str]) -> None:
        """A container's ``KEY=VALUE`` pairs as secrets (a bare ``KEY`` or an empty value holds none)."""
        self.add_secret(*(item for item in env if item.partition("=")[2]))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _CREDENTIAL_RE.sub(lambda m: m.group(1) + REDACTED, text)

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Write one line; logging never fails the command it describes."""
        if not self.path or LEVELS[level] < self.threshold:
            return
        stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        record = {"time": stamp, "level": "warning" if level == "warn" else level, "msg": self.redact(message),
                  **{k: self.redact(str(v)) if isinstance(v, str) else v for k, v in fields.items()}}
        if self.fmt == "json":
            line = json.dumps(record, separators=(",", ":"), default=str)
        else:
            line = " ".join(f"{k}={_logfmt(v)}" for k, v in record.items())
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o750, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)


def _logfmt(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return json.dumps(text)


# Flags whose value is a secret, per verb (Docker's CLI: `login -p/--password`); env values are secret for every
# verb that takes them (`run`, `create`, `exec`: Docker never logs a container's environment).
_SECRET_FLAGS = {"login": ("-p", "--password")}
_ENV_FLAGS = ("-e", "--env")


def redact_command(argv: Sequence[str], verb: str | None, env: Sequence[str] = (),
                   secrets: Sequence[str] = ()) -> str:
    """The command line as the log may keep it: values of secret-bearing flags replaced by ``REDACTED``.

    ``env`` and ``secrets`` are the values the parser found for those flags, so that every spelling (combined
    short flags such as ``-de K=V``, ``--env=K=V``, ``-pSECRET``) is caught; an env value keeps its name.
    """
    secret_flags = _SECRET_FLAGS.get(verb or "", ())
    words: list[str] = []
    pending = ""  # the flag whose value is the next word
    for word in argv:
        flag, eq, value = word.partition("=")
        if pending:
            words.append(_hide_env(word) if pending in _ENV_FLAGS else REDACTED)
            pending = ""
        elif word in secret_flags or word in _ENV_FLAGS:
            pending = word
            words.append(word)
        elif eq and flag in secret_flags:
            words.append(f"{flag}={REDACTED}")
        elif eq and flag in _ENV_FLAGS:
            words.append(f"{flag}={_hide_env(value)}")
        else:
            words.append(word)
    text = " ".join(words)
    replacements = [(v, _hide_env(v)) for v in env if "=" in v] + [(v, REDACTED) for v in secrets if v]
    for value, hidden in sorted(replacements, key=lambda r: len(r[0]), reverse=True):
        if value != hidden:
            text = text.replace(value, hidden)
    return text


def _hide_env(value: str) -> str:
    """``KEY=VALUE`` -> ``KEY=*****``; a bare ``KEY`` (taken from the caller's environment) names no value."""
    name, eq, rest = value.partition("=")
    return f"{name}={REDACTED}" if eq and rest else value
