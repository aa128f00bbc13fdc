"""The engine's bytecode cache for AnsiballZ runs: used when the engine is imported from a zip, keyed by source."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[3])
PACKAGE = "ansible_collections/pycontainer/engine/plugins/module_utils"

IMPORT_VERSION = (
    "import sys; sys.path.insert(0, sys.argv[1]);"
    "from ansible_collections.pycontainer.engine.plugins.module_utils import bytecode_cache;"
    "from ansible_collections.pycontainer.engine.plugins.module_utils import version;"
    "from ansible_collections.pycontainer.engine.plugins.module_utils.image import reference;"
    "assert reference.parse_reference('busybox').path == 'library/busybox';"
    "print(version.ENGINE_VERSION, version.__file__)"
)


def _zip(path: str, version_source: str | None = None) -> str:
    """The engine packed the way AnsiballZ packs it: empty package __init__ files, sources only."""
    with zipfile.ZipFile(path, "w") as archive:
        packages = ("ansible_collections", "ansible_collections/pycontainer", "ansible_collections/pycontainer/engine",
                    "ansible_collections/pycontainer/engine/plugins")
        for package in packages:
            archive.writestr(f"{package}/__init__.py", "")
        source_root = os.path.join(REPO, "plugins/module_utils")
        for directory, dirs, files in os.walk(source_root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if not name.endswith(".py"):
                    continue
                relpath = os.path.relpath(os.path.join(directory, name), source_root)
                with open(os.path.join(source_root, relpath)) as f:
                    source = f.read()
                if name == "__init__.py":
                    source = ""  # as AnsiballZ ships packages
                if relpath == "version.py" and version_source is not None:
                    source = version_source
                archive.writestr(f"{PACKAGE}/{relpath}", source)
    return path


def _import(zip_path: str, cache: str, **env: str) -> str:
    proc = subprocess.run([sys.executable, "-S", "-c", IMPORT_VERSION, zip_path], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "PYCONTAINER_BYTECODE_CACHE": cache, **env}, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _cached_files(cache: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _dirs, files in os.walk(cache) for f in files)


def test_modules_from_a_zip_are_compiled_once_and_served_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    engine_zip = _zip(str(tmp_path / "payload.zip"))
    first = _import(engine_zip, cache)
    cached = _cached_files(cache)
    # version, image (a package), image.reference, errors (bytecode_cache is imported before the finder exists)
    assert len(cached) == 4, cached
    assert oct(os.stat(os.path.dirname(cached[0])).st_mode & 0o777) == "0o700"
    # What the second run executes is the cached code: replace it and the import shows the replacement.
    import marshal

    (version_code,) = [path for path in cached if b"ENGINE_VERSION" in Path(path).read_bytes()]
    with open(version_code, "wb") as f:
        f.write(marshal.dumps(compile("ENGINE_VERSION = 'from-cache'", "version.py", "exec")))
    assert _import(engine_zip, cache).split()[0] == "from-cache"
    assert first.split()[1].startswith(engine_zip)  # __file__ still names the file in the zip


def test_a_changed_source_never_runs_stale_bytecode(tmp_path):
    cache = str(tmp_path / "cache")
    _import(_zip(str(tmp_path / "old.zip"), "ENGINE_VERSION = 'old'\n"), cache)
    assert _import(_zip(str(tmp_path / "new.zip"), "ENGINE_VERSION = 'new'\n"), cache).split()[0] == "new"
    assert len(_cached_files(cache)) == 5  # a second version.py; the other modules are the same


def test_off_switch_and_unwritable_cache_still_import(tmp_path):
    engine_zip = _zip(str(tmp_path / "payload.zip"))
    cache = str(tmp_path / "off")
    assert _import(engine_zip, cache, PYCONTAINER_NO_BYTECODE_CACHE="1").split()[0]
    assert not os.path.exists(cache)
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert _import(engine_zip, str(blocked / "cache")).split()[0]
