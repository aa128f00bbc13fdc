"""Container operations as the engine offers them: create, run, start, list, remove (and, with the runtime
issue, stop, kill, restart, logs, exec...). Kernel work is the launcher's; records are the container store's."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..container_store import (
    ContainerConfig,
    ContainerRecord,
    ContainerStore,
    new_container_id,
    process_start_time,
)
from ..errors import Conflict, ContainerCommandError, ImageNotFound, InvalidArgument
from ..timefmt import utc_now_rfc3339
from .hostconfig import HostConfig
from .networking import networking_for
from .volumes import VolumeService

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..image.service import ImageService, Progress

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class CreateOptions:
    """What a user may set when creating a container (Docker's `create`/`run` options we support)."""

    image: str
    name: str | None = None
    command: list[str] | None = None        # replaces the image's Cmd
    entrypoint: list[str] | None = None     # replaces the image's Entrypoint (and drops its Cmd)
    env: list[str] = field(default_factory=list)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    host_config: HostConfig = field(default_factory=HostConfig)
    pull: str = "missing"


@dataclass
class Stdio:
    """File descriptors the container's stdin/stdout/stderr are connected to (stdin None: /dev/null)."""

    stdin: int | None
    stdout: int
    stderr: int


@dataclass
class RunResult:
    record: ContainerRecord
    exit_code: int


class ContainerService:
    def __init__(self, config: EngineConfig, images: ImageService, events: EventJournal) -> None:
        self.config = config
        self.images = images
        self.events = events
        self.store = ContainerStore(config.paths.containers)
        self.volumes = VolumeService(config, events)

    def create(self, options: CreateOptions, progress: Progress | None = None) -> ContainerRecord:
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
        networking_for(options.host_config.network_mode, self.config, self.events)  # refuses unknown modes early
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
            hostname=options.hostname or container_id[:12],
            labels={**(image_config.get("Labels") or {}), **options.labels},
            host_config=options.host_config,
        )
        record = self.store.create(config)
        try:
            self.volumes.prepare_mounts(record, image_config)  # -v/--mount/--tmpfs + image VOLUMEs
        except BaseException:
            self.store.remove(record)
            raise
        _write_etc_files(record)
        self._event(record, "create")
        return record

    def _event(self, record: ContainerRecord, action: str, **extra: object) -> None:
        """Docker's container event: the image and name, the labels, then action-specific attributes."""
        attributes = {**record.config.labels, "image": record.config.image_name, "name": record.name, **extra}
        self.events.record("container", action, record.id, attributes)

    def run(self, options: CreateOptions, stdio: Stdio, progress: Progress | None = None) -> RunResult:
        """`docker run` in the foreground: create, start attached, wait, honour --rm."""
        record = self.create(options, progress=progress)
        return RunResult(record=record, exit_code=self.start_attached(record, stdio))

    def start_attached(self, record: ContainerRecord, stdio: Stdio) -> int:
        """Start a created or exited container with its stdio on ``stdio`` and wait for it to exit."""
        from . import launcher

        if record.state.status == "running":
            raise Conflict(f"container {record.id} is already running")
        spec = self._runtime_spec(record)
        try:
            networking = networking_for(record.config.host_config.network_mode, self.config, self.events)
            attachment = networking.prepare(record)
            try:
                process = launcher.start(spec, stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr,
                                         parent_hooks=[attachment.connect])
            except BaseException:
                networking.release(record)
                raise
        except ContainerCommandError as exc:
            # Docker leaves such a container in "Created" with the exit code and error recorded.
            record.state.exit_code = exc.exit_code
            record.state.error = str(exc)
            self.store.save_state(record)
            self._finish(record, spec)
            raise
        state = record.state
        state.status, state.pid, state.error = "running", process.pid, ""
        state.pid_start_time = process_start_time(process.pid)
        state.started_at = utc_now_rfc3339()
        self.store.save_state(record)
        self._event(record, "start")
        self.volumes.record_mount_events(record, "mount")
        with _forward_signals(process.pid):
            exit_code = launcher.wait(process)
        state.status, state.pid, state.exit_code = "exited", 0, exit_code
        state.finished_at = utc_now_rfc3339()
        self.store.save_state(record)
        self._event(record, "die", exitCode=exit_code)
        self.volumes.record_mount_events(record, "unmount")
        self._finish(record, spec)
        return exit_code

    def _finish(self, record: ContainerRecord, spec) -> None:
        from . import launcher

        networking_for(record.config.host_config.network_mode, self.config, self.events).release(record)
        launcher.cleanup(spec)
        if record.config.host_config.auto_remove:
            launcher.cleanup(spec, remove_layers=True)
            self.volumes.release(record, remove_anonymous=True)  # --rm drops anonymous volumes too (Docker)
            self.store.remove(record)
            self._event(record, "destroy")

    def _runtime_spec(self, record: ContainerRecord):
        from ..userdb import resolve_user
        from .isolation import apply_host_config
        from .spec import ContainerSpec, ProcessSpec

        lower_dirs = self.images.layer_dirs(record.config.image)
        user = resolve_user(lower_dirs, record.config.user)
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
        apply_host_config(spec, record.config.host_config)
        spec.mounts = self.volumes.mount_specs(record)
        return spec

    def list(self, all: bool = False) -> list[ContainerRecord]:
        records = self.store.list()
        return records if all else [r for r in records if r.state.status == "running"]

    def lookup(self, ref: str) -> ContainerRecord:
        return self.store.lookup(ref)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> ContainerRecord:
        """`rm [-f] [-v]`: ``volumes`` also removes the container's anonymous volumes."""
        from . import launcher

        record = self.store.lookup(ref)
        if record.state.status == "running":
            if not force:
                raise Conflict(
                    f"cannot remove container \"/{record.name}\": container is running: "
                    "stop the container before removing or force remove")
            _kill_and_wait(record.state.pid)
        launcher.cleanup(self._runtime_spec_for_cleanup(record), remove_layers=True)
        self.volumes.release(record, remove_anonymous=volumes)
        self.store.remove(record)
        self._event(record, "destroy")
        return record

    def _runtime_spec_for_cleanup(self, record: ContainerRecord):
        try:
            return self._runtime_spec(record)
        except ImageNotFound:
            # The image may be gone (rmi -f); cleanup needs only the container's own directory.
            from .spec import ContainerSpec, ProcessSpec

            return ContainerSpec(id=record.id, hostname=record.config.hostname, lower_dirs=[],
                                 container_dir=record.directory, process=ProcessSpec(args=[], env=[]))


