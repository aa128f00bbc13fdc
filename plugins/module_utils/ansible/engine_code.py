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

Standard library only, and cheap to import: this is what every module payload carries.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import re
import stat
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import NoReturn

PACKAGE = "ansible_collections.pycontainer.engine.plugins.module_utils"
ENV_DIGEST = "PYCONTAINER_ENGINE_CODE"
ENV_ZIP = "PYCONTAINER_ENGINE_ZIP"
ENV_CODE_DIR = "PYCONTAINER_CODE_DIR"
# The module's answer when the target lacks the code: its value is the digest the action plugin must send.
MISSING_KEY = "pycontainer_engine_code_missing"

_PREFIX = PACKAGE.replace(".", "/") + "/"
# The packages above module_utils, empty as Ansible ships them, so that the code dir is importable on its own.
_PARENT_INITS = tuple(f"{'/'.join(PACKAGE.split('.')[:depth])}/__init__.py" for depth in range(1, 5))
_NAME = re.compile(re.escape(_PREFIX) + r"(?:[A-Za-z_][A-Za-z0-9_]*/)*[A-Za-z_][A-Za-z0-9_]*\.py")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MAX_FILES = 2000
_MAX_BYTES = 64 << 20


class CodeError(Exception):
    """The engine's code cannot be used on this target (the message says why)."""


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
            tree = install(shipped, digest, code_dir)
    except OSError:
        tree = None  # the code cannot be kept here (a read-only /var/lib?): run it from the shipped zip
    if tree is None:
        if not shipped:
            _exit_failed(f"this host lacks the engine's code version {digest[:12]}; the action plugin sends it",
                         **{MISSING_KEY: digest})
        check_zip(shipped, digest)
        tree = shipped  # zipimport reads it; a monitor started from it keeps a copy (supervisor.code_path)
    sys.path.insert(0, tree)
    # The payload's own packages (module_utils, ansible/) already exist: they also look in the code.
    for name, module in list(sys.modules.items()):
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and isinstance(getattr(module, "__path__", None), list):
            module.__path__.append(os.path.join(tree, *name.split(".")))
    importlib.invalidate_caches()


def default_code_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/pycontainer-code"
    return os.path.join(os.path.expanduser("~"), ".local", "share", "pycontainer", "code")


def installed(code_dir: str, digest: str) -> str | None:
    """``<code_dir>/<digest>`` when it is there; None when not. Raises CodeError when the code dir or the
    tree is not the user's own (code from it would run with the user's rights)."""
    _check_own_dir(code_dir, create=True)
    tree = os.path.join(code_dir, digest)
    try:
        _check_own_dir(tree, create=False)
    except FileNotFoundError:
        return None
    return tree


def _check_own_dir(path: str, create: bool) -> None:
    if create:
        with contextlib.suppress(FileExistsError):
            os.makedirs(path, mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise CodeError(f"refusing to run the engine's code from {path}: it must be a directory owned by uid "
                        f"{os.geteuid()} that no one else can write")


def code_files(module_utils_dir: str) -> list[tuple[str, bytes]]:
    """The engine's code as (name in the code tree, content), sorted: every .py under module_utils."""
    files = [(name, b"") for name in _PARENT_INITS]
    for dirpath, dirnames, filenames in os.walk(module_utils_dir):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
        rel = os.path.relpath(dirpath, module_utils_dir)
        for filename in filenames:
            if filename.endswith(".py"):
                with open(os.path.join(dirpath, filename), "rb") as f:
                    name = _PREFIX + (filename if rel == "." else f"{rel}/{filename}")
                    files.append((name.replace(os.sep, "/"), f.read()))
    return sorted(files)


def code_digest(files: list[tuple[str, bytes]]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, data in files:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def write_zip(files: list[tuple[str, bytes]], path: str) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)


def _zip_files(path: str) -> list[tuple[str, bytes]]:
    """The files of a shipped zip, every entry checked before anything is read: only the engine's own
    Python files by their expected names, regular files, no duplicates, bounded in number and size."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_FILES or sum(info.file_size for info in infos) > _MAX_BYTES:
                raise CodeError(f"the engine's code in {path} is larger than any engine")
            names = set()
            for info in infos:
                kind = stat.S_IFMT(info.external_attr >> 16)
                if (info.filename in names or kind not in (0, stat.S_IFREG)
                        or not (info.filename in _PARENT_INITS or _NAME.fullmatch(info.filename))):
                    raise CodeError(f"the engine's code in {path} holds an unexpected entry: {info.filename!r}")
                names.add(info.filename)
            return sorted((info.filename, archive.read(info)) for info in infos)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CodeError(f"cannot read the engine's code from {path}: {exc}") from exc


def check_zip(path: str, digest: str) -> list[tuple[str, bytes]]:
    files = _zip_files(path)
    if code_digest(files) != digest:
        raise CodeError(f"the engine's code in {path} does not match version {digest[:12]}: damaged in transfer?")
    return files


def install(zip_path: str, digest: str, code_dir: str) -> str:
    """Check the shipped zip against ``digest`` and make it ``<code_dir>/<digest>``: written whole in a
    temporary directory, flushed to disk, then renamed into place (a concurrent install of the same version
    wins or loses the rename; both end with the same tree)."""
    import py_compile
    import shutil
    import tempfile

    files = check_zip(zip_path, digest)
    tree = os.path.join(code_dir, digest)
    tmp = tempfile.mkdtemp(prefix=f".{digest[:16]}-", dir=code_dir)
    try:
        for name, data in files:
            dest = os.path.join(tmp, *name.split("/"))
            os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # Bytecode now, for this interpreter: the module that installs may not write it (PYTHONDONTWRITEBYTECODE)
            py_compile.compile(dest, doraise=True)
        os.chmod(tmp, 0o755)
        os.sync()  # a power cut must not leave a complete-looking tree of empty files
        os.rename(tmp, tree)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if installed(code_dir, digest) is None:
            raise
    return tree


def _exit_failed(msg: str, **extra: str) -> NoReturn:
    """A module's failure, before there is an AnsibleModule to report it (its argument spec is in the code
    that is missing)."""
    print(json.dumps({"failed": True, "msg": msg, **extra}))
    sys.exit(1)
