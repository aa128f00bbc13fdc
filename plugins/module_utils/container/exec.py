"""`exec`: a process in a running container's namespaces and cgroup, on our stdio, a terminal, or captured
(modules, the connection plugin) with its streams pumped without deadlock."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import Conflict, ContainerCommandError, InvalidArgument
from ..records.containers import ContainerRecord
from ..runtime.lifecycle import merge_env

if TYPE_CHECKING:
    from ..runtime.lifecycle import Lifecycle


@dataclass
class ExecResult:
    """What an exec with captured output gives back (``exec_capture``)."""

    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass
class _PreparedExec:
    record: ContainerRecord
    spec: object  # runtime.spec.ContainerSpec (imported lazily)
    process: object  # runtime.spec.ProcessSpec
    privileged: bool


class ExecVerbs:
    """The exec verbs of ``ContainerService`` (a mixin: it provides ``lookup``, ``lifecycle`` and ``_event``)."""

    lifecycle: Lifecycle
    lookup: Callable[[str], ContainerRecord]
    _event: Callable[..., None]

    def exec(self, ref: str, command: list[str], interactive: bool = False, tty: bool = False,
             detach: bool = False, user: str | None = None, env: list[str] | None = None,
             workdir: str | None = None, privileged: bool = False, detach_keys: bytes = b"\x10\x11") -> int:
        """`docker exec`: a process in the running container's namespaces and cgroup, with its privileges."""
        from ..runtime import launcher

        prepared = self._exec_prepare(ref, command, user, env, workdir, tty, privileged)
        master = None
        if tty:
            from ..supervision.attach import terminal_size

            # The process starts with our window size (``stty size`` right away); SIGWINCH follows it later.
            size = None if detach else terminal_size(0 if interactive else None)
            proc = self._exec_start(prepared, None, size=size)
            master = proc.console
        else:
            if detach:
                stdio = (None, os.open(os.devnull, os.O_WRONLY), os.open(os.devnull, os.O_WRONLY))
            else:
                stdio = (0 if interactive else None, 1, 2)
            proc = self._exec_start(prepared, stdio)
        if detach:
            if master is not None:
                os.close(master)
            return 0
        if master is not None:
            from ..supervision.attach import relay_terminal

            if relay_terminal(master, proc.pid, 0 if interactive else None, detach_keys):
                return 0
        code = launcher.wait(proc)
        self._event(prepared.record, "exec_die", exitCode=code)
        return code

    def exec_capture(self, ref: str, command: list[str], *, stdin: bytes | None = None, user: str | None = None,
                     env: list[str] | None = None, workdir: str | None = None, privileged: bool = False,
                     tty: bool = False) -> ExecResult:
        """`docker exec` with the output collected instead of written to our fds 0/1/2 (modules, connection
        plugin). ``stdin`` bytes are fed to the process, then end of file (None: /dev/null). With ``tty`` the
        process gets a terminal: stdout and stderr arrive merged in ``stdout``, as Docker returns them.
        A command that cannot be run is a result too (126/127 and the reason on stderr), as a shell's."""
        prepared = self._exec_prepare(ref, command, user, env, workdir, tty, privileged)
        try:
            return self._exec_captured(prepared, stdin, tty)
        except ContainerCommandError as exc:
            return ExecResult(exit_code=exc.exit_code, stdout=b"", stderr=f"{exc}\n".encode())

    def _exec_captured(self, prepared: _PreparedExec, stdin: bytes | None, tty: bool) -> ExecResult:
        from ..runtime import launcher

        if tty:
            proc = self._exec_start(prepared, None)
            master = proc.console
            # A terminal has no end of file of its own: after the input comes ^D, as a user would type it
            # (twice after a partial line: the first one only hands the line over).
            if stdin is not None:
                stdin += b"\x04" if stdin.endswith(b"\n") or not stdin else b"\x04\x04"
            output = _pump(proc, stdin, master, [master])[master]
            stdout, stderr = output, b""
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r = in_w = None
            if stdin is not None:
                in_r, in_w = os.pipe()
            try:
                proc = self._exec_start(prepared, (in_r, out_w, err_w))
            except BaseException:
                for fd in (out_r, err_r, in_w):
                    if fd is not None:
                        os.close(fd)
                raise
            outputs = _pump(proc, stdin, in_w, [out_r, err_r])
            stdout, stderr = outputs[out_r], outputs[err_r]
        code = launcher.wait(proc)
        self._event(prepared.record, "exec_die", exitCode=code)
        return ExecResult(exit_code=code, stdout=stdout, stderr=stderr)

    def _exec_prepare(self, ref: str, command: list[str], user: str | None, env: list[str] | None,
                      workdir: str | None, tty: bool, privileged: bool) -> _PreparedExec:
        """Checks and the process of an exec: the container's user, env (+ HOME, HOSTNAME, TERM) and cwd."""
        from ..runtime.spec import ProcessSpec

        record = self.lookup(ref)
        if record.state.status == "paused":
            raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        if not command:
            raise InvalidArgument("exec requires at least 1 argument")
        spec = self.lifecycle.runtime_spec(record)
        resolved = self._exec_user(record, spec, user if user is not None else record.config.user)
        process_env = merge_env(record.config.env, list(env or []))
        if not any(e.startswith("HOME=") for e in process_env):
            process_env.append(f"HOME={resolved.home}")
        if not any(e.startswith("HOSTNAME=") for e in process_env):
            process_env.append(f"HOSTNAME={record.config.hostname}")
        if tty and not any(e.startswith("TERM=") for e in process_env):
            process_env.append("TERM=xterm")
        process = ProcessSpec(args=list(command), env=process_env, cwd=workdir or record.config.working_dir,
                              uid=resolved.uid, gid=resolved.gid, additional_gids=resolved.additional_gids,
                              terminal=tty)
        return _PreparedExec(record, spec, process, privileged)

    @staticmethod
    def _exec_user(record: ContainerRecord, spec, user: str):
        """The user as the running container knows it (its /etc/passwd now, not the image's)."""
        from ..records.containers import process_alive
        from ..runtime.userdb import resolve_user

        try:
            root_fd = os.open(f"/proc/{record.state.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            root_fd = None
        group_add = record.config.host_config.group_add  # exec gets the container's --group-add too (Docker)
        try:
            if root_fd is not None and process_alive(record.state.pid, record.state.pid_start_time):
                return resolve_user(spec.lower_dirs, user, root_fd, group_add)
            return resolve_user(spec.lower_dirs, user, group_add=group_add)
        finally:
            if root_fd is not None:
                os.close(root_fd)

    def _exec_start(self, prepared: _PreparedExec, stdio: tuple[int | None, int, int] | None,
                    size: tuple[int, int] | None = None):
        """Start the prepared exec on ``stdio``; our copies of those fds (above 2) are closed either way.
        None: on a terminal of the container's devpts, whose master is the process's ``console``."""
        from ..runtime import launcher

        command = prepared.process.args
        self._event(prepared.record, "exec_create: " + " ".join(command))
        if stdio is None:
            proc = launcher.exec_in_terminal(prepared.spec, prepared.record.state.pid, prepared.process,
                                             privileged=prepared.privileged, size=size)
        else:
            try:
                proc = launcher.exec_in(prepared.spec, prepared.record.state.pid, prepared.process, *stdio,
                                        privileged=prepared.privileged)
            finally:
                for fd in set(stdio):
                    if fd is not None and fd > 2:
                        os.close(fd)
        self._event(prepared.record, "exec_start: " + " ".join(command))
        return proc


# How long output is still read after the exec'd process exited while something it started in the
# background keeps the pipes open (Docker would wait forever; a module must return).
_EXEC_DRAIN_SECONDS = 0.5


def _pump(proc, data: bytes | None, in_fd: int | None, out_fds: list[int]) -> dict[int, bytes]:
    """Feed ``data`` to ``in_fd`` (closed after it, unless it is also an output: a pty master) while reading
    every fd of ``out_fds`` to its end, without deadlock (one selector, non-blocking fds). Closes them all."""
    import selectors

    from ..runtime import launcher

    chunks: dict[int, list[bytes]] = {fd: [] for fd in out_fds}
    pending = memoryview(data or b"")
    writing = in_fd is not None
    sel = selectors.DefaultSelector()
    try:
        for fd in out_fds:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        if writing:
            os.set_blocking(in_fd, False)
            if in_fd in chunks:
                sel.modify(in_fd, selectors.EVENT_READ | selectors.EVENT_WRITE)
            else:
                sel.register(in_fd, selectors.EVENT_WRITE)
        reading = set(out_fds)
        exited_at: float | None = None

        def stop_writing() -> None:
            nonlocal writing
            writing = False
            if in_fd in chunks:
                sel.modify(in_fd, selectors.EVENT_READ)
            else:
                sel.unregister(in_fd)
                os.close(in_fd)

        if writing and not pending:
            stop_writing()
        while reading:
            events = sel.select(timeout=0.1)
            for key, mask in events:
                fd = key.fd
                if mask & selectors.EVENT_WRITE and writing:
                    try:
                        pending = pending[os.write(fd, pending):]
                    except BlockingIOError:
                        pass
                    except OSError:  # the process closed its stdin (EPIPE) or exited: the rest is dropped
                        pending = pending[:0]
                    if not pending:
                        stop_writing()
                if mask & selectors.EVENT_READ and fd in reading:
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:  # EIO: a pty master whose slave side is closed everywhere
                        chunk = b""
                    if chunk:
                        chunks[fd].append(chunk)
                    else:
                        reading.discard(fd)
                        sel.unregister(fd)
            if exited_at is None:
                if launcher.poll(proc) is not None:
                    exited_at = time.monotonic()
            elif time.monotonic() - exited_at > _EXEC_DRAIN_SECONDS:
                break
    finally:
        sel.close()
        for fd in {*out_fds, *([in_fd] if in_fd is not None and (writing or in_fd in chunks) else [])}:
            with contextlib.suppress(OSError):
                os.close(fd)
    return {fd: b"".join(parts) for fd, parts in chunks.items()}
