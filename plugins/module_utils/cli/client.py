"""The `pycontainer` command's entry point: hand the command line to a warm CLI server, or run it here.

Every command is a new Python process, and most of what a short command costs is imports (~40 ms of engine
and standard library for `ps`). ``cli/server.py`` keeps one Python with the engine imported; this entry point
passes it the command line, the environment, the umask and the terminal (file descriptors 0-2 and the working
directory, over SCM_RIGHTS), the server forks a child that runs ``cli.main.main`` exactly as this process
would, and this process forwards signals to it and exits with its status. Nothing here may import more than
the interpreter already has: the whole point is what is *not* loaded.

``PYCONTAINER_CLI_SERVER=require`` waits for a server and fails (exit 125, with the server's reason) instead
of running the command here: tests use it to know which path ran. The command runs here instead, unchanged,
when: not root; ``PYCONTAINER_CLI_SERVER=0``; a fault injection is set
(``faults.py`` reads it at import); a standard stream is closed; no server answers (one is then started in
the background for the next command); or the server refuses (another namespace, credentials or capabilities
than its own, other engine code). See docs/cli-server.md.
"""

from __future__ import annotations

import os
import sys
import time

_START = time.monotonic()  # where a traced command's phases start (trace.py; CLOCK_MONOTONIC is system-wide)

_MAGIC = b"PYC1"
RUN_DIR = "/run/pycontainer/cli"  # root-only (the server checks): /run/pycontainer itself is 0755
DISABLE_ENV = "PYCONTAINER_CLI_SERVER"
LINGER_ENV = "PYCONTAINER_CLI_LINGER"
SOCKET_ENV = "PYCONTAINER_CLI_SOCKET"  # tests: ask a given server (another context's) instead of ours
DEFAULT_LINGER = 60.0
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT")


def package_dir() -> str:
    """The engine's ``module_utils`` directory this code was loaded from (server and client must agree)."""
    return os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_NAMESPACES = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup")
_STATUS_FIELDS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")


def context(pid: int | str = "self") -> list[tuple[str, str]]:
    """What a command inherits from its process, as (the refusal when it differs, value) pairs: the server
    must share all of it with a caller to run its command identically (namespaces, root directory,
    credentials, capabilities, no_new_privs, seccomp, LSM label)."""
    parts = [(f"another {ns} namespace", os.readlink(f"/proc/{pid}/ns/{ns}")) for ns in _NAMESPACES]
    root = os.stat(f"/proc/{pid}/root")
    parts.append(("another root directory", f"{root.st_dev}:{root.st_ino}"))
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _sep, value = line.partition(":")
            if key in _STATUS_FIELDS:
                parts.append(("other credentials or capabilities", f"{key} {' '.join(value.split())}"))
    try:
        with open(f"/proc/{pid}/attr/current", "rb") as f:
            parts.append(("another security label", f.read().decode(errors="replace")))
    except OSError:
        pass
    return parts


def socket_path(package: str, executable: str) -> str:
    """One server per engine copy, interpreter and context (a server started from ``unshare --net`` serves
    that namespace, not the host's). The server checks all of it again: a key collision only misses."""
    import zlib

    override = os.environ.get(SOCKET_ENV)
    if override:
        return override
    key = "\0".join([package, executable, *(value for _name, value in context())])
    return os.path.join(RUN_DIR, f"cli-{zlib.crc32(key.encode(errors='surrogateescape')):08x}.sock")


def linger() -> float:
    try:
        return max(0.0, float(os.environ.get(LINGER_ENV, DEFAULT_LINGER)))
    except ValueError:
        return DEFAULT_LINGER


def _wanted() -> bool:
    if os.geteuid() != 0 or os.environ.get(DISABLE_ENV, "1") == "0" or linger() == 0:
        return False
    if any(name.startswith("PYCONTAINER_FAULT") for name in os.environ):
        return False
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return True


def encode_request(package: str, executable: str, umask: int, argv: list[str], env: dict[str, str]) -> bytes:
    fields = [package, executable, str(umask), str(len(argv)), *argv, *(f"{k}={v}" for k, v in env.items())]
    body = b"\0".join(f.encode(errors="surrogateescape") for f in fields)
    return _MAGIC + len(body).to_bytes(4, "big") + body


def decode_request(data: bytes) -> tuple[str, str, int, list[str], dict[str, str]]:
    """The server's side of ``encode_request`` (ValueError on anything malformed)."""
    if data[:4] != _MAGIC or len(data) < 8 or int.from_bytes(data[4:8], "big") != len(data) - 8:
        raise ValueError("not a pycontainer CLI request")
    fields = [f.decode(errors="surrogateescape") for f in data[8:].split(b"\0")]
    package, executable, umask, count = fields[:4]
    argv = fields[4:4 + int(count)]
    if len(argv) != int(count):
        raise ValueError("truncated request")
    env = dict(item.partition("=")[::2] for item in fields[4 + int(count):] if item)
    return package, executable, int(umask), argv, env


