"""The command side of supervision: find (or spawn) the root's monitor and talk to it.

The monitor (``monitor.py``) must survive the command that spawned it: the CLI, or an Ansible module whose
temporary directory is deleted when it returns. So it is a fresh interpreter, double-forked into its own
session, with stdio on ``<root>/run/monitor.log``, running from a stable copy of the code: directories (the
target's code dir that modules import from, see ansible/engine_code.py; a git checkout; site-packages) are
used as they are; a zip file holding the engine (a module that could not keep the code and runs it from the
zip it was sent) is copied once to ``<root>/lib/<digest>.zip`` and used from there. Nothing it needs lives
in the caller's temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
from typing import TYPE_CHECKING

from .. import errors, trace
from ..fsutil import ensure_dir, locked
from . import protocol

if TYPE_CHECKING:
    from ..config import EngineConfig

_BOOT = ("import sys,json;sys.path[:0]=json.loads(sys.argv[1]);"
         "from ansible_collections.pycontainer.engine.plugins.module_utils.supervision.monitor import main;"
         "sys.exit(main(sys.argv[2:]))")
_PACKAGE_DIR = "ansible_collections/pycontainer/engine"
_PACKAGE_IN_ZIP = _PACKAGE_DIR + "/plugins/module_utils/supervision/monitor.py"


class MonitorGone(Exception):
    """The monitor closed the connection before answering (it was exiting, or it crashed)."""


def raise_for(reply: dict) -> dict:
    if reply.get("ok"):
        return reply
    cls = getattr(errors, str(reply.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.EngineError)) or cls is errors.ContainerFailed:
        cls = errors.EngineError
    exc = cls(reply.get("error") or "monitor error")
    exc.__dict__.update(reply.get("fields") or {})
    raise exc


def connect(config: EngineConfig) -> protocol.Connection:
    """A connection to the root's monitor, spawning one if none runs."""
    run_dir = ensure_dir(config.paths.run, 0o700)
    path = protocol.socket_path(run_dir)
    try:
        return _connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        pass
    with locked(os.path.join(run_dir, "spawn.lock")):
        try:
            return _connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            spawn_monitor(config)
        return _connect(path)


def _connect(path: str) -> protocol.Connection:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return protocol.Connection(sock)


def request(config: EngineConfig, message: dict, attempts: int = 3) -> dict:
    """Send one request on a fresh connection and return the reply (typed engine errors are raised)."""
    for attempt in range(attempts):
        conn = connect(config)
        try:
            return raise_for(ask(conn, message))
        except MonitorGone:
            if attempt == attempts - 1:
                raise errors.EngineError("the container monitor went away; see <root>/run/monitor.log") from None
        finally:
            conn.close()
    raise AssertionError("unreachable")


def ask(conn: protocol.Connection, message: dict) -> dict:
    if trace.enabled():
        message = {**message, "trace": True}
    try:
        conn.send_control(message)
        reply = conn.next_control()
    except (BrokenPipeError, ConnectionResetError):
        reply = None
    if reply is None:
        raise MonitorGone()
    trace.add(reply.pop("trace", None) or [], f"monitor {message.get('op')}: ")
    return reply


def monitor_running(config: EngineConfig) -> bool:
    try:
        _connect(protocol.socket_path(config.paths.run)).close()
        return True
    except OSError:
        return False


def spawn_monitor(config: EngineConfig) -> None:
    """Start the monitor detached from us and wait until it listens (or reports why it cannot)."""
    paths = code_path(config)
    run_dir = config.paths.run
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # never return into the caller's code
        try:
            os.close(ready_r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            log_fd = os.open(os.path.join(run_dir, "monitor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            # Nothing of the caller's may stay open in the monitor (a capture pipe would never see EOF).
            os.closerange(3, ready_w)
            os.closerange(ready_w + 1, 1 << 20)
            os.set_inheritable(ready_w, True)
            # Not the caller's cwd nor umask: a module planted there must not shadow one the monitor imports,
            # and containers get Docker's 022, not whatever the command ran with.
            os.chdir("/")
            os.umask(0o022)
            # -I: no cwd, no PYTHON* variables, no user site on sys.path; only the engine's own entries.
            os.execv(sys.executable, [sys.executable, "-I", "-c", _BOOT, json.dumps(paths), config.root,
                                      config.config_path or "", str(ready_w)])
        finally:
            os._exit(127)
    os.close(ready_w)
    os.waitpid(pid, 0)
    chunks = []
    with os.fdopen(ready_r, "rb") as ready:
        while chunk := ready.read(4096):
            chunks.append(chunk)
    answer = b"".join(chunks).decode(errors="replace")
    if answer != "ready":
        raise errors.EngineError(answer or "the container monitor could not start; see "
                                 f"{os.path.join(run_dir, 'monitor.log')}")


def code_path(config: EngineConfig) -> list[str]:
    """``sys.path`` for the monitor: ours, with zip files that hold the engine replaced by stable copies."""
    paths = []
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:  # removed under us: nothing to skip
        cwd = ""
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        if os.path.realpath(entry) == cwd and not os.path.isdir(os.path.join(entry, _PACKAGE_DIR)):
            continue  # `python -m` puts the cwd first: whatever lies there is not the engine's code
        if os.path.isfile(entry) and _holds_engine(entry):
            entry = _stable_copy(entry, os.path.join(config.root, "lib"))
        paths.append(entry)
    return paths


def _holds_engine(path: str) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(_PACKAGE_IN_ZIP) for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _stable_copy(path: str, lib_dir: str) -> str:
    """Named by the content of its packages (entry names and CRCs; Ansible stamps each payload with the time
    and its own sitecustomize.py), so one copy serves every run of the same engine version."""
    import zipfile

    from ..fsutil import atomic_write_bytes

    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if "/" not in info.filename:
                continue
            digest.update(f"{info.filename}\0{info.CRC:08x}\0".encode())
    dest = os.path.join(ensure_dir(lib_dir, 0o700), digest.hexdigest()[:24] + ".zip")
    if not os.path.exists(dest):
        with open(path, "rb") as f:
            atomic_write_bytes(dest, f.read(), 0o600)
    return dest


def close_quietly(conn: protocol.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()
