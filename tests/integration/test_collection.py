"""The repository works as the collection in place, and builds into an installable collection."""

from __future__ import annotations

import glob
import os
import subprocess

from tests.integration.helpers import REPO, VENV_BIN, ansible_env

MODULES = ("pycontainer", "pycontainer_image", "pycontainer_info", "pycontainer_prune", "pycontainer_network",
           "pycontainer_events", "pycontainer_volume", "pycontainer_exec", "pycontainer_login")


def _run(*args: str, cwd: str = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(VENV_BIN, args[0]), *args[1:]], cwd=cwd, env=env or ansible_env(),
                          capture_output=True, text=True, timeout=300, check=False)


def test_ansible_doc_lists_and_documents_every_module():
    listing = _run("ansible-doc", "-l", "pycontainer.engine")
    assert listing.returncode == 0, listing.stderr
    for module in MODULES:
        assert f"pycontainer.engine.{module} " in listing.stdout
        doc = _run("ansible-doc", f"pycontainer.engine.{module}")
        assert doc.returncode == 0 and "ERROR" not in doc.stderr, doc.stderr
        assert "EXAMPLES" in doc.stdout and "RETURN VALUES" in doc.stdout


def test_galaxy_build_and_install(tmp_path):
    build = _run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), "--force")
    assert build.returncode == 0, build.stderr
    (tarball,) = glob.glob(str(tmp_path / "pycontainer-engine-*.tar.gz"))
    listing = subprocess.run(["tar", "tzf", tarball], capture_output=True, text=True, check=True).stdout
    assert "plugins/module_utils/engine.py" in listing
    assert not any(part in listing for part in (".venv/", ".state/", ".collections/", "__pycache__"))
    # Galaxy shows the changelog; the developer-only ffi generator (needs cffi) stays out.
    assert "changelogs/changelog.yaml" in listing and "tools/" not in listing
    # Away from the repository (whose ansible.cfg already provides the collection), as a user would.
    install_dir = tmp_path / "installed"
    env = ansible_env()
    env["ANSIBLE_COLLECTIONS_PATH"] = str(install_dir)
    # The venv's .pth puts the repository's .collections on sys.path; a user elsewhere has only the install.
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    env.pop("ANSIBLE_CONFIG")
    install = _run("ansible-galaxy", "collection", "install", tarball, "-p", str(install_dir), cwd=str(tmp_path),
                   env=env)
    assert install.returncode == 0, install.stderr
    assert (install_dir / "ansible_collections/pycontainer/engine/plugins/modules/pycontainer.py").is_file()
    doc = _run("ansible-doc", "-l", "pycontainer.engine", cwd=str(tmp_path), env=env)
    assert doc.returncode == 0 and "pycontainer.engine.pycontainer_image" in doc.stdout, doc.stderr
    where = _run("ansible-doc", "pycontainer.engine.pycontainer", cwd=str(tmp_path), env=env)
    assert str(install_dir) in where.stdout


def test_action_group_holds_every_module():
    import yaml

    with open(os.path.join(REPO, "meta/runtime.yml")) as f:
        runtime = yaml.safe_load(f)
    modules = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "plugins/modules/*.py")))
    assert sorted(runtime["action_groups"]["pycontainer"]) == modules


def test_every_engine_package_is_in_the_wheel():
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    base = os.path.join(REPO, "plugins", "module_utils")
    found = {"ansible_collections.pycontainer.engine.plugins.module_utils" + (
        "." + os.path.relpath(d, base).replace(os.sep, ".") if d != base else "")
        for d, _dirs, files in os.walk(base) if "__init__.py" in files}
    assert found == listed
