"""Engine configuration (a JSON file, like Docker's daemon.json) and the layout of the engine root."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .errors import InvalidArgument

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


_KNOWN_KEYS = {"registry_mirrors", "insecure_registries", "blocked_registries", "root"}


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
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise InvalidArgument(f"engine config file {path}: unknown keys {', '.join(unknown)}")
    for key in ("registry_mirrors", "insecure_registries", "blocked_registries"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"engine config file {path}: {key} must be a list of strings")
    chosen_root = root or os.environ.get(ROOT_ENV) or data.get("root") or DEFAULT_ROOT
    return EngineConfig(
        root=os.path.abspath(chosen_root),
        registry_mirrors=list(data.get("registry_mirrors", [])),
        insecure_registries=list(data.get("insecure_registries", [])),
        blocked_registries=list(data.get("blocked_registries", [])),
        config_path=path if os.path.exists(path) else None,
    )
