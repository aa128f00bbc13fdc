"""Engine configuration (a JSON file, like Docker's daemon.json) and the layout of the engine root."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field

from .errors import InvalidArgument
from .events import DEFAULT_MAX_BYTES as DEFAULT_EVENTS_MAX_BYTES
from .fsutil import STATE_DIR_MODE, make_dir

DEFAULT_ROOT = "/var/lib/pycontainer"
DEFAULT_CONFIG = "/etc/pycontainer/engine.json"
ROOT_ENV = "PYCONTAINER_ROOT"
CONFIG_ENV = "PYCONTAINER_CONFIG"


@dataclass
class EngineConfig:
    """What the engine config file may set. Keys use underscores; Docker's dashed spellings are accepted."""

    root: str = DEFAULT_ROOT
    # Mirrors for docker.io, tried in order before the upstream (Docker's "registry-mirrors").
    registry_mirrors: list[str] = field(default_factory=list)
    # Registries that may be reached over plain HTTP (loopback always may, as with Docker).
    insecure_registries: list[str] = field(default_factory=list)
    # Registries never contacted (as podman's registries.conf "blocked"); docker.io mirrors still are.
    # Air-gapped hosts, and the tests, set ["docker.io"] so nothing ever leaves for Docker Hub.
    blocked_registries: list[str] = field(default_factory=list)
    # Registry credentials (Docker's config.json "auths" format, 0600); "" means <root>/auth.json.
    # The REGISTRY_AUTH_FILE environment variable (as podman's) overrides both.
    auth_file: str = ""
    # Layers downloaded at once by one pull (Docker's max-concurrent-downloads).
    max_concurrent_downloads: int = 3
    # Bytes one layer may expand to when unpacked (tar stream, and file content with sparse holes written
    # dense); a blob also may not expand more than 1100:1 past 1 GiB. Docker and containers/storage have no
    # such bound: a few KB of sparse tar or zstd would otherwise fill the disk.
    max_layer_size: int = 64 << 30
    # The events journal's bounds: past the size it rotates (one older generation kept); events older than
    # the age (seconds; 0 = no age bound) are dropped.
    events_max_size: int = DEFAULT_EVENTS_MAX_BYTES
    events_max_age: int = 0
    # The engine's own log: one line per action, every error with context (the logging role sets these).
    log_level: str = "info"                          # debug | info | warn | error
    log_file: str = "/var/log/pycontainer/engine.log"  # "" turns the file log off
    log_format: str = "text"                         # text (logfmt, like dockerd) | json
    # Defaults for containers that do not choose (Docker's daemon.json log-driver / log-opts).
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    # Parent cgroup of every container (Docker's cgroup-parent), under each hierarchy's root. The default
    # belongs to the engine (created on demand, removed when empty); a configured one is never removed.
    cgroup_parent: str = "pycontainer"
    # Networking: the default bridge network, made on first use (Docker's docker0 / 172.17.0.0/16 avoided so
    # both engines can share a host); the pool user networks take their /24s from; the engine's own nftables
    # table (family ip), which holds every rule the engine writes. "" = per root (``network_names``): several
    # roots on one host never share a bridge, a subnet or a table.
    bridge_name: str = ""
    bridge_subnet: str = ""
    network_pool: str = "10.100.0.0/16"
    nft_table: str = ""
    config_path: str | None = None

    @property
    def paths(self) -> EnginePaths:
        return EnginePaths(self.root)


