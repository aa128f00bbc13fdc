"""What every module shares: the engine options, the dependency check and the one error mapping.

Engine errors become ``fail_json`` here and nowhere else; anything unexpected is reported in one
message (with the traceback in the ``exception`` field Ansible shows on -vvv), never as a crash.
"""

from __future__ import annotations

import importlib.util
import traceback
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ..engine import Engine
from ..errors import EngineError, MissingLibrary

# What to look for on the target for each library a module requires: the engine's generated cffi modules
# need only cffi's backend extension (Debian ships it alone as python3-cffi-backend), not the cffi package.
_IMPORT_NAMES = {"cffi": "_cffi_backend"}

ENGINE_OPTIONS: dict[str, dict[str, Any]] = {
    "root": {"type": "path"},
    "config": {"type": "path"},
}


def engine_argument_spec(**options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**ENGINE_OPTIONS, **options}


def filter_items(filters: dict[str, Any] | None) -> list[str]:
    """community.docker's filter dicts (``{label: [a, b], status: running}``) as CLI ``key=value`` items."""
    items = []
    for key, value in (filters or {}).items():
        for one in value if isinstance(value, list) else [value]:
            items.append(f"{key}={one}")
    return items


def run_module(module: AnsibleModule, action: Callable[[Engine], dict[str, Any]],
               requires: tuple[str, ...] = ()) -> None:
    """Check ``requires`` (libraries every run of the module needs), build the engine, run ``action`` and
    exit with its result. A library only some runs need (pyroute2 for bridge networks, zstandard for zstd
    layers) is reported the same way when the engine finds it missing (``MissingLibrary``)."""
    for name in requires:
        if importlib.util.find_spec(_IMPORT_NAMES.get(name, name)) is None:
            module.fail_json(msg=missing_required_lib(name))
    engine = None
    try:
        engine = Engine.from_options(root=module.params.get("root"), config_path=module.params.get("config"))
        _register_secrets(engine, module)
        result = action(engine)
    except MissingLibrary as exc:
        if exc.library:
            module.fail_json(msg=missing_required_lib(exc.library, reason=f"for {exc.purpose}"))
        module.fail_json(msg=str(exc))
    except EngineError as exc:
        if engine is not None:
            engine.log.error(str(exc), module=module._name, error=type(exc).__name__)
        module.fail_json(msg=str(exc), **getattr(exc, "details", {}))
    except Exception as exc:  # a module reports, it never crashes
        if engine is not None:
            engine.log.error(f"internal error: {exc}", module=module._name, error=type(exc).__name__)
        module.fail_json(msg=f"internal error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)


def _register_secrets(engine: Engine, module: AnsibleModule) -> None:
    """What the engine log must never hold: the task's no_log values (a login password) and, as Docker never
    logs a container's environment, the values of ``env``."""
    engine.log.add_secret(*(str(v) for v in getattr(module, "no_log_values", ()) if v))
    env = module.params.get("env")
    if isinstance(env, dict):
        engine.log.add_env([f"{key}={value}" for key, value in env.items() if value is not None])
    elif isinstance(env, list):
        engine.log.add_env([str(item) for item in env])


def run_host_module(module: AnsibleModule, action: Callable[[], dict[str, Any]]) -> None:
    """``run_module`` for modules that configure the host rather than call the engine (no Engine built:
    the engine config they edit may not exist yet); the same one error mapping."""
    try:
        result = action()
    except EngineError as exc:
        module.fail_json(msg=str(exc), **getattr(exc, "details", {}))
    except OSError as exc:  # a kernel file refused a value, a directory could not be made
        module.fail_json(msg=f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except Exception as exc:  # a module reports, it never crashes
        module.fail_json(msg=f"internal error: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)
