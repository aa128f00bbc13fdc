"""One container's lifecycle as the monitor drives it: launch, start failure, exit, release, --rm removal,
pause, and reconciliation of what a dead monitor left held.

Built from the engine config alone (``Lifecycle.from_config``): the monitor needs no ``Engine`` and nothing of
``container/``; ``ContainerService`` holds one and delegates to it."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

from .. import trace
from ..errors import ContainerCommandError, ContainerNotFound, EngineError
from ..faults import fault_point
from ..records.containers import ContainerRecord, ContainerStore, check_usable, monitor_alive, process_start_time
from ..timefmt import utc_now_rfc3339
from .journal import open_log_and_journal
from .volumes import VolumeService

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..engine_log import EngineLog
    from ..events import EventJournal
    from ..image.store import ImageStore

# State.ExitCode of a container whose start failed before its process ran (Docker's exitUnknown); the
# command itself exits 125.
START_FAILED = 128
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ETC_FILES = ("hostname", "hosts", "resolv.conf")


def merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    """Image env overridden key by key by the user's (order kept: image first, new keys appended)."""
    from ..errors import InvalidArgument

    merged: dict[str, str] = {}
    for item in [*image_env, *user_env]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        merged[key] = f"{key}={value}" if sep else key
    if "PATH" not in merged:
        merged["PATH"] = f"PATH={DEFAULT_PATH}"
    return list(merged.values())