ETC_FILES = ("hostname", "hosts", "resolv.conf")

_HOSTS_BASE = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def _write_etc_files(record: ContainerRecord) -> None:
    directory = record.directory
    with open(os.path.join(directory, "hostname"), "w") as f:
        f.write(record.config.hostname + "\n")
    with open(os.path.join(directory, "hosts"), "w") as f:
        f.write(_HOSTS_BASE)
    with open(os.path.join(directory, "resolv.conf"), "w") as f:
        f.write(container_resolv_conf(_read_text("/etc/resolv.conf")))


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def container_resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without loopback nameservers, which mean nothing inside a container.

    As Docker does, Google's public resolvers stand in when no nameserver is left.
    """
    lines, nameservers = [], 0
    for line in host_text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            address = words[1]
            if address.startswith("127.") or address == "::1":
                continue
            nameservers += 1
        lines.append(line)
    if not nameservers:
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


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


class _forward_signals:
    """While a foreground container runs, SIGINT/SIGTERM/SIGHUP sent to us go to it (docker's sig-proxy)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.saved: dict[int, object] = {}

    def _forward(self, signum, _frame) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def __enter__(self) -> None:
        for sig in self.SIGNALS:
            # Outside the main thread signals cannot be forwarded, which is fine.
            with contextlib.suppress(ValueError):
                self.saved[sig] = signal.signal(sig, self._forward)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def _kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    import time

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_start_time(pid):
        time.sleep(0.01)