@dataclass(frozen=True)
class EnginePaths:
    """Where each store keeps its state under the engine root."""

    root: str

    @property
    def images(self) -> str:
        return os.path.join(self.root, "images")

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def run(self) -> str:
        return os.path.join(self.root, "run")

    def state_dirs(self) -> list[str]:
        """Every directory of the layout an engine of any version made (the root first)."""
        images = self.images
        top = ("volumes", "network", "events", "lib")
        return [self.root, images, *(os.path.join(images, d) for d in ("blobs", "layers", "tmp")),
                self.containers, self.run, *(os.path.join(self.root, d) for d in top)]

    def secure(self) -> None:
        """Make the root (if missing) and keep every state directory root-only (0700), whatever the umask.

        Unpacked layers hold setuid binaries and device nodes, volumes hold what containers made: a host
        user who can traverse to them gets root (CVE-2021-41091). Nothing needs another user to traverse:
        the engine, the monitor, exec and the connection plugin run as root, and overlay lowerdirs, binds
        and volumes are resolved by root before a container drops its privileges. So 0700, not Docker's
        0710 (its group bit serves user-namespace remapping, which this engine does not do). Roots made by
        older versions (0755/0711 layers, 0701 volumes) are tightened here, at every open: a few stats.
        A caller that may not change the root (not root) is left to fail on its first real access.
        """
        try:
            os.makedirs(os.path.dirname(self.root), exist_ok=True)
            make_dir(self.root, STATE_DIR_MODE)
        except FileExistsError:
            pass
        except PermissionError:
            return
        for path in self.state_dirs():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError):
                st = os.stat(path) if path == self.root else os.lstat(path)  # the root may be a symlink
                if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != STATE_DIR_MODE:
                    os.chmod(path, STATE_DIR_MODE)


# What the default root (/var/lib/pycontainer) has always used: existing hosts keep their bridge and rules.
DEFAULT_BRIDGE_NAME = "pycontainer0"
DEFAULT_BRIDGE_SUBNET = "10.99.0.0/16"
DEFAULT_NFT_TABLE = "pycontainer"


@dataclass(frozen=True)
class NetworkNames:
    """The default bridge, its subnet and the nftables table one engine root uses."""

    bridge_name: str
    bridge_subnet: str      # "" = a /24 of network_pool, chosen and claimed host-wide at first use
    nft_table: str


def network_names(config: EngineConfig) -> NetworkNames:
    """Configured values win; else the default root keeps the historic names and any other root derives its
    own from the digest of its real path (a bridge name fits IFNAMSIZ: at most 15 characters). No I/O."""
    root = os.path.realpath(config.root)
    if root == DEFAULT_ROOT:
        bridge, subnet, table = DEFAULT_BRIDGE_NAME, DEFAULT_BRIDGE_SUBNET, DEFAULT_NFT_TABLE
    else:
        digest = hashlib.sha256(root.encode()).hexdigest()[:8]
        bridge, subnet, table = f"pyc-{digest}", "", f"pycontainer_{digest}"
    return NetworkNames(config.bridge_name or bridge, config.bridge_subnet or subnet, config.nft_table or table)


# JSON types each annotation accepts; a new setting needs only its field above (with a default).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "bool": (bool,), "list[str]": (list,), "dict[str, str]": (dict,),
    "str | None": (str, type(None)), "int | None": (int, type(None)),
}


def _validated(data: dict, path: str) -> dict:
    fields = {f.name: f for f in dataclasses.fields(EngineConfig) if f.name != "config_path"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidArgument(f"engine config file {path}: unknown keys {', '.join(unknown)}")
    for key, value in data.items():
        annotation = str(fields[key].type)
        allowed = _JSON_TYPES.get(annotation, (object,))
        ok = isinstance(value, allowed) and not (bool not in allowed and isinstance(value, bool) and int in allowed)
        if ok and annotation == "list[str]":
            ok = all(isinstance(v, str) for v in value)
        if ok and annotation == "dict[str, str]":
            ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        if not ok:
            raise InvalidArgument(f"engine config file {path}: {key} must be of type {annotation}")
    return data


def load_config(config_path: str | None = None, root: str | None = None) -> EngineConfig:
    """Load the config: explicit arguments win over environment variables, which win over defaults.

    A missing file at the default location is fine (all defaults); a missing file that the user named,
    or a malformed one, is an error.
    """
    explicit = config_path or os.environ.get(CONFIG_ENV)
    path = explicit or DEFAULT_CONFIG
    data: dict = {}
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        if explicit:
            raise InvalidArgument(f"engine config file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read engine config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"engine config file {path}: expected a JSON object")
    data = _validated({k.replace("-", "_"): v for k, v in data.items()}, path)
    data["root"] = os.path.abspath(root or os.environ.get(ROOT_ENV) or data.get("root") or DEFAULT_ROOT)
    return EngineConfig(**data, config_path=path if os.path.exists(path) else None)