class Lifecycle:
    """The records, journal, log and release a running container needs, and the monitor's callbacks."""

    def __init__(self, config: EngineConfig, events: EventJournal, log: EngineLog | None = None) -> None:
        self.config = config
        self.events = events
        self.log = log
        self.store = ContainerStore(config.paths.containers)
        self.volumes = VolumeService(config, events)
        self._images: ImageStore | None = None

    @classmethod
    def from_config(cls, config: EngineConfig) -> Lifecycle:
        log, events = open_log_and_journal(config)
        return cls(config, events, log)

    @property
    def images(self) -> ImageStore:
        """The image store, for a container's layer directories (built on first use)."""
        if self._images is None:
            from ..image.store import ImageStore

            self._images = ImageStore(self.config.paths.images)
        return self._images

    def event(self, record: ContainerRecord, action: str, **extra: object) -> None:
        """Docker's container event: the image and name, the labels, then action-specific attributes."""
        attributes = {**record.config.labels, "image": record.config.image_name, "name": record.name, **extra}
        self.events.record("container", action, record.id, attributes)

    # -- the runtime spec -------------------------------------------------------------------------------
    def layer_dirs(self, image_id: str) -> list[str]:
        return self.images.layer_dirs(self.images.lookup(image_id))

    def runtime_spec(self, record: ContainerRecord):
        from .isolation import apply_host_config
        from .spec import ContainerSpec, ProcessSpec
        from .userdb import resolve_user

        check_usable(record)
        lower_dirs = self.layer_dirs(record.config.image)
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

    def runtime_spec_for_cleanup(self, record: ContainerRecord):
        try:
            return self.runtime_spec(record)
        except (EngineError, ValueError, TypeError, KeyError):
            # The image may be gone (rmi -f), its user unknown, the record damaged or older than today's checks
            # (a limit start refuses): cleanup needs only the container's own directory and cgroup.
            from ..linux.cgroups import DEFAULT_PARENT, CgroupConfig
            from .spec import ContainerSpec, ProcessSpec

            spec = ContainerSpec(id=record.id, hostname=record.config.hostname, lower_dirs=[],
                                 container_dir=record.directory, process=ProcessSpec(args=[], env=[]))
            spec.cgroup = CgroupConfig(parent=(self.config.cgroup_parent or DEFAULT_PARENT).strip("/")
                                       or DEFAULT_PARENT)
            return spec

    # -- starting (the monitor is the caller) -----------------------------------------------------------
    def launch(self, record: ContainerRecord, stdin: int | None, stdout: int, stderr: int,
               monitor: tuple[int, int] = (0, 0), size: tuple[int, int] | None = None):
        """Start the container's process as the caller's child (the monitor calls this). -> (process, spec)

        With ``tty`` the stdio arguments are ignored: the terminal, of the container's own devpts, is opened
        by the container and its master is ``process.console`` (the caller closes it), ``size`` (rows,
        columns) its initial window."""
        from . import launcher

        try:
            spec = self.runtime_spec(record)  # resolves the user in the image's /etc/passwd (Docker: at start)
        except EngineError as exc:
            self.record_start_failure(record, exc, exit_code=START_FAILED)
            raise
        trace.mark("runtime spec")
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
        trace.mark("state saved (resources held)")

        def started(pid: int) -> None:
            # A parent hook: the pid is on disk before the container may run, so a monitor killed after
            # this leaves a container the next command can see, stop and remove (never an unknown orphan).
            state.status, state.pid, state.pid_start_time = "running", pid, process_start_time(pid)
            self.store.save_state(record)

        try:
            from ..network.modes import networking_for  # not for read-only verbs: start-up speed

            networking = networking_for(record.config.host_config.network_mode, self.config, self.events)
            attachment = networking.prepare(record)
            trace.mark("network prepare")
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
                        self.release(record, spec)
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
        self.event(record, "start")
        self.volumes.record_mount_events(record, "mount")
        trace.mark("state and events")
        fault_point("start.after_state")
        return process, spec

    def _abandon(self, record: ContainerRecord, spec, process, previous: str) -> None:
        from . import launcher

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
            self.release(record, spec)

    def record_start_failure(self, record: ContainerRecord, exc: Exception, spec=None,
                             exit_code: int | None = None) -> None:
        """Docker leaves such a container in "Created" with the exit code and error recorded."""
        record.state.exit_code = exit_code if exit_code is not None else getattr(exc, "exit_code", 125)
        record.state.error = str(exc)
        if record.state.status == "restarting":
            record.state.status = "exited"
        self.store.save_state(record)
        self.release(record, spec)
        if record.config.host_config.auto_remove:  # `run --rm no-such-command` leaves nothing (Docker)
            self.remove_exited(record)

    # -- ending -----------------------------------------------------------------------------------------
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
        self.release(record, spec, save=False)
        fault_point("exit.before_state")
        self.store.save_state(record)
        if oom_killed:
            self.event(record, "oom")
        self.event(record, "die", exitCode=exit_code)
        self.volumes.record_mount_events(record, "unmount")
        trace.mark("state and events")

    def record_stopped_while_restarting(self, record: ContainerRecord) -> None:
        record.state.status = "exited"
        record.state.manually_stopped = True
        self.store.save_state(record)

    def release(self, record: ContainerRecord, spec=None, save: bool = True) -> None:
        """Give back network, cgroup and leftover mounts; idempotent."""
        from ..network.modes import release_networking
        from . import launcher

        trace.mark("output drained")
        release_networking(record, self.config, self.events)
        trace.mark("network release")
        launcher.cleanup(spec or self.runtime_spec_for_cleanup(record))
        trace.mark("cgroup and mounts cleanup")
        if record.state.resources_held:
            record.state.resources_held = False
            if not save:
                return
            with contextlib.suppress(ContainerNotFound, FileNotFoundError):
                self.store.save_state(record)

    def remove_exited(self, record: ContainerRecord, defer_delete: bool = False) -> str | None:
        """--rm: the container exited (and was released) and is not restarted. With ``defer_delete`` its
        files are left for ``store.delete_removed`` (returns their path)."""
        from . import launcher

        if record.state.resources_held:
            launcher.cleanup(self.runtime_spec_for_cleanup(record))
        self.volumes.release(record, remove_anonymous=True)  # --rm drops anonymous volumes too (Docker)
        doomed = self.store.remove(record, defer_delete=defer_delete)
        self.event(record, "destroy")
        trace.mark("remove (--rm)")
        return doomed

    def lookup(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names (ID, prefix or name), reconciled first."""
        record = self.settle(self.store.lookup(ref))
        if record is None:
            raise ContainerNotFound(f"No such container: {ref}")
        return record

    def settle(self, record: ContainerRecord) -> ContainerRecord | None:
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
                self.event(record, "die", exitCode=state.exit_code)
            self.release(record)
            record.state.resources_held = False
            with contextlib.suppress(FileNotFoundError):
                self.store.save_state(record)
            if record.config.host_config.auto_remove:
                self.remove_exited(record)
                return None
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
        self.event(record, "pause" if paused else "unpause")
