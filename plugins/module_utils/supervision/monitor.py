"""The monitor: one process per engine root that is the parent of every container it starts.

Why one shared process (see docs/supervision.md): a container's exit status is only visible to its parent,
so something must stay its parent for its whole life; a Python process per container costs 3-5 MB of
private memory, one shared process costs that once. The monitor starts on demand (``supervisor.py``
spawns it, detached from whoever asked), starts containers itself (so it is their parent), copies their
output to the log and to attached clients, records exits, applies restart policies and ``--rm``, and
exits a moment after its last container.

It is a single-threaded select loop. Requests are framed messages (``protocol.py``) on
``<root>/run/monitor.sock``. State on disk is written only by the monitor while it owns a container
(``ContainerState.monitor_pid``); commands write state only when no live monitor owns it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import selectors
import signal
import socket
import struct
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors, trace
from ..faults import fault_point
from ..fsutil import ensure_dir
from ..records.containers import process_start_time
from . import protocol
from .sessions import RESTART_BACKOFF_START, Client, Supervised

if TYPE_CHECKING:
    from ..runtime.lifecycle import Lifecycle

IDLE_LINGER = 1.0           # seconds the monitor waits, idle, before exiting (absorbs back-to-back runs)
# RESTART_BACKOFF_START (sessions.py): Docker's restart manager: 100 ms, doubling, at most a minute,
RESTART_BACKOFF_MAX = 60.0   # back to 100 ms once a container has run for 10 s
RESTART_RESET_AFTER = 10.0
_ID_RE = re.compile(r"[0-9a-f]{64}")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_uid(sock: socket.socket) -> int:
    """The uid the peer had when it connected (SO_PEERCRED: set by the kernel, not by the peer)."""
    _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return uid


def check_request(request: Any) -> dict:
    """A request the handlers may trust: a JSON object whose container ID, if any, is a full ID (it becomes
    a path under the engine root, so nothing else may reach a handler: no prefix, no name, no ``..``)."""
    if not isinstance(request, dict):
        raise errors.InvalidArgument("monitor request must be a JSON object")
    if "id" in request and not (isinstance(request["id"], str) and _ID_RE.fullmatch(request["id"])):
        raise errors.InvalidArgument(f"invalid container ID in monitor request: {str(request['id'])[:80]!r}")
    return request


def should_restart(policy: str, max_retries: int, exit_code: int, restart_count: int,
                   manually_stopped: bool) -> bool:
    """Docker's restart manager decision after a container exited."""
    if manually_stopped or policy in ("", "no"):
        return False
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        return exit_code != 0 and (max_retries <= 0 or restart_count < max_retries)
    return False