def _run_locally(argv: list[str]) -> int:
    from .main import main as local_main

    return local_main(argv)


def _spawn_server(path: str) -> None:
    """Start a server for the next command, detached; this command does not wait for it."""
    import json

    paths = [p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]
    boot = ("import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
            "from ansible_collections.pycontainer.engine.plugins.module_utils.cli.server import serve; "
            "serve(sys.argv[2], float(sys.argv[3]))")
    try:
        os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
        pid = os.fork()
    except OSError:
        return
    if pid == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 1 << 16)
            os.chdir("/")
            os.umask(0o022)
            os.execv(sys.executable, [sys.executable, "-I", "-c", boot, json.dumps(paths), path, str(linger())])
        finally:
            os._exit(127)
    os.waitpid(pid, 0)


class NotRootsServer(Exception):
    """The socket answers, but not as root: nothing is sent to it."""


def _connect(path: str):
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        # Only a root server gets the command line, the environment and the terminal (the socket path can be
        # overridden, and a socket elsewhere may be anyone's): pid, uid, gid of the peer, native ints.
        uid = int.from_bytes(sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)[4:8], sys.byteorder)
    except OSError:
        sock.close()
        return None
    if uid != 0:
        sock.close()
        raise NotRootsServer(f"{path} is served by uid {uid}, not root")
    return sock


def _required() -> bool:
    return os.environ.get(DISABLE_ENV) == "require"


def _refused(reason: str) -> int:
    sys.stderr.write(f"pycontainer: the CLI server did not run the command ({DISABLE_ENV}=require): {reason}\n")
    return 125


def _read_line(sock, buffer: bytearray) -> bytes | None:
    while b"\n" not in buffer:
        data = sock.recv(4096)
        if not data:
            return None
        buffer += data
    line, _sep, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def _forward_signals(pid: int) -> None:
    import _signal

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # already gone: its status is on the way
        return

    def forward(signum, _frame):
        try:  # noqa: SIM105  # not contextlib: this module imports nothing the interpreter has not
            _signal.pidfd_send_signal(pidfd, signum)
        except OSError:
            pass

    for name in _FORWARDED:
        _signal.signal(getattr(_signal, name), forward)


def _through_server(argv: list[str]) -> int | None:
    """The command's exit status from the server, or None when it must run here."""
    package = package_dir()
    path = socket_path(package, sys.executable)
    try:
        sock = _connect(path)
    except NotRootsServer as exc:
        return _refused(str(exc)) if _required() else None
    if sock is None:
        _spawn_server(path)
        if not _required():
            return None
        deadline = time.monotonic() + 10
        while sock is None and time.monotonic() < deadline:
            time.sleep(0.02)
            try:
                sock = _connect(path)
            except NotRootsServer as exc:
                return _refused(str(exc))
        if sock is None:
            return _refused("no server started")
    accepted = False
    try:
        import _socket

        umask = os.umask(0o022)
        os.umask(umask)
        request = encode_request(package, sys.executable, umask, argv, dict(os.environ))
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fds = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (0, 1, 2, cwd))
            sent = sock.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            if sent < len(request):
                sock.sendall(request[sent:])
        finally:
            os.close(cwd)
        buffer = bytearray()
        answer = _read_line(sock, buffer)
        if answer is None or not answer.startswith(b"ok "):  # refused, or gone before accepting: nothing ran
            return _refused(answer[3:].decode(errors="replace") if answer else "no answer") if _required() else None
        accepted = True
        _forward_signals(int(answer[3:]))
        status = _read_line(sock, buffer)
    except OSError as exc:
        if not accepted:
            return _refused(str(exc)) if _required() else None
        status = None
    finally:
        sock.close()
    if status is None:
        sys.stderr.write("pycontainer: the CLI server ended without the command's exit status\n")
        return 125
    kind, _sep, value = status.decode().partition(" ")
    if kind == "signal":  # as the shell would have seen the command die
        import _signal

        _signal.signal(int(value), _signal.SIG_DFL)
        os.kill(os.getpid(), int(value))
        return 128 + int(value)
    return int(value)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if os.environ.get("PYCONTAINER_TRACE"):
        os.environ["PYCONTAINER_TRACE_START"] = repr(_START)
    if _wanted():
        status = _through_server(argv)
        if status is not None:
            return status
    return _run_locally(argv)


if __name__ == "__main__":
    raise SystemExit(main())
