"""The modules on a target that has nothing of ours installed: Debian's own Python with only Debian's cffi,
pyroute2 and zstandard, and interpreters that lack them (missing_required_lib, never a traceback)."""

from __future__ import annotations

import glob
import json
import os
import subprocess

import pytest
import yaml
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.code_bundle import code_digest, code_files
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.code_home import default_code_dir

from tests.fixtures.registry import free_port
from tests.integration.helpers import REPO, VENV_BIN, Cli, ansible_env, write_engine_config
from tests.integration.test_lifecycle import monitor_pid

pytestmark = pytest.mark.integration

DEBIAN_PYTHON = "/usr/bin/python3"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")


def adhoc_with(python: str, module: str, args: dict, *extra: str) -> tuple[int, dict, str]:
    """`ansible localhost -m MODULE` with ``python`` as the target's interpreter: rc, result, all output."""
    import tempfile

    with tempfile.TemporaryDirectory() as tree:
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", module, "-a", json.dumps(args), "--tree", tree,
             "-e", f"ansible_python_interpreter={python}", *extra],
            cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
        with open(os.path.join(tree, "localhost")) as f:
            return proc.returncode, json.load(f), proc.stdout + proc.stderr


def _venv(path: str, libraries: tuple[str, ...]) -> str:
    """A Python without pip or system site-packages, given only ``libraries`` out of Debian's dist-packages."""
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", "--without-pip", path], check=True)
    (site,) = glob.glob(os.path.join(path, "lib", "python3*", "site-packages"))
    for name in libraries:
        for entry in glob.glob(os.path.join(DIST_PACKAGES, name)):
            os.symlink(entry, os.path.join(site, os.path.basename(entry)))
    return os.path.join(path, "bin", "python")


