"""Volumes: named and anonymous ``local`` volumes, and the resolution of a container's mounts.

Layout under ``<root>/volumes`` (Docker's, so ``Mountpoint`` reads the same)::

    .lock                         flock: creations, removals, references and prunes serialise on it
    <name>/volume.json            VolumeRecord (name, driver, labels, options, created)
    <name>/_data/                 the content, bind-mounted into containers
    <name>/refs/<container-id>    one empty file per container that mounts the volume

Crash safety: a volume appears by renaming a complete ``.creating-*`` directory into place, and disappears by
renaming it to ``.removing-*`` before deleting; leftovers of either are swept under the lock. A reference is
live only while ``<root>/containers/<id>`` exists, so a container removed by a crashed command (whose
directory the container store renames away first) never pins a volume.

Containers: ``prepare_mounts`` (at create) turns ``HostConfig.mounts`` plus the image's ``VOLUME``s into the
container's mount points (``<container dir>/mounts.json``, Docker's ``Mounts`` shape), creating named volumes
on first use and anonymous ones; ``mount_specs`` gives the launcher host paths; ``release`` (at rm) drops the
references and, with ``remove_anonymous`` (``rm -v``, ``--rm``), the container's anonymous volumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, InvalidArgument, NotFound, UnsupportedError
from ..event_filters import label_matches
from ..fsutil import atomic_write_json, durable_rename, ensure_dir, locked, read_json
from ..records.hostconfig import Mount
from ..treesize import tree_size

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..records.containers import ContainerRecord
    from .spec import MountSpec

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")  # \Z: "$" would take a trailing newline
MOUNTS_FILE = "mounts.json"
# Docker's defaults for tmpfs mounts (--tmpfs and --mount type=tmpfs).
TMPFS_DEFAULT_OPTIONS = ("nosuid", "nodev", "noexec")
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime",
                "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "sync", "async",
                "dirsync", "mand", "nomand"}
_TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol"}
_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


class VolumeNotFound(NotFound):
    pass


@dataclass
class VolumeRecord:
    name: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    mountpoint: str = ""

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels


def inspect_volume(volume: VolumeRecord) -> dict[str, Any]:
    """`docker volume inspect` of a VolumeRecord."""
    return {
        "CreatedAt": volume.created_at,
        "Driver": volume.driver,
        "Labels": dict(volume.labels) or None,
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Options": dict(volume.options) or None,
        "Scope": "local",
    }


def validate_name(name: str) -> None:
    """Docker's rules for a local volume name (same wording)."""
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')
    if len(name) < 2:
        raise InvalidArgument(
            f"create {name}: volume name is too short, names should be at least two alphanumeric characters")


# --- parsing what users write (CLI flags, module options) ------------------------------------------------


