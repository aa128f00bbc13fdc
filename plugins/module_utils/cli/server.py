"""A warm Python for the `pycontainer` command: the engine imported once, one forked child per command.

Started in the background by ``cli/client.py`` when no server answers, it exits after ``linger`` seconds
without a command (and never while a command it forked still runs). Containers never depend on it: it is an
accelerator for the command line, like Python's own forkserver, not a daemon (the monitor supervises).

Each child becomes the caller as far as the engine can tell: the caller's standard streams, working
directory, umask, environment, rlimits, nice value, OOM score and cgroups; then it runs ``cli.main.main``.
The server refuses (and the caller runs the command itself) a caller that is not in every one of its
namespaces, has another root directory, other credentials, capabilities, no_new_privs, seccomp mode or LSM
label, another interpreter or engine copy, or when the engine's sources changed since the server loaded them
(it then stops, so that the next command starts a current one).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

from .client import RUN_DIR, context, decode_request, package_dir

_MAX_REQUEST = 4 << 20  # argv and environment; ARG_MAX is 2 MiB
_ACCEPT_TIMEOUT = 5.0
# Imported before the first fork, so that no command pays for them (the lazily imported parts of every verb).
_WARM = ("engine", "container.service", "container.option_table", "container.compare", "container.update",
         "runtime.lifecycle", "runtime.validate", "runtime.logs", "image.service", "image.store", "system.views",
         "system.facts", "system.disk_usage", "system.prune", "network.modes", "network.service",
         "network.ports", "network.views", "supervision.supervisor", "supervision.attach",
         "linux.cgroups.detect", "linux.cgroups.limits")


def code_stamp(package: str) -> tuple:
    """Names, sizes and mtimes of the engine's sources: a change means this server runs old code."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(dirpath, name))
                    entries.append((dirpath, name, st.st_mtime_ns, st.st_size))
    return tuple(entries)


def refusal(pid: int, ours: list[tuple[str, str]]) -> str | None:
    """Why a caller may not have its command run here, or None (it could have run it itself, identically).
    ``ours``: the server's own ``context``, which does not change while it runs."""
    theirs = context(pid)
    if theirs == ours:
        return None
    differing = [reason for (reason, value), (_same, mine) in zip(theirs, ours, strict=False) if value != mine]
    return differing[0] if differing else "another context"