class Monitor:
    def __init__(self, lifecycle: Lifecycle, listener: socket.socket) -> None:
        self.lifecycle = lifecycle
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.containers: dict[str, Supervised] = {}
        self.clients: set[Client] = set()
        self.idle_since: float | None = time.monotonic()
        self.me = (os.getpid(), process_start_time(os.getpid()))
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, self.on_accept)
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self.on_wakeup)

    # -- selector helpers --
    def watch(self, sock: socket.socket, mask: int, callback: Callable[[int], None]) -> None:
        self.watch_fd(sock.fileno(), mask, callback)

    def unwatch(self, sock: socket.socket) -> None:
        self.unwatch_fd(sock.fileno())

    def watch_fd(self, fd: int, mask: int, callback) -> None:
        if mask == 0:
            self.unwatch_fd(fd)
            return
        data = callback
        try:
            key = self.selector.get_key(fd)
        except KeyError:
            self.selector.register(fd, mask, data)
            return
        if key.events != mask or key.data != data:
            self.selector.modify(fd, mask, data)

    def unwatch_fd(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)

    # -- loop --
    def run(self) -> None:
        while True:
            timeout = self._next_timeout()
            for key, mask in self.selector.select(timeout):
                callback = key.data
                if callback == self.on_accept or callback == self.on_wakeup:
                    callback()
                elif isinstance(getattr(callback, "__self__", None), Supervised):
                    callback(key.fd, mask)
                else:
                    callback(mask)
            self.reap()
            self.run_timers()
            if self.containers or self.clients:
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = time.monotonic()
            elif time.monotonic() - self.idle_since >= IDLE_LINGER:
                return

    def _next_timeout(self) -> float:
        deadlines = [t for s in self.containers.values() for t in (s.kill_deadline, s.restart_at) if t]
        if self.idle_since is not None:
            deadlines.append(self.idle_since + IDLE_LINGER)
        if not deadlines:
            return 5.0
        return max(0.0, min(deadlines) - time.monotonic())

    def on_accept(self) -> None:
        while True:
            try:
                sock, _addr = self.listener.accept()
            except BlockingIOError:
                return
            client = Client(self, sock)
            self.clients.add(client)
            # Only root may drive the monitor: run/ is 0700, but a process that kept CAP_DAC_OVERRIDE under
            # another uid still reaches the socket. Such a peer gets one error and is hung up on.
            try:
                uid = peer_uid(sock)
            except OSError:
                uid = -1
            if uid != 0:
                client.reply(error_reply(errors.EngineError(
                    f"permission denied: the container monitor serves root only (peer uid {uid})")))
                client.finish()
                continue
            self.watch(sock, selectors.EVENT_READ, client.on_event)

    def on_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass

    def reap(self) -> None:
        from ..runtime import launcher

        for sup in list(self.containers.values()):
            if sup.process is None:
                continue
            try:
                code = launcher.poll(sup.process)
            except ChildProcessError:
                code = 255
            if code is not None:
                self.exited(sup, code)

    def run_timers(self) -> None:
        now = time.monotonic()
        for sup in list(self.containers.values()):
            if sup.kill_deadline is not None and now >= sup.kill_deadline:
                sup.kill_deadline = None
                if sup.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(sup.process.pid, signal.SIGKILL)
            if sup.restart_at is not None and now >= sup.restart_at:
                sup.restart_at = None
                self.restart_by_policy(sup)

    # -- requests --
    def handle_frame(self, client: Client, kind: bytes, payload: bytes) -> None:
        if client.closing:  # refused, or done: nothing it sends now is acted on
            return
        sup = client.attached
        if kind == protocol.STDIN:
            if sup is not None:
                sup.write_stdin(payload)
            return
        if kind == protocol.CLOSE_STDIN:
            if sup is not None:
                sup.close_stdin()
            return
        if kind != protocol.CONTROL:
            return
        try:
            request = check_request(json.loads(payload))
            handler = getattr(self, "op_" + str(request.get("op")), None)
            if handler is None:
                raise errors.InvalidArgument(f"unknown monitor request {request.get('op')!r}")
            if request.get("trace"):
                trace.begin_remote()  # its phases go back in the reply (PYCONTAINER_TRACE on the caller's side)
            handler(client, request)
        except errors.EngineError as exc:
            client.reply(error_reply(exc))
        except Exception as exc:
            traceback.print_exc()
            client.reply(error_reply(errors.EngineError(f"monitor: {type(exc).__name__}: {exc}")))
        finally:
            trace.take()  # a traced request never leaves the next one traced

    def op_ping(self, client: Client, request: dict) -> None:
        client.reply({"ok": True, "pid": os.getpid()})

    def op_start(self, client: Client, request: dict) -> None:
        record = self.lifecycle.store.load(request["id"])
        sup = self.containers.get(record.id)
        if sup is not None or record.state.running:
            if record.state.status == "restarting" and sup is not None:
                sup.restart_at = time.monotonic()  # `start` on a restarting container: now
                client.reply({"ok": True, "pid": 0})
                return
            if sup is None and not request.get("attach"):
                # Started by a monitor that died (a retried request): it runs, as asked; `start` of a running
                # container is a no-op (Docker). Its output has no reader any more (docs/supervision.md).
                client.reply({"ok": True, "pid": record.state.pid})
                return
            raise errors.Conflict(f"container {record.id} is already running")
        sup = Supervised(self, record)
        sup.traced = bool(request.get("trace"))
        attach = bool(request.get("attach"))
        if attach:
            sup.attach_client(client)
            sup.stdin_once = bool(request.get("stdin_once"))
        if request.get("size"):  # the attached caller's window: the terminal has it before the process runs
            sup.tty_size = (int(request["size"][0]), int(request["size"][1]))
        self.containers[record.id] = sup
        try:
            pid = self.launch(sup)
        except BaseException as exc:
            del self.containers[record.id]
            client.attached = None
            if isinstance(exc, FileNotFoundError) and not os.path.isdir(record.directory):
                # `rm -f` won the race before the start held the record (its log file went with it).
                raise errors.ContainerNotFound(f"No such container: {record.id}") from None
            raise
        client.reply({"ok": True, "pid": pid, **({"trace": trace.take()} if trace.enabled() else {})})

    def launch(self, sup: Supervised) -> int:
        from ..runtime.logs import JsonFileWriter, LogConfig, log_path

        record = sup.record
        config = record.config
        child_fds: list[int] = []
        try:
            if config.tty:
                # The container opens its terminal itself, in its own devpts (a host pty's slave is a node
                # its /dev/pts cannot name): lifecycle.launch hands back the master as process.console.
                stdio: tuple[int | None, int, int] = (None, -1, -1)
            else:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                child_fds += [out_w, err_w]
                sup.outputs[out_r] = "stdout"
                sup.outputs[err_r] = "stderr"
                stdin = None
                if config.open_stdin:
                    in_r, in_w = os.pipe2(os.O_CLOEXEC)
                    child_fds.append(in_r)
                    sup.stdin_fd = in_w
                    stdin = in_r
                    os.set_blocking(in_w, False)
                stdio = (stdin, out_w, err_w)
            log_config = LogConfig.parse(config.host_config.log_driver, config.host_config.log_options)
            fault_point("start.before_log")
            if log_config.driver == "json-file":
                sup.log = JsonFileWriter(log_path(record.directory, record.id), log_config)
            sup.process, sup.spec = self.lifecycle.launch(record, *stdio, monitor=self.me, size=sup.tty_size)
            if config.tty:
                master = sup.process.console
                sup.tty_master = master
                sup.outputs[master] = "stdout"
                os.set_blocking(master, False)
                # Docker: with -t the terminal is stdin too (input reaches it only with -i).
                if config.open_stdin:
                    sup.stdin_fd = master
        except BaseException:
            for fd in {*sup.outputs, sup.stdin_fd} - {None}:
                with contextlib.suppress(OSError):
                    os.close(fd)
            sup.outputs.clear()
            sup.stdin_fd = sup.tty_master = None
            if sup.log is not None:
                sup.log.close()
                sup.log = None
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        sup.started_mono = time.monotonic()
        if sup.process.listeners:
            from ..network.relay import Relay

            sup.relay = Relay(self, sup.process.listeners)
            sup.process.listeners = []
        for fd in sup.outputs:
            self.watch_fd(fd, selectors.EVENT_READ, sup.on_output)
        return sup.process.pid

    def op_attach(self, client: Client, request: dict) -> None:
        sup = self._supervised(request["id"], "attach to")
        if sup.process is None:
            raise errors.Conflict("You cannot attach to a stopped container, start it first")
        sup.attach_client(client)
        client.reply({"ok": True, "pid": sup.process.pid, "tty": sup.record.config.tty})

    def op_resize(self, client: Client, request: dict) -> None:
        sup = client.attached or self.containers.get(request.get("id", ""))
        if sup is not None:
            sup.resize(int(request["rows"]), int(request["cols"]))

    def op_kill(self, client: Client, request: dict) -> None:
        sup = client.attached if client.attached and "id" not in request else self._supervised(request["id"],
                                                                                               "kill")
        signum = int(request.get("signal", signal.SIGKILL))
        if sup.process is None:
            raise errors.Conflict(f"Cannot kill container: {sup.id}: Container {sup.id} is not running")
        if request.get("manual", True):
            self._mark_stopped(sup)
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup.process.pid, signum)
        if client.attached is not sup:
            client.reply({"ok": True})

    def op_stop(self, client: Client, request: dict) -> None:
        sup = self.containers.get(request["id"])
        if sup is None:
            client.reply({"ok": True, "was_running": False})
            return
        self._mark_stopped(sup)
        if sup.process is None:  # waiting to be restarted: just don't
            sup.restart_at = None
            self.lifecycle.record_stopped_while_restarting(sup.record)
            del self.containers[sup.id]
            client.reply({"ok": True, "was_running": False})
            return
        if sup.record.state.status == "paused":
            with contextlib.suppress(errors.EngineError):
                self.lifecycle.set_paused(sup.record, False)
        timeout = request.get("timeout")
        signum = int(request.get("signal") or signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup.process.pid, signum)
        fault_point("stop.after_signal")
        if timeout is not None and timeout >= 0:
            sup.kill_deadline = time.monotonic() + float(timeout)
        sup.stoppers.append(client)

    def op_wait(self, client: Client, request: dict) -> None:
        sup = self.containers.get(request["id"])
        if sup is None or sup.process is None:
            record = self.lifecycle.store.load(request["id"])
            client.reply({"ok": True, "exit_code": record.state.exit_code})
            return
        sup.waiters.append(client)

    def op_pause(self, client: Client, request: dict) -> None:
        sup = self._supervised(request["id"], "pause")
        self.lifecycle.set_paused(sup.record, bool(request.get("pause", True)))
        client.reply({"ok": True})

    def _supervised(self, container_id: str, verb: str) -> Supervised:
        sup = self.containers.get(container_id)
        if sup is None:
            raise errors.Conflict(f"Container {container_id} is not running")
        return sup

    def _mark_stopped(self, sup: Supervised) -> None:
        if not sup.record.state.manually_stopped:
            sup.record.state.manually_stopped = True
            self.lifecycle.store.save_state(sup.record)

    # -- exits --
    def exited(self, sup: Supervised, exit_code: int) -> None:
        if sup.traced and sup.clients:
            trace.begin_remote()
        sup.drain()
        if sup.relay is not None:  # before the ports are released: a restart binds them again
            sup.relay.close()
            sup.relay = None
        sup.kill_deadline = None
        record, spec = sup.record, sup.spec
        oom_killed = bool(getattr(sup.process, "oom_killed", False))
        sup.process = None
        ran_for = time.monotonic() - sup.started_mono
        with contextlib.suppress(errors.ContainerNotFound):  # `update` may have changed it since the start
            current = self.lifecycle.store.load(sup.id)
            record.config.host_config.restart_policy = current.config.host_config.restart_policy
        policy = record.config.host_config.restart_policy
        restart = should_restart(policy.name, policy.maximum_retry_count, exit_code, record.state.restart_count,
                                 record.state.manually_stopped)
        from ..network.state import deferred_cleanup

        # Network cleanup that only tidies (veths, an unused bridge, the ruleset) waits until the callers have
        # their answer: network/state.py's PendingCleanup.
        with deferred_cleanup() as pending:
            try:
                self._finish_exit(sup, record, spec, exit_code, restart, oom_killed, ran_for)
            finally:
                pending.run()

    def _finish_exit(self, sup: Supervised, record, spec, exit_code: int, restart: bool, oom_killed: bool,
                     ran_for: float) -> None:
        try:
            self.lifecycle.record_exit(record, spec, exit_code, restarting=restart, oom_killed=oom_killed)
        except Exception:
            traceback.print_exc()
        for client in sup.stoppers:
            client.reply({"ok": True, "was_running": True})
        for client in sup.waiters:
            client.reply({"ok": True, "exit_code": exit_code})
        if restart:
            sup.backoff = RESTART_BACKOFF_START if ran_for >= RESTART_RESET_AFTER else sup.backoff
            sup.restart_at = time.monotonic() + sup.backoff
            sup.backoff = min(sup.backoff * 2, RESTART_BACKOFF_MAX)
            sup.stoppers, sup.waiters = [], []
            for client in list(sup.clients):
                client.send(protocol.control({"exit": exit_code}))
                client.finish()
                sup.detach_client(client)
            return
        del self.containers[sup.id]
        doomed = None
        if record.config.host_config.auto_remove:
            try:
                doomed = self.lifecycle.remove_exited(record, defer_delete=True)
            except Exception:
                traceback.print_exc()
        phases = trace.take() if trace.enabled() else None
        message = protocol.control({"exit": exit_code, **({"trace": phases} if phases is not None else {})})
        for client in list(sup.clients):
            client.send(message)
            client.finish()
            client.attached = None
        sup.clients.clear()
        if doomed:  # the record is already gone; its files can go after the client has its answer
            self.lifecycle.store.delete_removed(doomed)

    def restart_by_policy(self, sup: Supervised) -> None:
        try:
            record = self.lifecycle.store.load(sup.id)
        except errors.ContainerNotFound:
            self.containers.pop(sup.id, None)
            return
        if record.state.manually_stopped or record.state.status != "restarting":
            self.containers.pop(sup.id, None)
            return
        record.state.restart_count += 1
        sup.record = record
        try:
            self.launch(sup)
            self.lifecycle.event(record, "restart")
        except errors.EngineError as exc:
            # Failed actions go to the engine log, with the container id, where users look for them.
            self.lifecycle.log.error(f"restart failed: {exc}", id=sup.id, error=type(exc).__name__,
                                     exit_code=exc.exit_code)
            self.exited(sup, getattr(exc, "exit_code", 125)) if sup.process else self._give_up(sup, exc)

    def _give_up(self, sup: Supervised, exc: errors.EngineError) -> None:
        self.containers.pop(sup.id, None)
        with contextlib.suppress(Exception):
            self.lifecycle.record_start_failure(sup.record, exc)


