"""The engine's code as a bundle: its files and digest (the controller's side) and the shipped zip's check and
installation (the target's side). See engine_code.py for the whole scheme; this part is imported only when
code is packed or installed, never on a module's everyday path.
"""

from __future__ import annotations

import os
import re
import stat

from .code_home import PACKAGE, CodeError, check_own_dir, installed

_PREFIX = PACKAGE.replace(".", "/") + "/"
# The packages above module_utils, empty as Ansible ships them, so that the code dir is importable on its own.
_PARENT_INITS = tuple(f"{'/'.join(PACKAGE.split('.')[:depth])}/__init__.py" for depth in range(1, 5))
_NAME = re.compile(re.escape(_PREFIX) + r"(?:[A-Za-z_][A-Za-z0-9_]*/)*[A-Za-z_][A-Za-z0-9_]*\.py")
_MAX_FILES = 2000
_MAX_BYTES = 64 << 20


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
    check_own_dir(code_dir, create=True)
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
