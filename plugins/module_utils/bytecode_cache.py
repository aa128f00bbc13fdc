"""Bytecode for the engine when it travels in an AnsiballZ zip.

Shipped inside an AnsiballZ zip, the engine's sources come without bytecode and Python's zipimport never writes
any, so every module run would compile ~200 files again (~75 ms). Every module imports this first (Ansible ships
packages' ``__init__.py`` empty, so it cannot live there); loaded from a zip, it installs a finder that serves
the engine's modules from a bytecode cache on the target, keyed by the hash of each source, so a changed engine
never reuses stale code. Cache files are written atomically in a directory only their owner may read.
Installed normally, Python's own ``__pycache__`` does the job and this is a no-op.
"""

from __future__ import annotations

import os
import sys
import zipimport


def _install_zip_bytecode_cache() -> None:
    import hashlib
    import importlib.util
    import marshal

    package = __name__.rpartition(".")[0]
    cache_dir = os.environ.get("PYCONTAINER_BYTECODE_CACHE") or (
        "/var/cache/pycontainer/bytecode" if os.geteuid() == 0
        else os.path.join(os.path.expanduser("~"), ".cache", "pycontainer", "bytecode"))
    tag = importlib.util.MAGIC_NUMBER.hex() + sys.implementation.cache_tag

    class CachedLoader:
        def __init__(self, importer: zipimport.zipimporter, fullname: str, origin: str) -> None:
            self.importer, self.fullname, self.origin = importer, fullname, origin

        def create_module(self, spec):  # default module creation
            return None

        def is_package(self, fullname: str) -> bool:
            return self.importer.is_package(fullname)

        def get_source(self, fullname: str) -> str | None:
            return self.importer.get_source(fullname)

        def get_code(self, fullname: str):
            source = self.importer.get_source(fullname) or ""
            # Not keyed by origin: each payload unpacks to a new temporary path (tracebacks may name an old one).
            key = hashlib.sha256(f"{tag}\0{fullname}\0".encode() + source.encode()).hexdigest()
            path = os.path.join(cache_dir, key[:2], key)
            try:
                with open(path, "rb") as f:
                    return marshal.loads(f.read())
            except (OSError, ValueError, EOFError, TypeError):
                pass
            code = compile(source, self.origin, "exec", dont_inherit=True)
            try:  # best effort: a read-only or full disk only costs the compile next time
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.tmp"
                with open(tmp, "wb") as f:
                    f.write(marshal.dumps(code))
                os.replace(tmp, path)
            except OSError:
                pass
            return code

        def exec_module(self, module) -> None:
            exec(self.get_code(module.__name__), module.__dict__)  # pylint: disable=exec-used  # this is the import

    class CachedZipFinder:
        @staticmethod
        def find_spec(fullname: str, path=None, target=None):
            if not fullname.startswith(package + ".") or not path:
                return None
            name = fullname.rpartition(".")[2]
            for entry in path:
                try:
                    importer = zipimport.zipimporter(entry)
                    is_package = importer.is_package(fullname)
                except zipimport.ZipImportError:
                    continue
                # Not importer.find_spec(): in Python 3.11 it compiles the source to learn the file name.
                inner = f"{importer.prefix}{name}/__init__.py" if is_package else f"{importer.prefix}{name}.py"
                origin = os.path.join(importer.archive, inner)
                spec = importlib.util.spec_from_loader(fullname, CachedLoader(importer, fullname, origin),
                                                       origin=origin, is_package=is_package)
                if spec is None:
                    continue
                spec.has_location = True
                if is_package:
                    spec.submodule_search_locations = [os.path.join(importer.archive, importer.prefix + name)]
                return spec
            return None

    if not any(type(f).__name__ == "CachedZipFinder" or getattr(f, "__name__", "") == "CachedZipFinder"
               for f in sys.meta_path):
        sys.meta_path.insert(0, CachedZipFinder)


if isinstance(globals().get("__loader__"), zipimport.zipimporter) and not os.environ.get(
        "PYCONTAINER_NO_BYTECODE_CACHE"):
    _install_zip_bytecode_cache()