def error_reply(exc: errors.EngineError) -> dict:
    # Text attributes travel too (MissingLibrary's library and purpose): the caller re-raises the same error.
    fields = {k: v for k, v in vars(exc).items() if isinstance(v, str)}
    return {"ok": False, "error": str(exc), "type": type(exc).__name__, "exit_code": exc.exit_code,
            "fields": fields}


def serve(root: str, config_path: str | None, ready_fd: int | None) -> int:
    """Run the monitor for ``root`` until it is idle. Only one runs per root (flock on monitor.lock)."""
    from ..config import load_config
    from ..runtime.lifecycle import Lifecycle

    config = load_config(config_path=config_path, root=root)
    run_dir = ensure_dir(config.paths.run, 0o700)
    lock_fd = os.open(os.path.join(run_dir, "monitor.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # a previous monitor that is still exiting finishes first
    path = protocol.socket_path(run_dir)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(path)
    os.chmod(path, 0o600)  # the peer check is the guard; the mode is the belt (bind's mode follows the umask)
    listener.listen(64)
    monitor = Monitor(Lifecycle.from_config(config), listener)
    if ready_fd is not None:
        os.write(ready_fd, b"ready")
        os.close(ready_fd)
    try:
        monitor.run()
        from ..network.state import NetworkState

        with contextlib.suppress(Exception):
            NetworkState(config, None).tidy()  # the bridges it kept for back-to-back runs
    finally:
        # Unlink before releasing the lock: a command that cannot connect spawns a new monitor, which
        # waits for this lock; one that connected in between sees end-of-file and retries.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener.close()
    return 0


def main(argv: list[str]) -> int:
    root, config_path, ready = argv[0], argv[1] or None, argv[2]
    ready_fd = int(ready) if ready else None
    try:
        return serve(root, config_path, ready_fd)
    except BaseException as exc:
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, f"monitor failed: {type(exc).__name__}: {exc}".encode())
        if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            traceback.print_exc()
        return 1