def _container_path(target: str, what: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount config: {what} {target!r}: the mount target must be an absolute path")
    normal = os.path.normpath(target)
    normal = "/" + normal.lstrip("/")
    if normal == "/":
        raise InvalidArgument("invalid mount config: destination can't be '/'")
    return normal


def parse_volume_flag(text: str) -> Mount:
    """``-v`` / ``--volume``: ``[SOURCE:]TARGET[:OPTIONS]``; SOURCE a host path (bind) or a volume name."""
    parts = text.split(":")
    if len(parts) > 3 or not text or any(p == "" for p in parts):
        raise InvalidArgument(f"invalid volume specification: '{text}'")
    options: list[str] = []
    if len(parts) == 3:
        source, target, options = parts[0], parts[1], parts[2].split(",")
    elif len(parts) == 2 and parts[1].startswith("/"):
        source, target = parts
    elif len(parts) == 2:
        source, target, options = "", parts[0], parts[1].split(",")
    else:
        source, target = "", parts[0]
    target = _container_path(target, "volume")
    read_only = False
    opts: dict[str, str] = {"origin": "volume-flag"}
    for opt in options:
        if opt in ("ro", "rw"):
            read_only = opt == "ro"
        elif opt in _PROPAGATIONS:
            opts["propagation"] = opt
        elif opt == "nocopy":
            opts["nocopy"] = "true"
        elif opt in ("z", "Z", "consistent", "cached", "delegated"):
            continue  # SELinux relabel / macOS hints: meaningless here, accepted as Docker does
        else:
            raise InvalidArgument(f"invalid mode: {opt}")
    if source.startswith(("/", ".", "~")):
        source = os.path.abspath(os.path.expanduser(source))
        return Mount("bind", source, target, read_only, opts)
    if source:
        validate_name(source)
    return Mount("volume", source, target, read_only, opts)


def volume_flag_text(mount: Mount) -> str:
    """The ``-v`` text of a Mount parsed from one (Docker's HostConfig.Binds entry)."""
    options = [o for o in ("ro" if mount.read_only else "", mount.options.get("propagation", ""),
                           "nocopy" if mount.options.get("nocopy") == "true" else "") if o]
    return ":".join([p for p in (mount.source, mount.target) if p] + ([",".join(options)] if options else []))


def _bool_option(key: str, value: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}")


def parse_mount_flag(text: str) -> Mount:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,…]`` (Docker's CSV form)."""
    fields: dict[str, str] = {}
    flags: dict[str, bool] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.lower()
        if key in ("readonly", "ro", "volume-nocopy") and (not sep or value.lower() in ("1", "true", "0", "false")):
            flags[key] = _bool_option(key, value)
        elif not sep:
            raise InvalidArgument(f"invalid field '{item}' must be a key=value pair")
        else:
            fields[key] = value
    kind = fields.pop("type", "volume")
    source = fields.pop("source", fields.pop("src", ""))
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    if not target:
        raise InvalidArgument("invalid argument for \"--mount\" flag: target is required")
    target = _container_path(target, "mount")
    read_only = flags.pop("readonly", False) or flags.pop("ro", False)
    opts: dict[str, str] = {"origin": "mount-flag"}
    if kind == "bind":
        if not source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise InvalidArgument(f'invalid mount config for type "bind": invalid mount path: \'{source}\' '
                                  "mount path must be absolute")
        if "bind-propagation" in fields:
            prop = fields.pop("bind-propagation")
            if prop not in _PROPAGATIONS:
                raise InvalidArgument(f"invalid bind-propagation value: {prop}")
            opts["propagation"] = prop
        if "bind-recursive" in fields:
            value = fields.pop("bind-recursive")
            if value not in ("enabled", "disabled", "writable", "readonly"):
                raise InvalidArgument(f"invalid bind-recursive value: {value}")
            opts["bind-recursive"] = value
        source = os.path.normpath(source)
    elif kind == "volume":
        if source:
            validate_name(source)
        if flags.pop("volume-nocopy", False):
            opts["nocopy"] = "true"
        for key in [k for k in fields if k.startswith("volume-")]:
            value = fields.pop(key)
            if key == "volume-driver" and value != "local":
                raise UnsupportedError(f"volume driver {value!r} is not supported (only local)")
            if key == "volume-label":
                name, _sep, val = value.partition("=")
                opts[f"label.{name}"] = val
    elif kind == "tmpfs":
        if source:
            raise InvalidArgument('invalid mount config for type "tmpfs": field Source must be empty')
        if "tmpfs-size" in fields:
            opts["size"] = str(parse_size(fields.pop("tmpfs-size")))
        if "tmpfs-mode" in fields:
            mode = fields.pop("tmpfs-mode")
            try:
                opts["mode"] = format(int(mode, 8), "o")
            except ValueError:
                raise InvalidArgument(f"invalid tmpfs-mode: {mode}") from None
    else:
        raise InvalidArgument(f"invalid mount type: {kind!r} (supported: bind, volume, tmpfs)")
    if fields or flags:
        raise InvalidArgument(f"unexpected key '{next(iter([*fields, *flags]))}' in '{text}'")
    return Mount(kind, source, target, read_only, opts)


def parse_tmpfs_flag(text: str) -> Mount:
    """``--tmpfs /path[:opt,opt=value]`` (mount(8) tmpfs options)."""
    target, _sep, option_text = text.partition(":")
    target = _container_path(target, "tmpfs")
    opts: dict[str, str] = {"origin": "tmpfs-flag"}
    read_only = False
    flags: list[str] = []
    for opt in filter(None, option_text.split(",")):
        key, sep, value = opt.partition("=")
        if not sep and key in _TMPFS_FLAGS:
            if key in ("ro", "rw"):
                read_only = key == "ro"
            else:
                flags.append(key)
        elif sep and key in _TMPFS_DATA:
            opts[key] = str(parse_size(value)) if key == "size" else value
        else:
            raise InvalidArgument(f"invalid tmpfs option {opt!r} for {target}")
    if flags:
        opts["flags"] = ",".join(flags)
    return Mount("tmpfs", "", target, read_only, opts)


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Docker's RAMInBytes: ``64m``, ``1g``, ``65536k``, bare bytes (binary multiples, as Docker)."""
    match = _SIZE_RE.match(text.strip())
    if not match:
        raise InvalidArgument(f"invalid size: '{text}'")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgtp".index(unit or " "))


def tmpfs_options(mount: Mount) -> list[str]:
    """mount(8)-style options for a tmpfs Mount: Docker's defaults, then the user's flags and data."""
    flags = [*TMPFS_DEFAULT_OPTIONS, *filter(None, mount.options.get("flags", "").split(","))]
    data = [f"{k}={mount.options[k]}" for k in sorted(_TMPFS_DATA) if k in mount.options]
    return [*flags, *(["ro"] if mount.read_only else []), *data]


# --- the service ---------------------------------------------------------------------------------------


class VolumeService:
    def __init__(self, config: EngineConfig, events: EventJournal) -> None:
        self.config = config
        self.events = events
        self.directory = os.path.join(config.root, "volumes")
        self.containers_dir = config.paths.containers

    # -- paths and locking ------------------------------------------------------------------------------
    def _dir(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def data_path(self, name: str) -> str:
        return os.path.join(self.directory, name, "_data")

    @contextlib.contextmanager
    def _lock(self):
        ensure_dir(self.directory, 0o700)  # root's alone: volumes hold what containers made (setuid, devices)
        with locked(os.path.join(self.directory, ".lock")) as fd:
            self._sweep()
            yield fd

    def _sweep(self) -> None:
        """Finish what crashed commands left: half-created and half-removed volume directories."""
        for entry in os.listdir(self.directory):
            if entry.startswith((".creating-", ".removing-")):
                shutil.rmtree(os.path.join(self.directory, entry), ignore_errors=True)

    # -- records ----------------------------------------------------------------------------------------
    def _load(self, name: str) -> VolumeRecord | None:
        if not _NAME_RE.match(name):
            return None
        data = read_json(os.path.join(self._dir(name), "volume.json"))
        if not isinstance(data, dict):
            return None
        known = {f.name for f in dataclasses.fields(VolumeRecord)}
        record = VolumeRecord(**{k: v for k, v in data.items() if k in known})
        record.mountpoint = self.data_path(record.name)
        return record

    def inspect(self, name: str) -> VolumeRecord:
        record = self._load(name)
        if record is None:
            raise VolumeNotFound(f"get {name}: no such volume")
        return record

    def exists(self, name: str) -> bool:
        return self._load(name) is not None

    def list(self, filters: dict[str, list[str]] | None = None) -> list[VolumeRecord]:
        """Volumes matching Docker's ``volume ls`` filters (values of a key OR'ed, keys AND'ed), by name."""
        try:
            names = [e for e in os.listdir(self.directory) if not e.startswith(".")]
        except FileNotFoundError:
            names = []
        records = [r for r in (self._load(n) for n in names) if r is not None]
        matcher = _VolumeFilter(filters or {}, self)
        return sorted((r for r in records if matcher(r)), key=lambda r: _natural_key(r.name))

    def usage(self) -> list[dict[str, Any]]:
        """`system df`'s volumes (Docker's shape): the inspect fields plus ``UsageData`` {Size, RefCount}."""
        return [{**inspect_volume(v),
                 "UsageData": {"Size": tree_size(v.mountpoint), "RefCount": len(self.users(v.name))}}
                for v in self.list()]

    # -- create / remove / prune ------------------------------------------------------------------------
    def create(self, name: str | None = None, driver: str = "local", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None) -> VolumeRecord:
        """``volume create``: an existing volume of that name is returned as it is (Docker's rule)."""
        if driver not in ("", "local"):
            raise UnsupportedError(f"create {name}: volume driver {driver!r} is not supported (only local)")
        if options:
            raise UnsupportedError(f"create {name or ''}: local driver options are not supported "
                                   f"({', '.join(sorted(options))})")
        if name:
            validate_name(name)
        with self._lock():
            record, _created = self._create_locked(name, labels or {})
        return record

    def _create_locked(self, name: str | None, labels: dict[str, str]) -> tuple[VolumeRecord, bool]:
        if name:
            validate_name(name)  # also for API callers: a name is a path component under the engine root
            existing = self._load(name)
            if existing is not None:
                return existing, False
        else:
            name = secrets.token_hex(32)
            labels = {**labels, ANONYMOUS_LABEL: ""}
        from ..timefmt import utc_now_rfc3339

        record = VolumeRecord(name=name, labels=dict(labels), created_at=utc_now_rfc3339()[:19] + "Z")
        staging = os.path.join(self.directory, f".creating-{secrets.token_hex(8)}")
        os.mkdir(staging, 0o700)
        os.mkdir(os.path.join(staging, "_data"), 0o755)
        os.chmod(os.path.join(staging, "_data"), 0o755)  # what the container sees: not the caller's umask
        os.mkdir(os.path.join(staging, "refs"), 0o700)
        atomic_write_json(os.path.join(staging, "volume.json"),
                          {k: v for k, v in dataclasses.asdict(record).items() if k != "mountpoint"})
        try:
            durable_rename(staging, self._dir(name))  # staging was synced with volume.json
        except OSError as exc:  # a leftover directory without volume.json (crash before this design)
            shutil.rmtree(staging, ignore_errors=True)
            raise Conflict(f"create {name}: cannot create the volume directory: {exc.strerror}") from None
        record.mountpoint = self.data_path(name)
        self.events.record("volume", "create", name, {"driver": record.driver})
        return record, True

    def users(self, name: str) -> list[str]:
        """IDs of the containers (any state) that mount the volume; stale references are ignored."""
        try:
            refs = os.listdir(os.path.join(self._dir(name), "refs"))
        except FileNotFoundError:
            return []
        return sorted(r for r in refs if os.path.isdir(os.path.join(self.containers_dir, r)))

    def remove(self, name: str, force: bool = False) -> bool:
        """``volume rm``: refused while a container uses it; ``force`` ignores a missing volume.

        Returns False when ``force`` skipped a missing volume."""
        with self._lock():
            record = self._load(name)
            if record is None:
                if force:
                    return False
                raise VolumeNotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._destroy_locked(record)
        return True

    def _destroy_locked(self, record: VolumeRecord) -> int:
        size = tree_size(self.data_path(record.name))
        doomed = os.path.join(self.directory, f".removing-{secrets.token_hex(8)}")
        os.rename(self._dir(record.name), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        self.events.record("volume", "destroy", record.name, {"driver": record.driver})
        return size

    def prune(self, all: bool = False, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """``volume prune``: unused anonymous volumes (every unused one with ``all``). (names, bytes)."""
        filters = dict(filters or {})
        if "all" in filters:
            all = all or any(_bool_option("all", v) for v in filters.pop("all"))
        unknown = set(filters) - {"label", "label!"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        matcher = _VolumeFilter(filters, self)
        deleted, reclaimed = [], 0
        with self._lock():
            for record in self.list():
                if (not all and not record.anonymous) or not matcher(record) or self.users(record.name):
                    continue
                reclaimed += self._destroy_locked(record)
                deleted.append(record.name)
        self.events.record("volume", "prune", "", {"reclaimed": reclaimed})
        return deleted, reclaimed

    # -- containers ---------------------------------------------------------------------------------------
    def prepare_mounts(self, record: ContainerRecord, image_config: dict[str, Any] | None) -> list[Mount]:
        """Resolve the container's mounts at create time; persist them as its mount points.

        Named volumes are created on first use, anonymous ones for ``-v /path``, ``--mount type=volume`` without
        source, and each image ``VOLUME`` no user mount covers. Returns the resolved mounts (volume sources
        are names, never empty). On failure nothing is left referenced.
        """
        requested = list(record.config.host_config.mounts)
        seen: set[str] = set()
        for mount in requested:
            target = _container_path(mount.target, mount.type)
            if target in seen:
                raise InvalidArgument(f"Duplicate mount point: {target}")
            seen.add(target)
        for path in sorted((image_config or {}).get("Volumes") or {}):
            target = "/" + os.path.normpath(path).lstrip("/")
            if target != "/" and target not in seen:
                requested.append(Mount("volume", "", target, False, {"origin": "image"}))
                seen.add(target)
        resolved: list[Mount] = []
        points: list[dict[str, Any]] = []
        with self._lock():
            try:
                for mount in requested:
                    mount = dataclasses.replace(mount, target=_container_path(mount.target, mount.type),
                                                options=dict(mount.options))
                    if mount.type == "bind":
                        _check_bind_source(mount)
                    elif mount.type == "volume":
                        labels = {k[len("label."):]: v for k, v in mount.options.items() if k.startswith("label.")}
                        volume, _created = self._create_locked(mount.source or None, labels)
                        mount.source = volume.name
                        ref = os.path.join(self._dir(volume.name), "refs", record.id)
                        os.close(os.open(ref, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
                    elif mount.type == "tmpfs":
                        tmpfs_options(mount)
                    else:
                        raise InvalidArgument(f"invalid mount type: {mount.type!r}")
                    resolved.append(mount)
                    points.append(self._mount_point(mount))
                atomic_write_json(os.path.join(record.directory, MOUNTS_FILE), points, mode=0o600)
            except BaseException:
                self._release_locked(record.id, resolved, remove_anonymous=True)
                raise
        return resolved

    def _mount_point(self, mount: Mount) -> dict[str, Any]:
        """Docker's MountPoint (inspect ``Mounts``), plus what the launcher needs (``CopyUp``, ``Options``)."""
        origin = mount.options.get("origin", "")
        point: dict[str, Any] = {"Type": mount.type}
        if mount.type == "volume":
            point.update(Name=mount.source, Source=self.data_path(mount.source), Driver="local",
                         Mode="z" if origin == "volume-flag" else "")
        else:
            point.update(Source=mount.source,
                         Mode=("ro" if mount.read_only else "") if origin == "volume-flag" else "")
        point.update(Destination=mount.target, RW=not mount.read_only,
                     Propagation=mount.options.get("propagation", "rprivate") if mount.type == "bind" else "")
        point["CopyUp"] = mount.type == "volume" and mount.options.get("nocopy") != "true"
        point["Options"] = tmpfs_options(mount) if mount.type == "tmpfs" else []
        if mount.type == "bind":
            point["Recursive"] = mount.options.get("bind-recursive", "enabled") != "disabled"
        return point

    def release(self, record: ContainerRecord, remove_anonymous: bool = False) -> list[str]:
        """Drop the container's references; with ``remove_anonymous`` also delete its anonymous volumes that
        no other container uses. Idempotent. Returns the names of the volumes removed."""
        if not os.path.isdir(self.directory):
            return []
        points = mount_points(record.directory)
        mounts = [Mount("volume", p["Name"], p["Destination"]) for p in points if p.get("Type") == "volume"]
        with self._lock():
            return self._release_locked(record.id, mounts, remove_anonymous)

    def _release_locked(self, container_id: str, mounts: list[Mount], remove_anonymous: bool) -> list[str]:
        removed = []
        for mount in mounts:
            if mount.type != "volume" or not mount.source:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._dir(mount.source), "refs", container_id))
            volume = self._load(mount.source)
            if remove_anonymous and volume is not None and volume.anonymous and not self.users(volume.name):
                self._destroy_locked(volume)
                removed.append(volume.name)
        return removed

    def mount_specs(self, record: ContainerRecord) -> list[MountSpec]:
        """What the launcher mounts, parents before children; volume sources as host paths."""
        from .spec import MountSpec

        specs = []
        for p in mount_points(record.directory):
            kind = p.get("Type")
            if kind == "volume":
                source = self.data_path(p["Name"])  # a missing one fails the start, in open_tree
                specs.append(MountSpec("bind", source, p["Destination"], read_only=not p["RW"],
                                       recursive=False, copy_up=bool(p.get("CopyUp"))))
            elif kind == "bind":
                specs.append(MountSpec("bind", p["Source"], p["Destination"], read_only=not p["RW"],
                                       recursive=bool(p.get("Recursive", True))))
            elif kind == "tmpfs":
                specs.append(MountSpec("tmpfs", "", p["Destination"], read_only=not p["RW"],
                                       options=list(p.get("Options") or [])))
        specs.sort(key=lambda s: s.target.rstrip("/").count("/"))
        return specs

    def record_mount_events(self, record: ContainerRecord, action: str) -> None:
        """Docker's ``mount`` (container start) / ``unmount`` (container stop) events, one per volume."""
        for p in mount_points(record.directory):
            if p.get("Type") != "volume":
                continue
            attributes = {"container": record.id, "driver": "local"}
            if action == "mount":
                attributes.update(destination=p["Destination"], propagation=p.get("Propagation", ""),
                                  **{"read/write": "true" if p["RW"] else "false"})
            self.events.record("volume", action, p["Name"], attributes)


def mount_points(container_dir: str) -> list[dict[str, Any]]:
    """A container's resolved mount points (empty for containers created without any)."""
    points = read_json(os.path.join(container_dir, MOUNTS_FILE), [])
    return points if isinstance(points, list) else []


def uses_volume(container_dir: str, value: str) -> bool:
    """``ps --filter volume=VALUE``: a mount of that volume name, bind source, or destination (as Docker)."""
    for p in mount_points(container_dir):
        if value in (p.get("Name"), p.get("Destination")) or (not p.get("Name") and value == p.get("Source")):
            return True
    return False


def _check_bind_source(mount: Mount) -> None:
    if not os.path.isabs(mount.source):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: '{mount.source}' "
                              "mount path must be absolute")
    if os.path.exists(mount.source):
        return
    if mount.options.get("origin") == "volume-flag":
        os.makedirs(mount.source, 0o755, exist_ok=True)  # Docker's -v creates a missing host directory
        return
    raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: {mount.source}')


class _VolumeFilter:
    KEYS = ("dangling", "name", "label", "label!", "driver")

    def __init__(self, filters: dict[str, list[str]], service: VolumeService) -> None:
        for key in filters:
            if key not in self.KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
        self.filters = filters
        self.service = service
        for value in filters.get("dangling", []):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")

    def __call__(self, record: VolumeRecord) -> bool:
        f = self.filters
        if "name" in f and not any(v in record.name for v in f["name"]):
            return False
        if "driver" in f and record.driver not in f["driver"]:
            return False
        if "label" in f and not all(label_matches(record.labels, v) for v in f["label"]):
            return False
        if "label!" in f and any(label_matches(record.labels, v) for v in f["label!"]):
            return False
        if "dangling" in f:
            wanted = {v.lower() in ("true", "1") for v in f["dangling"]}
            if (not self.service.users(record.name)) not in wanted:
                return False
        return True


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        out.setdefault(key, []).append(value)
    return out


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
