"""Run `ansible-test sanity` on this repository as the collection pycontainer.engine.

ansible-test wants its working directory under ansible_collections/<namespace>/<name> and resolves symlinks, so
.collections/ansible_collections/pycontainer/engine (a symlink to the repository) does not do: the files git
knows about (committed or new and not ignored) are copied into a temporary collection tree and tested there.
It runs offline except for PyPI: ansible-test downloads its pip bootstrap from ci-files.testing.ansible.com, so
tests/sanity/get_pip_offline.py is put in ansible-test's cache in its place (see that file).

Usage: python tests/sanity/run.py [--keep] [ansible-test sanity options, e.g. --test pylint]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = 'pycontainer'
NAME = 'engine'
PYTHON_VERSION = '3.11'
GET_PIP_SHIM = Path(__file__).resolve().with_name('get_pip_offline.py')
# The first line of our shim: a cached file starting otherwise is a real get-pip.py and is left alone.
SHIM_MARKER = GET_PIP_SHIM.read_text(encoding='utf-8').splitlines()[0]


def ansible_test_command() -> str:
    """The ansible-test of the project's venv if there is one, else the one on PATH."""
    venv_bin = REPO / '.venv' / 'bin' / 'ansible-test'
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which('ansible-test')
    if found is None:
        raise SystemExit('ansible-test not found: run `make setup` first')
    return found


def bootstrap_pip_version(ansible_test: str) -> str:
    """The pip version ansible-test bootstraps into its sanity venvs (it names the cached get-pip file)."""
    python = Path(ansible_test).resolve().parent / 'python'
    code = (
        'import types\n'
        'from ansible_test._internal.python_requirements import get_venv_packages\n'
        f'print(get_venv_packages(types.SimpleNamespace(version={PYTHON_VERSION!r}))["pip"])\n'
    )
    result = subprocess.run([str(python), '-c', code], check=True, capture_output=True, text=True)
    return result.stdout.strip()


def install_get_pip_shim(pip_version: str) -> None:
    """Put the offline bootstrap where ansible-test looks before it downloads (kept if it is a real get-pip)."""
    cache = Path.home() / '.ansible' / 'test' / 'cache' / f'get_pip_{pip_version.replace(".", "_")}.py'
    if cache.exists() and not cache.read_text(encoding='utf-8').startswith(SHIM_MARKER):
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GET_PIP_SHIM, cache)


def collection_files() -> list[str]:
    """Paths (relative to the repository) that make up the collection: what git tracks or would track."""
    result = subprocess.run(
        ['git', '-C', str(REPO), 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
        check=True, capture_output=True,
    )
    return sorted({name.decode() for name in result.stdout.split(b'\0') if name})


def copy_collection(destination: Path) -> None:
    """Copy the collection's files (symlinks as symlinks, modes kept) into destination."""
    for relative in collection_files():
        source = REPO / relative
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def main() -> int:
    """Copy the collection, run ansible-test sanity in the copy and return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--keep', action='store_true', help='keep the temporary collection tree (printed)')
    options, ansible_test_args = parser.parse_known_args()

    ansible_test = ansible_test_command()
    install_get_pip_shim(bootstrap_pip_version(ansible_test))

    root = Path(tempfile.mkdtemp(prefix='pycontainer-sanity-'))
    collection = root / 'ansible_collections' / NAMESPACE / NAME
    try:
        copy_collection(collection)
        command = [ansible_test, 'sanity', '--python', PYTHON_VERSION, *ansible_test_args]
        print(f'+ (cd {collection} && {" ".join(command)})', flush=True)
        env = dict(os.environ, PATH=f'{Path(ansible_test).parent}{os.pathsep}{os.environ.get("PATH", "")}')
        return subprocess.run(command, cwd=collection, env=env, check=False).returncode
    finally:
        if options.keep:
            print(f'collection tree kept: {collection}')
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
