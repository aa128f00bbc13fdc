"""The engine's code on a target: kept there once per version instead of travelling in every module's payload.

Ansible packs into each module's AnsiballZ payload every module_utils file the module imports, and finds them
by parsing each one on the controller at every task: for this engine (~120 files) that alone cost ~0.3 s a
task. So the modules import nothing of the engine statically. Their action plugin (``plugin_utils/
engine_action.py``) tells the module which version of the code it needs (``PYCONTAINER_ENGINE_CODE``, the
digest of the collection's module_utils); the module takes it from ``<code dir>/<digest>/`` on the target.
The first time a target lacks that version, the module answers ``pycontainer_engine_code_missing`` and the
action plugin sends the code once as a zip (``PYCONTAINER_ENGINE_ZIP``), which the module checks against the
digest and installs atomically. Where the code cannot be installed (a read-only /var/lib) the module runs it
from the shipped zip.

The code dir (``/var/lib/pycontainer-code`` for root, ``~/.local/share/pycontainer/code`` otherwise,
``PYCONTAINER_CODE_DIR`` to override) is a stable home for it: the monitor a module starts outlives the module
and imports from it. It holds code that runs as root, so it must belong to the user and be writable by no one
else; a module refuses to run code from anywhere else.

Standard library only, and small: every module payload carries it and compiles it (a payload holds no
bytecode). Where the code lives is ``code_home.py``; checking, installing and packing it is ``code_bundle.py``,
imported only when needed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import NoReturn

from .code_home import PACKAGE, CodeError, default_code_dir, installed

ENV_DIGEST = "PYCONTAINER_ENGINE_CODE"
ENV_ZIP = "PYCONTAINER_ENGINE_ZIP"
ENV_CODE_DIR = "PYCONTAINER_CODE_DIR"
# The module's answer when the target lacks the code: its value is the digest the action plugin must send.
MISSING_KEY = "pycontainer_engine_code_missing"

_DIGEST = re.compile(r"[0-9a-f]{64}")


def engine_modules(*names: str) -> tuple[ModuleType, ...]:
    """The engine modules ``names`` (relative to module_utils, e.g. ``ansible.glue``): imported as they are
    where the collection is installed, else from the target's copy of the code."""
    if importlib.util.find_spec(f"{PACKAGE}.engine") is None:  # a module payload: only this file travelled
        try:
            _attach(os.environ)
        except CodeError as exc:
            _exit_failed(str(exc))
    return tuple(importlib.import_module(f"{PACKAGE}.{name}") for name in names)


def _attach(environ: Mapping[str, str]) -> None:
    digest = environ.get(ENV_DIGEST, "")
    if not _DIGEST.fullmatch(digest):
        raise CodeError("pycontainer.engine modules get the engine's code through the collection's action "
                        "plugin, which did not run: call the module by its full name (pycontainer.engine.<module>)"
                        " or, with a bare name from a library path, add the collection's plugins/action to "
                        "action_plugins")
    shipped = environ.get(ENV_ZIP) or None
    code_dir = environ.get(ENV_CODE_DIR) or default_code_dir()
    try:
        tree = installed(code_dir, digest)
        if tree is None and shipped:
            from .code_bundle import install

            tree = install(shipped, digest, code_dir)
    except OSError:
        tree = None  # the code cannot be kept here (a read-only /var/lib?): run it from the shipped zip
    if tree is None:
        if not shipped:
            _exit_failed(f"this host lacks the engine's code version {digest[:12]}; the action plugin sends it",
                         **{MISSING_KEY: digest})
        from .code_bundle import check_zip

        check_zip(shipped, digest)
        tree = shipped  # zipimport reads it; a monitor started from it keeps a copy (supervisor.code_path)
    sys.path.insert(0, tree)
    # The payload's own packages (module_utils, ansible/) already exist: they also look in the code.
    for name, module in list(sys.modules.items()):
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and isinstance(getattr(module, "__path__", None), list):
            module.__path__.append(os.path.join(tree, *name.split(".")))
    # No importlib.invalidate_caches(): nothing cached knows these new paths, and it costs ~15 ms (it imports
    # importlib.metadata).


def _exit_failed(msg: str, **extra: str) -> NoReturn:
    """A module's failure, before there is an AnsibleModule to report it (its argument spec is in the code
    that is missing)."""
    sys.stdout.write(json.dumps({"failed": True, "msg": msg, **extra}) + "\n")
    sys.stdout.flush()
    raise SystemExit(1)
