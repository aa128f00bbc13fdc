"""Container operations as the engine offers them: create, run, start, list, remove (and, with the runtime
issue, stop, kill, restart, logs, exec...). Kernel work is the launcher's; records are the container store's."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace
from typing import TYPE_CHECKING

from ..errors import (
    Conflict,
    ContainerCommandError,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidArgument,
    PortConflict,
)
from ..faults import fault_point
from ..network.attachment import ContainerNetworking, LocalNetworking, check_container_mode
from ..network.service import networking_for, release_networking
from ..records.containers import (
    ContainerConfig,
    ContainerRecord,
    ContainerStore,
    check_usable,
    monitor_alive,
    new_container_id,
    process_alive,
    process_start_time,
)
from ..runtime.validate import check_host_config
from ..runtime.volumes import VolumeService
from ..supervision import supervisor
from ..timefmt import utc_now_rfc3339
from .options import CreateOptions

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..image.service import ImageService, Progress
    from .update import UpdateOptions

# State.ExitCode of a container whose start failed before its process ran (Docker's exitUnknown); the
# command itself exits 125.
START_FAILED = 128
# `rm -f` stops, then removes under the container's lock; a start racing it between the two makes it stop again.
_REMOVE_ATTEMPTS = 5
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


class ContainerService:
    def __init__(self, config: EngineConfig, images: ImageService, events: EventJournal) -> None:
        self.config = config
        self.images = images
        self.events = events
        self.store = ContainerStore(config.paths.containers)
        self.volumes = VolumeService(config, events)

    def create(self, options: CreateOptions, progress: Progress | None = None) -> ContainerRecord:
        self._check_lifecycle_options(options)
        image = self.images.ensure(options.image, options.pull, progress=progress)
        image_config = image.config.get("config") or {}
        if options.entrypoint is not None:
            # Docker: --entrypoint resets the image's Cmd too; an empty entrypoint means "none".
            entrypoint = [a for a in options.entrypoint if a] or None
            cmd = options.command
        else:
            entrypoint = image_config.get("Entrypoint") or None
            cmd = options.command if options.command else image_config.get("Cmd")
        if not (entrypoint or cmd):
            raise InvalidArgument("no command specified")
        networking = networking_for(options.host_config.network_mode, self.config, self.events)  # unknown: refused
        if not isinstance(networking, (LocalNetworking, ContainerNetworking)):
            # A bridge needs pyroute2 at start: refuse now rather than leave a container that can never start.
            from ..network.netlink import require_pyroute2

            require_pyroute2()
            networking.claim()  # another root's bridge, table or subnet: refused before any record exists
        joined_hostname = ""
        if isinstance(networking, ContainerNetworking):
            check_container_mode(options.host_config, options.hostname)
            target = networking.target()  # Docker: "No such container" at create
            options.host_config.network_mode = f"container:{target.id}"  # what inspect shows (Docker)
            joined_hostname = target.config.hostname
        container_id = new_container_id()
        config = ContainerConfig(
            id=container_id,
            name=options.name or "",
            created=utc_now_rfc3339(),
            image=image.id,
            image_name=options.image,
            entrypoint=list(entrypoint) if entrypoint else None,
            cmd=list(cmd) if cmd else None,
            env=merge_env(image_config.get("Env") or [], options.env),
            working_dir=options.working_dir or image_config.get("WorkingDir") or "/",
            user=options.user if options.user is not None else (image_config.get("User") or ""),
            hostname=options.hostname or joined_hostname or container_id[:12],
            labels={**(image_config.get("Labels") or {}), **options.labels},
            host_config=options.host_config,
            tty=options.tty,
            open_stdin=options.open_stdin,
            stop_signal=options.stop_signal or image_config.get("StopSignal") or "",
            stop_timeout=options.stop_timeout,
        )
        fault_point("create.before_record")
        record = self.store.create(config)
        try:
            fault_point("create.after_record")
            self.volumes.prepare_mounts(record, image_config)  # -v/--mount/--tmpfs + image VOLUMEs
            _write_etc_files(record)
        except BaseException:
            with contextlib.suppress(Exception):  # what prepare_mounts took (volume references)
                self.volumes.release(record, remove_anonymous=True)
            self.store.remove(record)
            raise
        self._event(record, "create")
        return record

    def _check_lifecycle_options(self, options: CreateOptions) -> None:
        """What Docker refuses at create time (exit 125): policy with --rm, bad log settings, signals."""
        from ..runtime.logs import LogConfig

        hc = options.host_config
        if not hc.log_driver:
            hc.log_driver = self.config.log_driver or "json-file"
            hc.log_options = {**self.config.log_opts, **hc.log_options}
        LogConfig.parse(hc.log_driver, hc.log_options)
        hc.restart_policy.check(hc.auto_remove, "Conflicting options: --restart and --rm")
        check_host_config(hc, options.user)  # limits, capabilities, devices, ulimits, ports, mounts, user form
        if options.stop_signal:
            parse_signal(options.stop_signal)

    def _event(self, record: ContainerRecord, action: str, **extra: object) -> None:
        """Docker's container event: the image and name, the labels, then action-specific attributes."""
        attributes = {**record.config.labels, "image": record.config.image_name, "name": record.name, **extra}
        self.events.record("container", action, record.id, attributes)

    event = _event

    # -- starting (through the monitor, which is the container's parent) ------------------------------
    def start(self, ref: str) -> ContainerRecord:
        """`docker start` (detached): the monitor starts and supervises it. A running container is fine."""
        record = self.lookup(ref)
        if record.state.status in ("running", "paused"):
            return record
        supervisor.request(self.config, {"op": "start", "id": record.id})
        return record

    def start_attached(self, record: ContainerRecord, stdin: bool = False) -> AttachSession:
        """Start ``record`` with this caller attached before its first output (`run`, `start -a`).

        Raises as the start does (126/127 for the command, 125 otherwise); the session then streams.
        """
        conn = supervisor.connect(self.config)
        self._event(record, "attach")  # Docker's order for an attached run: create, attach, start, die
        request = {"op": "start", "id": record.id, "attach": True, "stdin_once": stdin}
        if record.config.tty:
            from ..supervision.attach import terminal_size

            # The terminal starts with our window size (``stty size`` right away), as Docker's ConsoleSize.
            request["size"] = terminal_size(0 if stdin else None)
        try:
            reply = supervisor.raise_for(supervisor.ask(conn, request))
        except BaseException:
            conn.close()
            raise
        return AttachSession(conn, record, reply.get("pid", 0))

    def attach(self, ref: str) -> AttachSession:
        record = self.lookup(ref)
        if record.state.status == "paused":
            raise Conflict("You cannot attach to a paused container, unpause it first")
        if not record.state.running or not monitor_alive(record.state):
            raise Conflict("You cannot attach to a stopped container, start it first")
        conn = supervisor.connect(self.config)
        try:
            reply = supervisor.raise_for(supervisor.ask(conn, {"op": "attach", "id": record.id}))
        except BaseException:
            conn.close()
            raise
        self._event(record, "attach")
        return AttachSession(conn, record, reply.get("pid", 0))

    def run(self, options: CreateOptions, stdin: bool = False, detach: bool = False,
            progress: Progress | None = None) -> tuple[ContainerRecord, AttachSession | None]:
        """`docker run`: create, then start detached or attached (the caller pumps the session)."""
        record = self.create(options, progress=progress)
        fault_point("run.after_create")
        try:
            if detach:
                supervisor.request(self.config, {"op": "start", "id": record.id})
                fault_point("run.after_start")
                return record, None
            return record, self.start_attached(record, stdin=stdin)
        except PortConflict:
            # A port taken by another container or a host process: nothing may be left (issue 5).
            with contextlib.suppress(EngineError):
                self.remove(record.id, force=True, volumes=True)
            raise

    def launch(self, record: ContainerRecord, stdin: int | None, stdout: int, stderr: int,
               monitor: tuple[int, int] = (0, 0), size: tuple[int, int] | None = None):
        """Start the container's process as the caller's child (the monitor calls this). -> (process, spec)

        With ``tty`` the stdio arguments are ignored: the terminal, of the container's own devpts, is opened
        by the container and its master is ``process.console`` (the caller closes it), ``size`` (rows,
        columns) its initial window."""
        from ..runtime import launcher

        try:
            spec = self._runtime_spec(record)  # resolves the user in the image's /etc/passwd (Docker: at start)
        except EngineError as exc:
            self.record_start_failure(record, exc, exit_code=START_FAILED)
            raise
        spec.process.terminal = record.config.tty
        state = record.state
        previous = state.status
        # Until the pid is on disk, `rm` must wait: it would take the container for one that is not running.
        held = contextlib.ExitStack()
        held.enter_context(self.store.holding(record))
        # On disk before anything is taken: if the caller (the monitor) dies from here on, the next command
        # sees a dead owner holding resources and releases them (reconciliation).
        state.monitor_pid, state.monitor_start_time = monitor
        state.resources_held = True
        try:
            self.store.save_state(record)
        except BaseException:
            held.close()
            raise

        def started(pid: int) -> None:
            # A parent hook: the pid is on disk before the container may run, so a monitor killed after
            # this leaves a container the next command can see, stop and remove (never an unknown orphan).
            state.status, state.pid, state.pid_start_time = "running", pid, process_start_time(pid)
            self.store.save_state(record)

        try:
            networking = networking_for(record.config.host_config.network_mode, self.config, self.events)
            attachment = networking.prepare(record)
            fault_point("start.after_network")
            try:
                if attachment.join_netns:  # --network container: (network/attachment.py)
                    spec.join_netns_pid, spec.join_netns_start_time = attachment.join_netns
                    spec.hostname = attachment.hostname or spec.hostname
                hooks = [attachment.connect, started]
                if record.config.tty:  # its terminal is the process's console (stdio ignored)
                    process = launcher.start_in_terminal(spec, size=size, parent_hooks=hooks)
                else:
                    process = launcher.start(spec, stdin=stdin, stdout=stdout, stderr=stderr, parent_hooks=hooks)
            except BaseException:
                attachment.close()
                networking.release(record)
                raise
            process.listeners = attachment.listeners  # the monitor relays them (IPv6 host addresses)
        except BaseException as exc:
            state.status, state.pid, state.pid_start_time = previous, 0, 0
            with held:
                if isinstance(exc, ContainerCommandError):
                    self.record_start_failure(record, exc, spec)
                else:
                    with contextlib.suppress(Exception):
                        self._release(record, spec)
            raise
        held.close()
        try:
            fault_point("start.before_state")
            state.error = ""
            state.started_at = utc_now_rfc3339()
            state.manually_stopped = False
            state.oom_killed = False
            state.network_settings = dict(attachment.network_settings or {})
            self.store.save_state(record)
        except BaseException:
            # Running but not recorded (a full disk): it must not outlive the failed start unknown.
            self._abandon(record, spec, process, previous)
            raise
        self._event(record, "start")
        self.volumes.record_mount_events(record, "mount")
        fault_point("start.after_state")
        return process, spec

    def _abandon(self, record: ContainerRecord, spec, process, previous: str) -> None:
        from ..runtime import launcher

        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        with contextlib.suppress(EngineError):
            launcher.wait(process)
        for listener in process.listeners:
            listener.sock.close()
        if getattr(process, "console", None) is not None:
            os.close(process.console)
        state = record.state
        state.status, state.pid, state.pid_start_time = previous, 0, 0
        with contextlib.suppress(Exception):
            self._release(record, spec)

    def record_start_failure(self, record: ContainerRecord, exc: Exception, spec=None,
                             exit_code: int | None = None) -> None:
        """Docker leaves such a container in "Created" with the exit code and error recorded."""
        record.state.exit_code = exit_code if exit_code is not None else getattr(exc, "exit_code", 125)
        record.state.error = str(exc)
        if record.state.status == "restarting":
            record.state.status = "exited"
        self.store.save_state(record)
        self._release(record, spec)
        if record.config.host_config.auto_remove:  # `run --rm no-such-command` leaves nothing (Docker)
            self.remove_exited(record)

    def record_exit(self, record: ContainerRecord, spec, exit_code: int, restarting: bool = False,
                    oom_killed: bool = False) -> None:
        """The container's PID 1 exited (the monitor calls this): record it, release what it held."""
        state = record.state
        state.status = "restarting" if restarting else "exited"
        state.pid = state.pid_start_time = 0
        state.exit_code = exit_code
        state.oom_killed = oom_killed
        state.finished_at = utc_now_rfc3339()
        # Released before the one state write: a crash in between leaves resources_held set, and the
        # next command releases again (idempotent).
        fault_point("exit.before_release")
        self._release(record, spec, save=False)
        fault_point("exit.before_state")
        self.store.save_state(record)
        if oom_killed:
            self._event(record, "oom")
        self._event(record, "die", exitCode=exit_code)
        self.volumes.record_mount_events(record, "unmount")

    def record_stopped_while_restarting(self, record: ContainerRecord) -> None:
        record.state.status = "exited"
        record.state.manually_stopped = True
        self.store.save_state(record)

    def _release(self, record: ContainerRecord, spec=None, save: bool = True) -> None:
        """Give back network, cgroup and leftover mounts; idempotent."""
        from ..runtime import launcher

        release_networking(record, self.config, self.events)
        launcher.cleanup(spec or self._runtime_spec_for_cleanup(record))
        if record.state.resources_held:
            record.state.resources_held = False
            if not save:
                return
            with contextlib.suppress(ContainerNotFound, FileNotFoundError):
                self.store.save_state(record)

    def remove_exited(self, record: ContainerRecord, defer_delete: bool = False) -> str | None:
        """--rm: the container exited (and was released) and is not restarted. With ``defer_delete`` its
        files are left for ``store.delete_removed`` (returns their path)."""
        from ..runtime import launcher

        if record.state.resources_held:
            launcher.cleanup(self._runtime_spec_for_cleanup(record))
        self.volumes.release(record, remove_anonymous=True)  # --rm drops anonymous volumes too (Docker)
        doomed = self.store.remove(record, defer_delete=defer_delete)
        self._event(record, "destroy")
        return doomed

    def _settle(self, record: ContainerRecord) -> ContainerRecord | None:
        """Reconciliation: persist what ``reconcile`` found and release what a dead monitor left held."""
        state = record.state
        if state.running or monitor_alive(state):
            return record
        if not (state.resources_held or record.reconciled):
            return record
        try:
            lock = self.store.container_lock(record)
            lock.__enter__()
        except FileNotFoundError:
            return None  # removed meanwhile
        with contextlib.ExitStack() as stack:
            stack.push(lock.__exit__)
            if record.reconciled:
                self._event(record, "die", exitCode=state.exit_code)
            self._release(record)
            record.state.resources_held = False
            with contextlib.suppress(FileNotFoundError):
                self.store.save_state(record)
            if record.config.host_config.auto_remove:
                self.remove_exited(record)
                return None
        return record

    # -- stopping ---------------------------------------------------------------------------------------
    def _owned(self, record: ContainerRecord) -> bool:
        return record.state.running and monitor_alive(record.state)

    def stop(self, ref: str, timeout: int | None = None, signal_name: str | None = None) -> ContainerRecord:
        """`docker stop`: the stop signal, then SIGKILL after the timeout (default: the container's, or 10 s)."""
        record = self.lookup(ref)
        if not record.state.running:
            return record
        signum = parse_signal(signal_name or record.config.stop_signal or "SIGTERM")
        if timeout is None:
            timeout = record.config.stop_timeout if record.config.stop_timeout is not None else 10
        self._event(record, "kill", signal=signum)
        fault_point("stop.before_request")
        reply = None
        if self._owned(record):
            reply = supervisor.request(self.config, {"op": "stop", "id": record.id, "signal": signum,
                                                     "timeout": timeout})
        if reply is None or not reply.get("was_running", True):
            # No monitor, or a new one that never knew it (the old one died in between): act by pid.
            with contextlib.suppress(ContainerNotFound):
                current = self.store.lookup(record.id)
                if current.state.running and not monitor_alive(current.state):
                    self._stop_orphan(current, signum, timeout)
        self._event(record, "stop")
        return self.lookup(record.id) if self.store.exists(record.id) else record

    def _stop_orphan(self, record: ContainerRecord, signum: int, timeout: float) -> None:
        """A container whose monitor died: signal it by pid (checked against its start time), poll its end."""
        state = record.state
        sent = signum
        if process_alive(state.pid, state.pid_start_time):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signum)
            deadline = time.monotonic() + max(timeout, 0)
            while process_alive(state.pid, state.pid_start_time) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_alive(state.pid, state.pid_start_time):
                sent = signal.SIGKILL
                _kill_and_wait(state.pid, state.pid_start_time)
        state.status, state.pid, state.pid_start_time = "exited", 0, 0
        state.exit_code, state.finished_at = 128 + sent, utc_now_rfc3339()
        state.manually_stopped = True
        self.store.save_state(record)
        self._event(record, "die", exitCode=state.exit_code)
        self._settle(record)

    def kill(self, ref: str, signal_name: str = "KILL") -> ContainerRecord:
        record = self.lookup(ref)
        signum = parse_signal(signal_name)
        if record.state.status not in ("running", "paused"):
            raise Conflict(f"Cannot kill container: {ref}: Container {record.id} is not running")
        if self._owned(record):
            supervisor.request(self.config, {"op": "kill", "id": record.id, "signal": signum})
        elif process_alive(record.state.pid, record.state.pid_start_time):
            os.kill(record.state.pid, signum)
        self._event(record, "kill", signal=signum)
        return record

    def restart(self, ref: str, timeout: int | None = None, signal_name: str | None = None) -> ContainerRecord:
        record = self.stop(ref, timeout, signal_name)
        supervisor.request(self.config, {"op": "start", "id": record.id})
        self._event(record, "restart")
        return record

    def wait(self, ref: str) -> int:
        """`docker wait`: block until the container stops; its exit code."""
        record = self.lookup(ref)
        if self._owned(record):
            try:
                return int(supervisor.request(self.config, {"op": "wait", "id": record.id})["exit_code"])
            except ContainerNotFound:
                return record.state.exit_code  # removed on exit (--rm)
        while record.state.running:
            time.sleep(0.1)
            try:
                record = self.lookup(record.id)
            except ContainerNotFound:
                break
        return record.state.exit_code

    def pause(self, ref: str, pause: bool = True) -> ContainerRecord:
        record = self.lookup(ref)
        if pause and record.state.status == "paused":
            raise Conflict(f"Container {record.id} is already paused")
        if not pause and record.state.status != "paused":
            raise Conflict(f"Container {record.id} is not paused")
        if record.state.status not in ("running", "paused"):
            raise Conflict(f"Container {record.id} is not running")
        if self._owned(record):
            supervisor.request(self.config, {"op": "pause", "id": record.id, "pause": pause})
        else:
            self.set_paused(record, pause)
        return record

    def set_paused(self, record: ContainerRecord, paused: bool) -> None:
        from ..linux.cgroups import container_cgroup

        cgroup = container_cgroup(record.id, self.config)
        if paused:
            cgroup.freeze()
        else:
            cgroup.thaw()
        record.state.status = "paused" if paused else "running"
        self.store.save_state(record)
        self._event(record, "pause" if paused else "unpause")

    def update(self, ref: str, changes: UpdateOptions) -> ContainerRecord:
        """`docker update`: new limits / restart policy in place (container/update.py)."""
        from .update import update_container

        return update_container(self, ref, changes)

    def rename(self, ref: str, new_name: str) -> ContainerRecord:
        record = self.lookup(ref)
        old = record.name
        if not new_name.strip("/"):
            raise InvalidArgument("Neither old nor new names may be empty")
        if new_name.lstrip("/") == old:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        self.store.rename(record, new_name)
        self._event(record, "rename", oldName="/" + old)
        return record

    def _runtime_spec(self, record: ContainerRecord):
        from ..runtime.isolation import apply_host_config
        from ..runtime.spec import ContainerSpec, ProcessSpec
        from ..runtime.userdb import resolve_user

        check_usable(record)
        lower_dirs = self.images.layer_dirs(record.config.image)
        user = resolve_user(lower_dirs, record.config.user, group_add=record.config.host_config.group_add)
        env = list(record.config.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.append(f"HOSTNAME={record.config.hostname}")
        process = ProcessSpec(
            args=record.config.args, env=env, cwd=record.config.working_dir,
            uid=user.uid, gid=user.gid, additional_gids=user.additional_gids,
        )
        spec = ContainerSpec(
            id=record.id, hostname=record.config.hostname, lower_dirs=lower_dirs,
            container_dir=record.directory, process=process,
            etc_files={f"/etc/{n}": os.path.join(record.directory, n) for n in ETC_FILES},
        )
        apply_host_config(spec, record.config.host_config, self.config.cgroup_parent)
        spec.mounts = self.volumes.mount_specs(record)
        return spec

    def compare(self, record: ContainerRecord, options: CreateOptions):
        """What would make ``record`` differ from a container created from ``options`` now (container/compare.py);
        the module and `pycontainer compare` both ask this."""
        from .compare import differences

        image_id = None
        if options.pull != "always":
            with contextlib.suppress(ImageNotFound):
                image_id = self.images.inspect(options.image).id
        options.host_config = dataclasses_replace(options.host_config)
        mode = options.host_config.network_mode
        if mode.startswith("container:"):  # stored as container:<id> (Docker); the module may name it
            with contextlib.suppress(EngineError):
                options.host_config.network_mode = "container:" + self.store.lookup(mode[len("container:"):]).id
        if not options.host_config.log_driver:  # unset means the engine's default, as at create
            options.host_config.log_driver = self.config.log_driver or "json-file"
            options.host_config.log_options = {**self.config.log_opts, **options.host_config.log_options}
        return differences(record, options, image_id)

    # -- looking inside ---------------------------------------------------------------------------------
    def logs(self, ref: str, follow: bool = False, tail: str | int = "all", since: str | None = None,
             until: str | None = None):
        """`docker logs`: entries of the json-file log (an iterator; with ``follow`` it ends with the container)."""
        from ..runtime import logs

        record = self.lookup(ref)
        if record.config.host_config.log_driver == "none":
            raise InvalidArgument('configured logging driver does not support reading')
        since_s = logs.parse_time_arg(since) if since else None
        until_s = logs.parse_time_arg(until) if until else None
        path = logs.log_path(record.directory, record.id)
        try:
            st = os.stat(path)
            offset, inode = st.st_size, st.st_ino
        except FileNotFoundError:
            offset, inode = 0, 0
        entries = logs.read_entries(path)
        if str(tail) not in ("all", "-1", ""):
            try:
                count = int(tail)
            except ValueError:
                raise InvalidArgument(f"invalid value for --tail: {tail}") from None
            entries = entries[-count:] if count > 0 else []

        def selected(items):
            for entry in items:
                if since_s is not None and entry.seconds < since_s:
                    continue
                if until_s is not None and entry.seconds > until_s:
                    return
                yield entry

        def all_entries():
            yield from entries
            if follow and (until_s is None or until_s > time.time()):
                def running() -> bool:
                    try:
                        return self.store.load(record.id).state.running
                    except ContainerNotFound:
                        return False
                yield from logs.follow_entries(path, offset, inode, running)

        return selected(all_entries())

    def top(self, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
        """`docker top`: the host's `ps` (default -ef), rows of the container's processes only."""
        import subprocess

        record = self.lookup(ref)
        if record.state.status not in ("running", "paused"):
            raise Conflict(f"Container {record.id} is not running")
        pids = container_pids(record.state.pid)
        args = list(ps_args or []) or ["-ef"]
        proc = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"Error running ps: {proc.stderr.strip()}")
        lines = proc.stdout.splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise EngineError("Couldn't find PID field in ps output")
        pid_index = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_index and fields[pid_index].isdigit() and int(fields[pid_index]) in pids:
                rows.append(fields)
        return titles, rows

    def stats(self, refs: list[str] | None = None, all: bool = False) -> list[dict]:
        """One `docker stats --no-stream` sample per container (CPU % over a short interval)."""
        from ..linux.cgroups import container_cgroup
        from ..system.views import stats_row

        records = [self.lookup(r) for r in refs] if refs else self.list(all=all)
        first = {}
        for record in records:
            if record.state.status in ("running", "paused"):
                with contextlib.suppress(Exception):
                    first[record.id] = (time.monotonic(), container_cgroup(record.id, self.config).stats())
        if first:
            time.sleep(0.5)
        rows = []
        for record in records:
            before = first.get(record.id)
            after = None
            if before is not None:
                with contextlib.suppress(Exception):
                    after = (time.monotonic(), container_cgroup(record.id, self.config).stats())
            rows.append(stats_row(record, before, after))
        return rows

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
        spec = self._runtime_spec(record)
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

    def list(self, all: bool = False) -> list[ContainerRecord]:
        records = [r for r in map(self._settle, self.store.list()) if r is not None]
        return records if all else [r for r in records if r.state.status in ("running", "paused", "restarting")]

    def lookup(self, ref: str) -> ContainerRecord:
        record = self._settle(self.store.lookup(ref))
        if record is None:
            raise ContainerNotFound(f"No such container: {ref}")
        return record

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> ContainerRecord:
        """`rm [-f] [-v]`: ``volumes`` also removes the container's anonymous volumes."""
        from ..runtime import launcher

        record = self.store.lookup(ref)
        for _attempt in range(_REMOVE_ATTEMPTS):
            if record.state.running:
                if not force:
                    verb = "paused" if record.state.status == "paused" else "running"
                    raise Conflict(
                        f"cannot remove container \"/{record.name}\": container is {verb}: "
                        "stop the container before removing or force remove")
                if self._owned(record):
                    with contextlib.suppress(ContainerNotFound):
                        supervisor.request(self.config, {"op": "stop", "id": record.id,
                                                         "signal": signal.SIGKILL, "timeout": 0})
                else:
                    _kill_and_wait(record.state.pid, record.state.pid_start_time)
                fault_point("rm.after_kill")
                if not self.store.exists(record.id):
                    return record  # --rm: the monitor removed it
            # Under the container's lock (never while asking the monitor, which may be waiting for it): a
            # start that began meanwhile has its pid on disk, and is stopped first.
            with self.store.holding(record):
                record = self.store.load(record.id)
                # A live process started meanwhile: stop it first. One whose exit its monitor failed to record
                # (the state still says running) is gone: remove it.
                if record.state.running and process_alive(record.state.pid, record.state.pid_start_time):
                    continue
                launcher.cleanup(self._runtime_spec_for_cleanup(record), remove_layers=True)
                release_networking(record, self.config, self.events)
                # A damaged mounts file must not keep the record: its volumes' refs are ignored once it is gone.
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.volumes.release(record, remove_anonymous=volumes)
                fault_point("rm.before_record")
                self.store.remove(record)
            self._event(record, "destroy")
            return record
        raise Conflict(f"container {record.id} kept being started while it was being removed")

    def _runtime_spec_for_cleanup(self, record: ContainerRecord):
        try:
            return self._runtime_spec(record)
        except (EngineError, ValueError, TypeError, KeyError):
            # The image may be gone (rmi -f), its user unknown, the record damaged or older than today's checks
            # (a limit start refuses): cleanup needs only the container's own directory and cgroup.
            from ..linux.cgroups import DEFAULT_PARENT, CgroupConfig
            from ..runtime.spec import ContainerSpec, ProcessSpec

            spec = ContainerSpec(id=record.id, hostname=record.config.hostname, lower_dirs=[],
                                 container_dir=record.directory, process=ProcessSpec(args=[], env=[]))
            spec.cgroup = CgroupConfig(parent=(self.config.cgroup_parent or DEFAULT_PARENT).strip("/")
                                       or DEFAULT_PARENT)
            return spec


ETC_FILES = ("hostname", "hosts", "resolv.conf")


def _write_etc_files(record: ContainerRecord) -> None:
    """The files every container starts with; networking rewrites hosts/resolv.conf for its modes."""
    from ..network.etcfiles import HOSTS_BASE, read_text, resolv_conf_content

    fault_point("create.etc_files")
    directory = record.directory
    with open(os.path.join(directory, "hostname"), "w") as f:
        f.write(record.config.hostname + "\n")
    with open(os.path.join(directory, "hosts"), "w") as f:
        f.write(HOSTS_BASE)
    with open(os.path.join(directory, "resolv.conf"), "w") as f:
        f.write(resolv_conf_content(read_text("/etc/resolv.conf"), [], [], []))


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


def merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    """Image env overridden key by key by the user's (order kept: image first, new keys appended)."""
    merged: dict[str, str] = {}
    for item in [*image_env, *user_env]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        merged[key] = f"{key}={value}" if sep else key
    if "PATH" not in merged:
        merged["PATH"] = f"PATH={DEFAULT_PATH}"
    return list(merged.values())


def _kill_and_wait(pid: int, start_time: int, timeout: float = 10.0) -> None:
    if not process_alive(pid, start_time):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid, start_time):
        time.sleep(0.01)


def container_pids(pid1: int) -> set[int]:
    """Host pids of the processes in the pid namespace of ``pid1``."""
    try:
        target = os.readlink(f"/proc/{pid1}/ns/pid")
    except OSError:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == target:
                    pids.add(int(entry))
            except OSError:
                continue
    return pids


def parse_signal(value: str | int) -> int:
    """Docker's signal names: KILL, SIGKILL, 9, sigterm."""
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        number = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
        if number is None:
            raise InvalidArgument(f"Invalid signal: {value}")
    if not 0 < int(number) < 65:
        raise InvalidArgument(f"Invalid signal: {value}")
    return int(number)


class AttachSession:
    """A command attached to a container's stdio through the monitor (supervision/attach.py pumps it)."""

    def __init__(self, conn, record: ContainerRecord, pid: int) -> None:
        self.conn = conn
        self.record = record
        self.pid = pid

    @property
    def tty(self) -> bool:
        return self.record.config.tty

    def close(self) -> None:
        self.conn.close()
