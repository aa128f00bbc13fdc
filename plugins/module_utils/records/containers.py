"""Container records on disk: one directory per container, names reserved under one lock.

Layout under ``<root>/containers``::

    .lock                 flock held while names are reserved or records are created/removed
    names.json            {name: id}; the unique-name index (rewritten atomically under .lock)
    <id>/config.json      ContainerConfig (what the user asked for, merged with the image's defaults)
    <id>/state.json       ContainerState (rewritten atomically by whoever changes the state)
    <id>/hostname, hosts, resolv.conf   files the engine bind-mounts into the container
    <id>/upper, work, merged            the container's writable layer (made by the runtime)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

from .. import refs
from ..errors import Conflict, ContainerNotFound, EngineError, InvalidArgument
from ..faults import fault_point
from ..fsutil import atomic_write_json, ensure_dir, locked, make_dir, read_json
from .hostconfig import HostConfig, Mount, RestartPolicy, Ulimit

# The statuses a record may hold on disk; anything else is a damaged record.
_STATUSES = ("created", "running", "paused", "restarting", "exited", "dead", "removing")

# Docker's generator picks "adjective_surname"; a short list keeps the same look.
_ADJECTIVES = ("admiring", "brave", "clever", "eager", "focused", "gallant", "happy", "jolly", "keen",
               "lucid", "modest", "nifty", "optimistic", "quirky", "relaxed", "serene", "trusting", "vibrant")
_SURNAMES = ("babbage", "curie", "darwin", "euler", "fermi", "galileo", "hopper", "hypatia", "kepler",
             "lovelace", "meitner", "noether", "pasteur", "ritchie", "shannon", "thompson", "turing", "wozniak")


@dataclass
class ContainerConfig:
    """What a container was created with (Docker's Config + the HostConfig parts we support)."""

    id: str
    name: str
    created: str
    image: str                      # image ID, sha256:...
    image_name: str                 # what the user asked for, as Docker shows it in `ps`
    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    user: str
    hostname: str
    labels: dict[str, str] = field(default_factory=dict)
    host_config: HostConfig = field(default_factory=HostConfig)
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str = ""           # "" = SIGTERM (or the image's StopSignal, copied at create)
    stop_timeout: int | None = None  # seconds; None = Docker's default of 10

    @property
    def args(self) -> list[str]:
        return list(self.entrypoint or []) + list(self.cmd or [])


@dataclass
class ContainerState:
    status: str = "created"         # created | running | paused | restarting | exited | dead
    pid: int = 0
    pid_start_time: int = 0         # /proc/<pid>/stat starttime: tells a live pid from a reused one
    exit_code: int = 0
    error: str = ""
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    oom_killed: bool = False
    restart_count: int = 0
    # Set by stop/kill: the restart policy does not apply to a container a user stopped (Docker's
    # HasBeenManuallyStopped); cleared by the next start.
    manually_stopped: bool = False
    # The monitor process that supervises the running container (supervision/monitor.py), and its start time.
    monitor_pid: int = 0
    monitor_start_time: int = 0
    # Resources (network, cgroup, leftover mounts) still held for a container that is no longer running:
    # set at start, cleared once released; reconciliation releases them after a crash.
    resources_held: bool = False
    network_settings: dict = field(default_factory=dict)   # what networking reserved (inspect's NetworkSettings)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass
class ContainerRecord:
    config: ContainerConfig
    state: ContainerState
    directory: str
    reconciled: bool = False        # reconcile() changed the state in memory (not yet persisted)
    # Why the record on disk could not be read as written (corrupt, truncated, wrong types): such a record
    # is shown as "dead" with what could be read, and can be inspected and removed, never started.
    damaged: str = ""

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def name(self) -> str:
        return self.config.name


def check_usable(record: ContainerRecord) -> None:
    """A damaged record can be listed, inspected and removed; nothing may run from it."""
    if record.damaged:
        raise Conflict(f"container {record.id} has a damaged record ({record.damaged}): it can only be "
                       "inspected or removed")


def new_container_id() -> str:
    return secrets.token_hex(32)


def process_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat, or 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    # The command name may hold spaces and parentheses: fields start after the last ")".
    return int(data[data.rindex(b")") + 2 :].split()[19])


class ContainerStore:
    def __init__(self, containers_dir: str) -> None:
        self.directory = containers_dir

    # -- paths -----------------------------------------------------------------------------------------
    def _lock(self, shared: bool = False):
        ensure_dir(self.directory, 0o700)
        return locked(os.path.join(self.directory, ".lock"), shared=shared)

    def _names_path(self) -> str:
        return os.path.join(self.directory, "names.json")

    def container_dir(self, container_id: str) -> str:
        # The one place an ID becomes a path: only a full hex ID ever does.
        return os.path.join(self.directory, refs.container_id(container_id))

    def exists(self, container_id: str) -> bool:
        if not refs.is_container_id(container_id):
            return False
        return os.path.isfile(os.path.join(self.container_dir(container_id), "config.json"))

    def container_lock(self, record: ContainerRecord):
        """Serialises commands that settle one container's state (reconciliation); dies with its holder."""
        return locked(os.path.join(record.directory, ".settle.lock"))

    @contextlib.contextmanager
    def holding(self, record: ContainerRecord) -> Iterator[None]:
        """The container's lock, held by a start from its claim until its pid is written and by `rm` while it
        removes, so neither sees the other half done; ContainerNotFound once the record is gone."""
        try:
            fd = os.open(os.path.join(record.directory, ".settle.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise ContainerNotFound(f"No such container: {record.id}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self.exists(record.id):  # removed (renamed away) while we waited
                raise ContainerNotFound(f"No such container: {record.id}")
            yield
        finally:
            os.close(fd)

    # -- creation and removal --------------------------------------------------------------------------
    def create(self, config: ContainerConfig) -> ContainerRecord:
        """Reserve the name and write the record; Docker's conflict error if the name is taken."""
        with self._lock():
            names: dict[str, str] = read_json(self._names_path(), {})
            if config.name:
                name = refs.container_name(config.name)
                self._check_name_free(names, name)
            else:
                name = self._generate_name(names)
            config.name = name
            directory = self.container_dir(config.id)
            make_dir(directory, 0o700)  # durable: its config.json is the record
            record = ContainerRecord(config=config, state=ContainerState(), directory=directory)
            atomic_write_json(os.path.join(directory, "config.json"), dataclasses.asdict(config))
            # No state.json yet: a missing one reads as the initial state ("created"); one write saved.
            names[name] = config.id
            atomic_write_json(self._names_path(), names)
        return record

    def _check_name_free(self, names: dict[str, str], name: str) -> None:
        """Docker's name rules and its conflict message (the caller holds the store lock)."""
        refs.container_name(name)
        owner = names.get(name)
        if refs.is_container_id(owner) and os.path.isdir(self.container_dir(owner)):
            raise Conflict(
                f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
                "You have to remove (or rename) that container to be able to reuse that name.")

    def _generate_name(self, names: dict[str, str]) -> str:
        while True:
            name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_SURNAMES)}"
            if name in names:
                name = f"{name}{secrets.randbelow(10)}"
            if name not in names:
                return name

    def remove(self, record: ContainerRecord, defer_delete: bool = False) -> str | None:
        """Drop the record and its directory. The runtime must have released mounts before this.

        With ``defer_delete`` the record is gone (renamed away) but its files are left for the caller to
        delete with ``delete_removed`` (the monitor answers its client first); returns that path.
        """
        with self._lock():
            # Rename first so a crash mid-delete never leaves a half record that looks valid, nor a record
            # whose name is no longer reserved (a name whose owner's directory is gone is free).
            doomed = os.path.join(self.directory, f".removing-{record.id}")
            try:
                os.rename(record.directory, doomed)
            except FileNotFoundError:
                return None
            fault_point("rm.after_rename")
            names = self._read_names()
            # Every name still pointing at it (a damaged record may not know its own name).
            stale = [name for name, owner in names.items() if owner == record.id]
            if stale:
                for name in stale:
                    del names[name]
                atomic_write_json(self._names_path(), names)
            fault_point("rm.after_names")
        if defer_delete:
            return doomed
        shutil.rmtree(doomed, ignore_errors=True)
        return None

    @staticmethod
    def delete_removed(path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    # -- reading ---------------------------------------------------------------------------------------
    def save_state(self, record: ContainerRecord) -> None:
        atomic_write_json(os.path.join(record.directory, "state.json"), dataclasses.asdict(record.state))

    def load(self, container_id: str) -> ContainerRecord:
        """The record as written; a damaged one (see ``ContainerRecord.damaged``) loads as what could be read."""
        directory = self.container_dir(container_id)
        try:
            config_data = _read_json_object(os.path.join(directory, "config.json"))
        except FileNotFoundError:
            raise ContainerNotFound(f"No such container: {container_id}") from None
        except (OSError, ValueError) as exc:
            config_data, damaged = None, f"config.json: {exc}"
        else:
            damaged = ""
        config = None
        if config_data is not None:
            try:
                config = _config_from(config_data, container_id)
            except (TypeError, ValueError, KeyError, AttributeError, EngineError) as exc:
                damaged = f"config.json: {exc}"
        if config is None:
            config = self._stand_in_config(directory, container_id)
        state, state_damage = _read_state(directory)
        damaged = damaged or state_damage
        if state is None:
            state = ContainerState(status="dead") if state_damage else ContainerState()  # never started: created
        if damaged and not state.running:
            state.status = "dead"  # Docker's word for a container that cannot be brought back
        if damaged:
            state.error = state.error or f"damaged record: {damaged}"  # inspect's State.Error says why
        record = ContainerRecord(config=config, state=state, directory=directory, damaged=damaged)
        return reconcile(record)

    def _stand_in_config(self, directory: str, container_id: str) -> ContainerConfig:
        """What a damaged record shows: its ID, the name the index gives it, its directory's time."""
        name = next((n for n, owner in self._read_names().items() if owner == container_id), "")
        try:
            mtime = os.stat(directory).st_mtime
        except OSError:
            mtime = 0.0
        created = _dt.datetime.fromtimestamp(mtime, _dt.UTC).isoformat(timespec="microseconds")
        return ContainerConfig(id=container_id, name=name, created=created.replace("+00:00", "Z"), image="",
                               image_name="", entrypoint=None, cmd=None, env=[], working_dir="", user="",
                               hostname=container_id[:12])

    def _read_names(self) -> dict[str, str]:
        try:
            names = read_json(self._names_path(), {})
        except ValueError:
            return {}
        return names if isinstance(names, dict) else {}

    def save_config(self, record: ContainerRecord) -> None:
        check_usable(record)  # writing the stand-in back would destroy what is left of the record
        atomic_write_json(os.path.join(record.directory, "config.json"), dataclasses.asdict(record.config))

    def rename(self, record: ContainerRecord, new_name: str) -> None:
        """Docker's rename: the new name must be valid and free; the old one is released."""
        new_name = refs.container_name(new_name)
        with self._lock():
            names = self._read_names()
            self._check_name_free(names, new_name)
            if names.get(record.name) == record.id:
                del names[record.name]
            names[new_name] = record.id
            record.config.name = new_name
            self.save_config(record)
            atomic_write_json(self._names_path(), names)

    def list(self) -> list[ContainerRecord]:
        records = []
        try:
            entries = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.startswith(".removing-"):  # a removal whose deleter died (the record is already gone)
                shutil.rmtree(os.path.join(self.directory, entry), ignore_errors=True)
                continue
            if refs.is_container_id(entry):
                try:
                    records.append(self.load(entry))
                except ContainerNotFound:
                    continue  # removed while we listed
        records.sort(key=lambda r: r.config.created, reverse=True)
        return records

    def statuses(self) -> list[str]:
        """Each container's status as ``list`` would show it (crashes accounted for, in memory), reading only
        its state file: `info`'s counts, without parsing a thousand configurations. A damaged state is "dead"."""
        try:
            entries = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            if not refs.is_container_id(entry):
                continue
            directory = self.container_dir(entry)
            state, damage = _read_state(directory)
            if state is None:
                if damage:
                    state = ContainerState(status="dead")
                elif os.path.isdir(directory):
                    state = ContainerState()  # not started yet
                else:
                    continue  # removed while we listed
            _reconcile_state(state)
            found.append(state.status)
        return found

    def lookup(self, ref: str) -> ContainerRecord:
        """By full ID, name, or unique ID prefix, as Docker resolves container references."""
        refs.container_ref(ref)  # nothing that is neither a name nor hex goes further
        if refs.is_container_id(ref) and os.path.isdir(self.container_dir(ref)):
            return self.load(ref)
        owner = self._read_names().get(ref.lstrip("/"))
        if refs.is_container_id(owner) and os.path.isdir(self.container_dir(owner)):
            return self.load(owner)
        candidates: list[str] = []
        if refs.is_id_prefix(ref):
            with contextlib.suppress(FileNotFoundError):
                candidates = [e for e in os.listdir(self.directory) if refs.is_container_id(e) and e.startswith(ref)]
        if len(candidates) == 1:
            return self.load(candidates[0])
        if len(candidates) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise ContainerNotFound(f"No such container: {ref}")


_FIELD_NAMES: dict[type, frozenset[str]] = {}
_STR_FIELDS = ("name", "created", "image", "image_name", "working_dir", "user", "hostname", "stop_signal")


def _read_json_object(path: str) -> dict:
    with open(path, "rb") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _config_from(data: dict, container_id: str) -> ContainerConfig:
    """A ContainerConfig from config.json, with every field of the type the engine relies on."""
    if data.get("id") != container_id:
        raise ValueError(f"it names another container ({data.get('id')!r})")
    data = dict(data)
    host = data.get("host_config")
    if host is not None and not isinstance(host, dict):
        raise TypeError("host_config is not an object")
    data["host_config"] = HostConfig.from_dict(_known_nested(host or {}))
    config = ContainerConfig(**_known(ContainerConfig, data))
    bad = [n for n in _STR_FIELDS if not isinstance(getattr(config, n), str)]
    if not _str_list(config.env) or not all(v is None or _str_list(v) for v in (config.entrypoint, config.cmd)):
        bad.append("env/entrypoint/cmd")
    if not isinstance(config.labels, dict) or not all(isinstance(v, str) for v in config.labels.values()):
        bad.append("labels")
    if not isinstance(config.host_config.network_mode, str):
        bad.append("host_config.network_mode")
    if bad:
        raise TypeError(f"wrong type for {', '.join(bad)}")
    if config.name:
        refs.container_name(config.name)
    return config


def _str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _known_nested(host: dict) -> dict:
    """Drop keys a newer version added inside HostConfig's nested records (mounts, ulimits, restart policy)."""
    host = dict(host)
    if isinstance(host.get("mounts"), list):
        host["mounts"] = [_known(Mount, m) if isinstance(m, dict) else m for m in host["mounts"]]
    if isinstance(host.get("ulimits"), list):
        host["ulimits"] = [_known(Ulimit, u) if isinstance(u, dict) else u for u in host["ulimits"]]
    if isinstance(host.get("restart_policy"), dict):
        host["restart_policy"] = _known(RestartPolicy, host["restart_policy"])
    return host


def _read_state(directory: str) -> tuple[ContainerState | None, str]:
    """A container's state file: (state, ""); (None, "") when there is none (never started, or the container
    is gone); (None, why) when it cannot be read as a state."""
    try:
        return _state_from(_read_json_object(os.path.join(directory, "state.json"))), ""
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError, TypeError) as exc:
        return None, f"state.json: {exc}"


def _state_from(data: dict) -> ContainerState:
    state = ContainerState(**_known(ContainerState, data))
    ints = ("pid", "pid_start_time", "exit_code", "restart_count", "monitor_pid", "monitor_start_time")
    if state.status not in _STATUSES or not all(isinstance(getattr(state, n), int) for n in ints) \
            or not all(isinstance(getattr(state, n), str) for n in ("started_at", "finished_at", "error")) \
            or not isinstance(state.network_settings, dict):
        raise TypeError("wrong type or value for a state field")
    return state


def _known(cls, data: dict) -> dict:
    """Keys this version knows (records written by newer versions may hold more)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:  # computed once per class: `ps` loads every record
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return {k: v for k, v in data.items() if k in names}


def process_alive(pid: int, start_time: int) -> bool:
    """``pid`` is still the process that started at ``start_time`` and has not exited (zombies have)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == start_time


def monitor_alive(state: ContainerState) -> bool:
    return process_alive(state.monitor_pid, state.monitor_start_time)


def reconcile(record: ContainerRecord) -> ContainerRecord:
    """How a record looks once crashes are accounted for (in memory only; the service persists it).

    While the container's monitor lives, the monitor owns the state and it is trusted as written. Once the
    monitor is gone (crash, reboot), a container whose process is gone too shows as exited with code 255
    (nobody saw its real status: Docker's code for that case) and keeps ``resources_held`` so the next
    command releases them; a container still running without its monitor keeps showing running.
    """
    record.reconciled = _reconcile_state(record.state) or record.reconciled
    return record


def _reconcile_state(state: ContainerState) -> bool:
    """``reconcile`` on the state alone; True when it changed it."""
    if not state.running or monitor_alive(state):
        return False
    if state.status == "running" or state.status == "paused":
        if process_alive(state.pid, state.pid_start_time):
            return False
        state.exit_code = 255
        state.finished_at = state.finished_at if state.finished_at > state.started_at else _now()
    state.status = "exited"
    state.pid = 0
    state.pid_start_time = 0
    return True


def _now() -> str:
    from ..timefmt import utc_now_rfc3339

    return utc_now_rfc3339()
