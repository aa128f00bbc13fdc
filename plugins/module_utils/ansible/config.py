"""The `pycontainer_config` module's logic: merge settings into the engine's JSON config file.

Keys are replaced one by one (other keys stay as they are, in the file's own spelling); the merged file is
checked with the engine's own rules (known keys, types, log driver options, log level and format) before it
is written, so a role can never leave a config the engine would refuse. The file is rewritten only when its
parsed content changes, so a hand-formatted file is not churned.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import Conflict, InvalidArgument


@dataclass
class ConfigChange:
    """What merging ``settings`` into the file at ``path`` gives."""

    path: str
    before: dict[str, Any]
    after: dict[str, Any]
    exists: bool
    changed_keys: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return not self.exists or self.before != self.after


def _read(path: str) -> tuple[dict[str, Any], bool]:
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}, False
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read engine config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"engine config file {path}: expected a JSON object")
    return data, True


def merge(path: str, settings: dict[str, Any]) -> ConfigChange:
    """``settings`` (underscore or dashed keys; None removes a key) merged over the file's content."""
    before, exists = _read(path)
    after = dict(before)
    changed = []
    for key, value in settings.items():
        canonical = key.replace("-", "_")
        # Docker's dashed spelling of the same key would shadow or duplicate it: one spelling stays.
        spellings = [k for k in after if k.replace("-", "_") == canonical]
        old = after[spellings[0]] if spellings else None
        for k in spellings:
            del after[k]
        if value is not None:
            after[canonical] = value
        if old != value or (value is not None and spellings not in ([], [canonical])):
            changed.append(canonical)
    validate(after, path)
    return ConfigChange(path=path, before=before, after=after, exists=exists, changed_keys=sorted(changed))


def validate(data: dict[str, Any], path: str) -> None:
    """The engine's own checks on a whole config (raises InvalidArgument with the engine's message)."""
    from ..config import _validated
    from ..engine_log import EngineLog
    from ..runtime.logs import LogConfig

    normalized = _validated({k.replace("-", "_"): v for k, v in data.items()}, path)
    EngineLog("", normalized.get("log_level", "info"), normalized.get("log_format", "text"))
    LogConfig.parse(normalized.get("log_driver", "json-file"), normalized.get("log_opts", {}))
    subnet = normalized.get("bridge_subnet")
    if subnet:
        try:
            ipaddress.IPv4Network(subnet, strict=False)
        except ValueError:
            raise InvalidArgument(
                f"engine config file {path}: bridge_subnet {subnet!r} is not an IPv4 subnet") from None
    parent = normalized.get("cgroup_parent")
    if parent is not None and (not parent.strip("/") or ".." in parent.split("/")):
        raise InvalidArgument(f"engine config file {path}: cgroup_parent {parent!r} is not a cgroup path")


def check_claims(data: dict[str, Any], changed_keys: list[str], root: str | None, path: str) -> None:
    """A bridge name, table or subnet this change sets that another engine root on this host already uses is a
    Conflict now, when the config is written, rather than at the first container's create. Only changed keys:
    a value already in the file was checked when it was written (and create checks every use again)."""
    from ..config import DEFAULT_ROOT, ROOT_ENV
    from ..network.claims import configured_conflict

    normalized = {k.replace("-", "_"): v for k, v in data.items()}
    root = root or os.environ.get(ROOT_ENV) or normalized.get("root") or DEFAULT_ROOT
    conflict = configured_conflict(root, {k: v for k, v in normalized.items() if k in changed_keys})
    if conflict:
        raise Conflict(f"engine config file {path}: {conflict}; engine root {os.path.realpath(root)} cannot use it")


def log_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The container log defaults as the engine reads them (sizes in bytes, -1 unlimited)."""
    from ..runtime.logs import LogConfig

    normalized = {k.replace("-", "_"): v for k, v in data.items()}
    return asdict(LogConfig.parse(normalized.get("log_driver", "json-file"), normalized.get("log_opts", {})))


def render(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def manage_config(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    from ..config import CONFIG_ENV, DEFAULT_CONFIG, load_config
    from ..fsutil import atomic_write_bytes

    path = params.get("config") or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    mode = int(str(params.get("mode") or "0644"), 8)
    change = merge(path, params.get("settings") or {})
    check_claims(change.after, change.changed_keys, params.get("root"), path)
    mode_changed = change.exists and (os.stat(path).st_mode & 0o7777) != mode
    actions = []
    if change.changed:
        actions.append(f"{'Updated' if change.exists else 'Created'} {path}"
                       + (f" ({', '.join(change.changed_keys)})" if change.changed_keys else ""))
    if mode_changed and not change.changed:
        actions.append(f"Set mode {mode:04o} on {path}")
    if not check_mode:
        if change.changed:
            os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
            atomic_write_bytes(path, render(change.after), mode)
        elif mode_changed:
            os.chmod(path, mode)
    result: dict[str, Any] = {
        "changed": change.changed or mode_changed,
        "actions": actions,
        "config": change.after,
        "changed_keys": change.changed_keys,
        "log_config": log_summary(change.after),
        "diff": {"before": change.before if change.exists else {}, "after": change.after,
                 "before_header": path, "after_header": path},
    }
    if not check_mode or not change.changed:
        # What the engine will use with this file (defaults filled in), as the other modules would load it.
        effective = load_config(path, params.get("root")) if os.path.exists(path) else None
        if effective is not None:
            result["engine_config"] = {k: v for k, v in asdict(effective).items() if k != "config_path"}
    return result