class Server:
    def __init__(self, path: str, linger: float) -> None:
        self.path, self.linger = path, linger
        self.package = package_dir()
        self.children: dict[int, socket.socket] = {}
        self.last_activity = time.monotonic()
        self.lock_fd = -1
        self.listener: socket.socket | None = None
        self.wake_r, self.wake_w = -1, -1
        self.stamp: tuple = ()
        self.bound_ino = 0
        self.parser = None
        self.context = context("self")

    # --- start and stop ---------------------------------------------------------------------------------
    def open(self) -> bool:
        """Take the server's lock and listen; False when another server has it (or the directory is not ours)."""
        st = os.lstat(RUN_DIR)
        if st.st_uid != 0 or st.st_mode & 0o077 or not os.path.isdir(RUN_DIR) or os.path.islink(RUN_DIR):
            return False
        self.lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(old)
        self.bound_ino = os.stat(self.path).st_ino  # ours to unlink, unless another server replaced it
        self.listener.listen(64)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop: children are reaped there
        signal.signal(signal.SIGTERM, lambda *_: self.stop_listening())
        return True

    def warm(self) -> None:
        import gc
        import importlib

        from .main import build_parser

        # Before the imports: a source changed while they run makes the next command restart us, never the
        # reverse (old code taken for current).
        self.stamp = code_stamp(self.package)
        self.parser = build_parser(None)  # every verb's module and the option table; each child parses with it
        base = __name__.rpartition(".")[0].rpartition(".")[0]
        for name in _WARM:
            importlib.import_module(f"{base}.{name}")
        gc.collect()
        gc.freeze()  # children share these pages instead of copying them when the collector touches them

    def stop_listening(self) -> None:
        """No new commands (running ones still get their status); the next caller starts a new server."""
        if self.listener is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.bound_ino:
                os.unlink(self.path)
        self.listener.close()
        self.listener = None
        os.close(self.lock_fd)

    # --- the loop ---------------------------------------------------------------------------------------
    def run(self) -> None:
        while self.listener is not None or self.children:
            if self.listener is not None and not self.children:
                left = self.last_activity + self.linger - time.monotonic()
                if left <= 0:
                    self.stop_listening()
                    continue
            else:
                left = None
            watched = [self.wake_r] + ([self.listener] if self.listener is not None else [])
            try:
                ready, _writable, _failed = select.select(watched, [], [], left)
            except InterruptedError:
                ready = []
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 512):
                        pass
            self.reap()
            if self.listener is not None and self.listener in ready:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    conn, _address = self.listener.accept()
                    self.last_activity = time.monotonic()
                    self.handle(conn)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            self.last_activity = time.monotonic()
            if conn is None:
                continue
            line = (f"signal {os.WTERMSIG(status)}\n" if os.WIFSIGNALED(status)
                    else f"exit {os.waitstatus_to_exitcode(status)}\n")
            with contextlib.suppress(OSError):
                conn.sendall(line.encode())
            conn.close()

    # --- one command ------------------------------------------------------------------------------------
    def receive(self, conn: socket.socket) -> tuple[bytes, list[int]]:
        conn.settimeout(_ACCEPT_TIMEOUT)
        fds: list[int] = []
        data, ancillary, _flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 8))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                        for i in range(0, len(payload) - len(payload) % 4, 4)]
        if len(data) >= 8:
            total = 8 + int.from_bytes(data[4:8], "big")
            if total > _MAX_REQUEST:
                raise ValueError("request too large")
            while len(data) < total:
                chunk = conn.recv(total - len(data))
                if not chunk:
                    break
                data += chunk
        return data, fds

    def handle(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            data, fds = self.receive(conn)
            package, executable, umask, argv, env = decode_request(data)
            pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            reason = None
            if len(fds) != 4:
                reason = "expected four file descriptors"
            elif uid != 0:
                reason = "not root"
            elif os.path.realpath(package) != self.package or \
                    os.path.realpath(executable) != os.path.realpath(sys.executable):
                reason = "another engine copy or interpreter"
            else:
                reason = refusal(pid, self.context)
            if reason is None and code_stamp(self.package) != self.stamp:
                reason = "the engine's sources changed"
                self.stop_listening()
            if reason is not None:
                conn.sendall(f"no {reason}\n".encode())
                conn.close()
                return
            child = os.fork()
            if child == 0:
                self.become_child(conn, fds, argv, env, umask, pid)  # never returns
            self.children[child] = conn
            conn.settimeout(None)
            conn.sendall(f"ok {child}\n".encode())
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                conn.sendall(f"no {type(exc).__name__}\n".encode())
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def become_child(self, conn: socket.socket, fds: list[int], argv: list[str], env: dict[str, str],
                     umask: int, caller: int) -> None:
        code = 125
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                           signal.SIGUSR2, signal.SIGWINCH):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if self.listener is not None:
                self.listener.close()
            for other in self.children.values():
                other.close()
            conn.close()
            for fd in (self.wake_r, self.wake_w, self.lock_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            for target, fd in enumerate(fds[:3]):
                os.dup2(fd, target)
            os.fchdir(fds[3])
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            os.umask(umask)
            os.environ.clear()
            os.environ.update(env)
            as_caller(caller)
            _stdio(bool(env.get("PYTHONUNBUFFERED")))
            _die_with(caller)
            from .. import trace

            trace.begin()
            trace.mark("hand-over to the warm CLI server")
            code = _run(argv, self.parser)
        except BaseException:  # pylint: disable=broad-except  # nothing may escape into the server's loop
            with contextlib.suppress(BaseException):
                import traceback

                traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
            os._exit(code & 0xFF)


def as_caller(pid: int) -> None:
    """Take the caller's rlimits, nice value, OOM score and cgroups (best effort: what cannot be set stays)."""
    import resource

    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            with contextlib.suppress(OSError, ValueError):
                resource.setrlimit(getattr(resource, name), resource.prlimit(pid, getattr(resource, name)))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, pid))
    with contextlib.suppress(OSError), open(f"/proc/{pid}/oom_score_adj") as src, \
            open("/proc/self/oom_score_adj", "w") as dst:
        dst.write(src.read())
    from ..linux.cgroups.membership import join_cgroups_of

    join_cgroups_of(pid)


def _stdio(unbuffered: bool) -> None:
    import io

    encoding = getattr(sys.__stdout__, "encoding", None) or "utf-8"
    errors = getattr(sys.__stdout__, "errors", None) or "strict"
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 encoding=encoding, errors=errors)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                                   encoding=encoding, errors=errors,
                                                   line_buffering=unbuffered or os.isatty(1),
                                                   write_through=unbuffered)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                                   encoding=encoding, errors="backslashreplace",
                                                   line_buffering=True, write_through=unbuffered)


def _die_with(pid: int) -> None:
    """Killed with the caller: a command whose caller is gone (killed by a timeout, say) must not go on."""
    import threading

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        os._exit(137)

    def watch() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="caller-watch", daemon=True).start()


def _run(argv: list[str], parser) -> int:
    from .main import main

    try:
        return main(argv, parser)
    except SystemExit as exc:  # argparse: usage errors (125), --help (0)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")
        return 1


def serve(path: str, linger: float) -> None:
    server = Server(path, linger)
    if not server.open():
        return
    server.warm()
    server.run()
