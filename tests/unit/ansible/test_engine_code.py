"""The engine's code kept on the target (engine_code.py, code_bundle.py), driven the way a module payload drives
it: a zip holding only what AnsiballZ ships (engine_code.py and its packages), imported in a fresh interpreter
with the action plugin's environment. Runs as any user: the code dir lives under tmp_path."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.code_bundle import (
    code_digest,
    code_files,
    install,
    write_zip,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.code_home import CodeError, installed
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import (
    ENV_CODE_DIR,
    ENV_DIGEST,
    ENV_ZIP,
    MISSING_KEY,
)

MODULE_UTILS = str(Path(__file__).resolve().parents[3] / "plugins" / "module_utils")
PACKAGE_DIR = "ansible_collections/pycontainer/engine/plugins/module_utils"
# What a module payload runs: the engine's modules by name, then proof of where they came from.
PAYLOAD_MAIN = (
    "import sys; sys.path.insert(0, sys.argv[1]);"
    "from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules;"
    "glue, version = engine_modules('ansible.glue', 'version');"
    "print(version.__file__); print(version.ENGINE_VERSION)"
)


@pytest.fixture(scope="module")
def code() -> tuple[list[tuple[str, bytes]], str]:
    files = code_files(MODULE_UTILS)
    return files, code_digest(files)


@pytest.fixture
def payload(tmp_path) -> str:
    """A module payload as AnsiballZ packs it: empty package inits, engine_code.py and what it may import."""
    path = str(tmp_path / "payload.zip")
    with zipfile.ZipFile(path, "w") as archive:
        parts = PACKAGE_DIR.split("/")
        for depth in range(1, len(parts) + 1):
            archive.writestr("/".join(parts[:depth]) + "/__init__.py", "")
        archive.writestr(f"{PACKAGE_DIR}/ansible/__init__.py", "")
        for name in ("engine_code.py", "code_home.py", "code_bundle.py"):
            archive.write(os.path.join(MODULE_UTILS, "ansible", name), f"{PACKAGE_DIR}/ansible/{name}")
    return path


def run_payload(payload: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYCONTAINER_")}
    return subprocess.run([sys.executable, "-c", PAYLOAD_MAIN, payload], env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def failure(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    assert result["failed"] is True
    return result


def shipped_zip(tmp_path, files: list[tuple[str, bytes]]) -> str:
    path = str(tmp_path / "engine.zip")
    write_zip(files, path)
    return path


def test_a_target_without_the_code_asks_for_it_and_does_nothing_else(payload, code, tmp_path):
    _files, digest = code
    code_dir = tmp_path / "code"
    result = failure(run_payload(payload, **{ENV_DIGEST: digest, ENV_CODE_DIR: str(code_dir)}))
    assert result[MISSING_KEY] == digest
    assert os.listdir(code_dir) == []  # made for later (0700), nothing in it
    assert stat.S_IMODE(os.stat(code_dir).st_mode) == 0o700


def test_shipped_code_is_installed_once_with_bytecode_and_used_from_there(payload, code, tmp_path):
    files, digest = code
    code_dir = tmp_path / "code"
    env = {ENV_DIGEST: digest, ENV_CODE_DIR: str(code_dir)}
    first = run_payload(payload, **env, **{ENV_ZIP: shipped_zip(tmp_path, files)})
    assert first.returncode == 0, first.stderr
    tree = code_dir / digest
    assert first.stdout.splitlines()[0] == str(tree / PACKAGE_DIR / "version.py")
    assert stat.S_IMODE(os.stat(tree).st_mode) == 0o755
    assert list((tree / PACKAGE_DIR / "container").glob("__pycache__/option_table.*.pyc"))
    assert os.listdir(code_dir) == [digest]  # no temporary directory left
    inode = os.stat(tree).st_ino
    again = run_payload(payload, **env)  # no zip this time: the installed code serves
    assert again.returncode == 0 and again.stdout == first.stdout, again.stderr
    assert os.stat(tree).st_ino == inode


def test_code_damaged_in_transfer_is_refused(payload, code, tmp_path):
    files, digest = code
    damaged = [(name, data + b"\nimport os; os.system('id')\n" if name.endswith("/version.py") else data)
               for name, data in files]
    code_dir = tmp_path / "code"
    result = failure(run_payload(payload, **{ENV_DIGEST: digest, ENV_CODE_DIR: str(code_dir),
                                             ENV_ZIP: shipped_zip(tmp_path, damaged)}))
    assert "does not match version" in result["msg"]
    assert os.listdir(code_dir) == []


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the duplicate entry is the point
@pytest.mark.parametrize("entry", [
    f"{PACKAGE_DIR}/../../../../../evil.py",
    "/etc/cron.d/evil.py",
    f"{PACKAGE_DIR}/run.sh",
    f"{PACKAGE_DIR}/ansible/__init__.py",  # a duplicate of an entry already there
    "symlink",
])
def test_unexpected_entries_are_refused_before_anything_is_written(code, tmp_path, entry):
    files, _digest = code
    path = shipped_zip(tmp_path, files)
    with zipfile.ZipFile(path, "a") as archive:
        if entry == "symlink":
            info = zipfile.ZipInfo(f"{PACKAGE_DIR}/link.py")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/shadow")
        else:
            archive.writestr(entry, "print('owned')\n")
    hostile = [*files, (entry, b"")]  # whatever its digest: the entry is refused before the digest is checked
    code_dir = tmp_path / "code"
    os.makedirs(code_dir, mode=0o700)
    with pytest.raises(CodeError, match="unexpected entry"):
        install(path, code_digest(sorted(hostile)), str(code_dir))
    assert os.listdir(code_dir) == []
    assert not os.path.exists("/etc/cron.d/evil.py") and not (tmp_path / "evil.py").exists()


def test_code_is_never_run_from_a_directory_others_can_write_or_that_is_not_the_users(code, tmp_path):
    files, digest = code
    shared = tmp_path / "shared"
    os.makedirs(shared)
    os.chmod(shared, 0o777)
    with pytest.raises(CodeError, match="refusing to run"):
        installed(str(shared), digest)
    link = tmp_path / "link"
    os.symlink(tmp_path / "elsewhere", link)
    os.makedirs(tmp_path / "elsewhere", mode=0o700)
    with pytest.raises(CodeError, match="refusing to run"):
        installed(str(link), digest)
    if os.geteuid() != 0:
        with pytest.raises(CodeError, match="refusing to run"):  # root's: not this user's
            installed("/", digest)
    code_dir = tmp_path / "code"
    tree = install(shipped_zip(tmp_path, files), digest, str(code_dir))
    os.chmod(tree, 0o777)  # someone loosened the installed tree
    with pytest.raises(CodeError, match="refusing to run"):
        installed(str(code_dir), digest)


def test_a_module_run_without_the_action_plugin_says_what_to_do(payload, tmp_path):
    result = failure(run_payload(payload, **{ENV_CODE_DIR: str(tmp_path / "code")}))
    assert "action plugin" in result["msg"] and "pycontainer.engine.<module>" in result["msg"]


def test_where_the_code_cannot_be_kept_it_runs_from_the_checked_zip(payload, code, tmp_path):
    files, digest = code
    shipped = shipped_zip(tmp_path, files)
    proc = run_payload(payload, **{ENV_DIGEST: digest, ENV_CODE_DIR: "/proc/self/pycontainer-code",
                                   ENV_ZIP: shipped})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == os.path.join(shipped, PACKAGE_DIR, "version.py")


def test_a_second_install_of_the_same_version_keeps_the_first(code, tmp_path):
    files, digest = code
    code_dir = str(tmp_path / "code")
    shipped = shipped_zip(tmp_path, files)
    tree = install(shipped, digest, code_dir)
    inode = os.stat(tree).st_ino
    # A concurrent install that lost the race: its rename fails, its temporary tree goes, the winner's stays.
    assert install(shipped, digest, code_dir) == tree
    assert os.stat(tree).st_ino == inode and os.listdir(code_dir) == [digest]


def test_the_digest_covers_names_and_contents(code):
    files, digest = code
    renamed = sorted((name.replace("/units.py", "/units2.py"), data) for name, data in files)
    changed = [(name, data + b" " if name.endswith("/units.py") else data) for name, data in files]
    assert len({digest, code_digest(renamed), code_digest(changed)}) == 3
    assert all(name.startswith("ansible_collections/") and "__pycache__" not in name for name, _data in files)
