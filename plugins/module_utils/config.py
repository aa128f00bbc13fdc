"""Engine configuration (a JSON file, like Docker's daemon.json) and the layout of the engine root."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from .errors import InvalidArgument
from .events import DEFAULT_MAX_BYTES as DEFAULT_EVENTS_MAX_BYTES

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
    # table (family ip), which holds every rule the engine writes.
    bridge_name: str = "pycontainer0"
    bridge_subnet: str = "10.99.0.0/16"
    network_pool: str = "10.100.0.0/16"
    nft_table: str = "pycontainer"
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
