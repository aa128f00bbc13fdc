"""Container operations as the engine offers them: create, run, start, stop, kill, rm, list, rename, update,
compare. The monitor's side of a container (launch, exit, release) is ``runtime/lifecycle.py``; exec is
``exec.py``, logs/top/stats ``inspect.py``; kernel work is the launcher's, records the container store's."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import replace as dataclasses_replace
from typing import TYPE_CHECKING

from .. import trace
from ..errors import (
    Conflict,
    ContainerNotFound,
    EngineError,
    ImageNotFound,
    InvalidArgument,
    PortConflict,
)
from ..faults import fault_point
from ..records.containers import (
    ContainerConfig,
    ContainerRecord,
    monitor_alive,
    new_container_id,
    process_alive,
)
from ..runtime.lifecycle import Lifecycle, merge_env
from ..supervision import supervisor
from ..timefmt import utc_now_rfc3339
from .exec import ExecVerbs
from .inspect import InspectVerbs, StatsRow
from .options import CreateOptions
from .signals import kill_and_wait, parse_signal

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..image.service import ImageService, Progress
    from ..supervision.attach import AttachSession
    from .update import UpdateOptions

# `rm -f` stops, then removes under the container's lock; a start racing it between the two makes it stop again.
_REMOVE_ATTEMPTS = 5


class ContainerService(ExecVerbs, InspectVerbs):
    def __init__(self, config: EngineConfig, images: ImageService, events: EventJournal,
                 lifecycle: Lifecycle | None = None, stats_row: StatsRow | None = None) -> None:
        self.config = config
        self.images = images
        self.events = events
        self.lifecycle = lifecycle or Lifecycle(config, events)
        self.store = self.lifecycle.store
        self.volumes = self.lifecycle.volumes
        self.stats_row = stats_row

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
        # Networking only where a container is made: read-only verbs stay light (start-up).
        from ..network.attachment import ContainerNetworking, LocalNetworking, check_container_mode
        from ..network.modes import networking_for

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
        from ..runtime.validate import check_host_config  # create only: read-only verbs stay light

        check_host_config(hc, options.user)  # limits, capabilities, devices, ulimits, ports, mounts, user form
        if options.stop_signal:
            parse_signal(options.stop_signal)

    def _event(self, record: ContainerRecord, action: str, **extra: object) -> None:
        self.lifecycle.event(record, action, **extra)

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
        from ..supervision.attach import AttachSession

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
        from ..supervision.attach import AttachSession

        return AttachSession(conn, record, reply.get("pid", 0))

    def run(self, options: CreateOptions, stdin: bool = False, detach: bool = False,
            progress: Progress | None = None) -> tuple[ContainerRecord, AttachSession | None]:
        """`docker run`: create, then start detached or attached (the caller pumps the session)."""
        record = self.create(options, progress=progress)
        trace.mark("create (image, record, layers)")
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

    # -- the monitor's callbacks: runtime/lifecycle.py (kept here for the callers that use them) ------------
    def launch(self, record: ContainerRecord, stdin: int | None, stdout: int, stderr: int,
               monitor: tuple[int, int] = (0, 0), size: tuple[int, int] | None = None):
        return self.lifecycle.launch(record, stdin, stdout, stderr, monitor=monitor, size=size)

    def record_start_failure(self, record: ContainerRecord, exc: Exception, spec=None,
                             exit_code: int | None = None) -> None:
        self.lifecycle.record_start_failure(record, exc, spec, exit_code=exit_code)

    def record_exit(self, record: ContainerRecord, spec, exit_code: int, restarting: bool = False,
                    oom_killed: bool = False) -> None:
        self.lifecycle.record_exit(record, spec, exit_code, restarting=restarting, oom_killed=oom_killed)

    def record_stopped_while_restarting(self, record: ContainerRecord) -> None:
        self.lifecycle.record_stopped_while_restarting(record)

    def remove_exited(self, record: ContainerRecord, defer_delete: bool = False) -> str | None:
        return self.lifecycle.remove_exited(record, defer_delete=defer_delete)

    def set_paused(self, record: ContainerRecord, paused: bool) -> None:
        self.lifecycle.set_paused(record, paused)

    def _settle(self, record: ContainerRecord) -> ContainerRecord | None:
        return self.lifecycle.settle(record)

    def _runtime_spec(self, record: ContainerRecord):
        return self.lifecycle.runtime_spec(record)

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
                kill_and_wait(state.pid, state.pid_start_time)
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

    def update(self, ref: str, changes: UpdateOptions) -> ContainerRecord:
        """`docker update`: new limits / restart policy in place (container/update.py)."""
        from .update import update_container

        return update_container(self.lifecycle, ref, changes)

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

    def list(self, all: bool = False) -> list[ContainerRecord]:
        records = [r for r in map(self._settle, self.store.list()) if r is not None]
        return records if all else [r for r in records if r.state.status in ("running", "paused", "restarting")]

    def lookup(self, ref: str) -> ContainerRecord:
        return self.lifecycle.lookup(ref)

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
                    kill_and_wait(record.state.pid, record.state.pid_start_time)
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
                launcher.cleanup(self.lifecycle.runtime_spec_for_cleanup(record), remove_layers=True)
                from ..network.modes import release_networking

                release_networking(record, self.config, self.events)
                # A damaged mounts file must not keep the record: its volumes' refs are ignored once it is gone.
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.volumes.release(record, remove_anonymous=volumes)
                fault_point("rm.before_record")
                self.store.remove(record)
            self._event(record, "destroy")
            return record
        raise Conflict(f"container {record.id} kept being started while it was being removed")


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