@pytest.fixture
def setup(engine_root, registry, busybox_image, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    cli = Cli(root=str(engine_root), config=config)
    try:
        yield cli, {"root": str(engine_root), "config": config}
    finally:
        cli("rm", "-f", "web", "bridged", "quiet")


def _assert_missing(rc: int, result: dict, output: str, library: str) -> None:
    assert rc != 0 and "Traceback" not in output, output
    assert result["msg"].startswith(f"Failed to import the required Python library ({library}) on "), result


def test_missing_cffi_is_reported_by_every_module_that_runs_containers(setup, tmp_path):
    cli, engine = setup
    bare = _venv(str(tmp_path / "bare"), ())
    rc, result, output = adhoc_with(bare, "pycontainer", {**engine, "name": "quiet", "image": "busybox",
                                                          "command": "true", "network_mode": "none"})
    _assert_missing(rc, result, output, "cffi")
    cli("run", "-d", "--name", "quiet", "--network", "none", "busybox", "sleep", "300", check=True)
    rc, result, output = adhoc_with(bare, "pycontainer_exec", {**engine, "container": "quiet", "command": "true"})
    _assert_missing(rc, result, output, "cffi")
    # Modules that need no library work with the bare interpreter.
    rc, info, output = adhoc_with(bare, "pycontainer_info", {**engine, "containers": True})
    assert rc == 0 and [c["Names"] for c in info["ansible_facts"]["pycontainer"]["containers"]] == ["quiet"], output
    rc, volume, output = adhoc_with(bare, "pycontainer_volume", {**engine, "name": "data"})
    assert rc == 0 and volume["changed"] is True, output
    rc, image, output = adhoc_with(bare, "pycontainer_image", {**engine, "name": "busybox"})
    assert rc == 0 and image["image"]["RepoTags"] == ["busybox:latest"], output


def test_cffi_backend_alone_runs_containers_and_missing_pyroute2_is_reported(setup, tmp_path):
    """Debian's python3-cffi-backend without the cffi package is all the runtime needs; a bridge network
    without pyroute2 is reported as its missing library."""
    cli, engine = setup
    backend_only = _venv(str(tmp_path / "backend"), ("_cffi_backend*.so",))
    rc, quiet, output = adhoc_with(backend_only, "pycontainer", {
        **engine, "name": "quiet", "image": "busybox", "command": "echo isolated", "network_mode": "none",
        "detach": False})
    assert rc == 0 and quiet["output"] == "isolated\n", output
    rc, result, output = adhoc_with(backend_only, "pycontainer", {
        **engine, "name": "bridged", "image": "busybox", "command": "sleep 300", "state": "started"})
    _assert_missing(rc, result, output, "pyroute2")
    assert "required for bridge networking" in result["msg"]
    # Refused before anything was made: no container that could never start is left behind.
    assert "bridged" not in cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()


def test_missing_zstandard_is_reported_for_a_zstd_image(setup, oci_builder, tmp_path):
    from tests.fixtures.images import File

    _cli, engine = setup
    ref, _built = oci_builder.push("zstd/only:1", layers=[[File("hello.txt", "zstd layer\n")]], compression="zstd")
    backend_only = _venv(str(tmp_path / "backend"), ("_cffi_backend*.so", "pyroute2"))
    rc, result, output = adhoc_with(backend_only, "pycontainer_image", {**engine, "name": ref, "source": "pull"})
    _assert_missing(rc, result, output, "zstandard")
    assert "required for zstd-compressed layers" in result["msg"]
    debian = _venv(str(tmp_path / "debian"), ("_cffi_backend*.so", "pyroute2", "zstandard"))
    rc, pulled, output = adhoc_with(debian, "pycontainer_image", {**engine, "name": ref, "source": "pull"})
    assert rc == 0 and pulled["changed"] is True, output


def test_debian_python_runs_the_whole_job(setup, tmp_path):
    """Debian's /usr/bin/python3 with Debian's cffi 1.15, pyroute2 0.7.2 and zstandard 0.20: pull, a web
    container with a published port answering, exec in it, facts, stop, remove; the monitor runs the engine
    with that interpreter from the target's copy of the engine's code (engine_code.py), not from the module's
    temporary directory."""
    cli, engine = setup
    port = free_port()
    report = {"page": "{{ page.content }}", "inside": "{{ inside.stdout }}",
              "running": "{{ ansible_facts.pycontainer.info.ContainersRunning }}",
              "python": "{{ ansible_python_interpreter }}"}
    web_command = "sh -c 'mkdir -p /www && echo hello-debian > /www/index.html && exec httpd -f -p 80 -h /www'"
    tasks = [
        {"name": "Pull busybox", "pycontainer.engine.pycontainer_image": {"name": "busybox"}},
        {"name": "Web container", "pycontainer.engine.pycontainer": {
            "name": "web", "image": "busybox", "published_ports": [f"{port}:80"], "state": "started",
            "command": web_command}},
        {"name": "Fetch the page", "register": "page", "retries": 10, "delay": 1, "until": "page.status == 200",
         "ansible.builtin.uri": {"url": f"http://127.0.0.1:{port}/", "return_content": True}},
        {"name": "Exec", "register": "inside",
         "pycontainer.engine.pycontainer_exec": {"container": "web", "argv": ["cat", "/www/index.html"]}},
        {"name": "Facts", "pycontainer.engine.pycontainer_info": {"containers": True}},
        {"name": "Report", "vars": {"report": report},
         "ansible.builtin.copy": {"dest": str(tmp_path / "report.json"), "content": "{{ report | to_json }}"}},
    ]
    play = [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/pycontainer.engine.pycontainer": engine}, "tasks": tasks}]
    playbook = tmp_path / "debian.yml"
    playbook.write_text(yaml.safe_dump(play))
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), str(playbook),
            "-e", f"ansible_python_interpreter={DEBIAN_PYTHON}"]
    proc = subprocess.run(argv, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["page"].strip() == "hello-debian" and report["inside"] == "hello-debian"
    assert report["running"] == 1 and report["python"] == DEBIAN_PYTHON
    # The monitor supervising `web` is Debian's interpreter running the engine's code kept on the target.
    pid = monitor_pid(cli)
    assert pid and os.path.realpath(f"/proc/{pid}/exe").startswith("/usr/bin/python3")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    assert os.path.join(default_code_dir(), code_digest(code_files(MODULE_UTILS))).encode() in cmdline, cmdline
    assert b"/ansible-tmp-" not in cmdline and b"AnsiballZ" not in cmdline
    for state in ("stopped", "absent"):
        rc, result, output = adhoc_with(DEBIAN_PYTHON, "pycontainer", {**engine, "name": "web", "state": state})
        assert rc == 0 and result["changed"] is True, output
    assert cli("ps", "-aq").stdout == ""
