"""The playbooks (webapp, prune, facts, hello) for real on one host with a test engine root and config."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import urllib.request

import pytest

from tests.fixtures.fleet.playbook import run_playbook
from tests.fixtures.registry import free_port
from tests.integration.helpers import Cli, write_engine_config


@pytest.fixture
def host_vars(engine_root, registry, busybox_image, tmp_path) -> dict:
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    return {"pycontainer_root": engine_root, "pycontainer_config_path": config}


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return resp.read().decode()


def test_webapp_playbook_check_mode_then_idempotent(host_vars, tmp_path, engine_root):
    cli = Cli(engine_root, host_vars["pycontainer_config_path"])
    port = free_port()
    www = tmp_path / "www"
    extra = {**host_vars, "pycontainer_webapp_port": port, "pycontainer_webapp_dir": str(www),
             "pycontainer_webapp_message": "Hello from the webapp test"}
    try:
        # Check mode on a fresh root: predicts changes, makes nothing (no page, no image, no container).
        check = run_playbook("webapp.yml", "--check", extra_vars=extra)
        assert check.returncode == 0, check.output
        assert check.changed("localhost") >= 3 and check.recap["localhost"]["ignored"] == 0, check.stdout
        assert not www.exists()
        assert cli("ps", "-aq", check=True).stdout == "" and cli("images", "-q", check=True).stdout == ""

        first = run_playbook("webapp.yml", extra_vars=extra)
        assert first.returncode == 0, first.output
        assert first.changed("localhost") == 4  # page dir, page, pull, container
        assert _get(port) == "Hello from the webapp test\n"
        web = json.loads(cli("inspect", "webapp", check=True).stdout)[0]
        assert web["State"]["Running"] and web["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

        second = run_playbook("webapp.yml", extra_vars=extra)
        assert second.returncode == 0, second.output
        assert second.changed("localhost") == 0, second.stdout
        # A new page is served without recreating the container (the directory is bind-mounted).
        third = run_playbook("webapp.yml", extra_vars={**extra, "pycontainer_webapp_message": "Page two"})
        assert third.returncode == 0 and third.changed("localhost") == 1, third.output
        assert _get(port) == "Page two\n"
        assert json.loads(cli("inspect", "webapp", check=True).stdout)[0]["Id"] == web["Id"]
    finally:
        cli("rm", "-f", "webapp")


def test_prune_playbook_applies_filters_from_variables(host_vars, engine_root):
    cli = Cli(engine_root, host_vars["pycontainer_config_path"])
    cli("run", "--name", "keep", "--label", "keep=yes", "busybox", "true", check=True)
    cli("run", "--name", "drop", "busybox", "true", check=True)
    extra = {**host_vars, "pycontainer_prune_containers_filters": {"label!": "keep"},
             "pycontainer_prune_images": False}

    check = run_playbook("prune.yml", "--check", extra_vars=extra)
    assert check.returncode == 0 and check.changed("localhost") == 1, check.output
    assert sorted(cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()) == ["drop", "keep"]

    pruned = run_playbook("prune.yml", extra_vars=extra)
    assert pruned.returncode == 0 and pruned.changed("localhost") == 1, pruned.output
    assert "containers 1, networks 0, volumes 0, images 0" in pruned.stdout
    assert cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split() == ["keep"]
    # The image is in use by "keep" and images were not asked for: still there.
    assert cli("images", "-q", check=True).stdout.strip()

    again = run_playbook("prune.yml", extra_vars=extra)
    assert again.returncode == 0 and again.changed("localhost") == 0, again.output
    cli("rm", "-f", "keep", check=True)


def test_facts_playbook_writes_one_report(host_vars, tmp_path, engine_root):
    cli = Cli(engine_root, host_vars["pycontainer_config_path"])
    cli("run", "--name", "done", "busybox", "true", check=True)
    report = tmp_path / "report" / "fleet.json"
    report.parent.mkdir()
    run = run_playbook("facts.yml", extra_vars={**host_vars, "pycontainer_facts_report": str(report)})
    assert run.returncode == 0, run.output
    data = json.loads(report.read_text())
    assert list(data["hosts"]) == ["localhost"]
    facts = data["hosts"]["localhost"]
    assert facts["info"]["Containers"] == 1 and facts["info"]["Images"] == 1
    assert facts["df"]["Images"]["Size"] > 0 and facts["df"]["Containers"]["TotalCount"] == 1
    table = (tmp_path / "report" / "fleet.txt").read_text().splitlines()
    assert table[0].split()[:3] == ["HOST", "VERSION", "CGROUP"]
    assert len(table) == 2 and table[1].split()[0] == "localhost"
    assert table[1].split()[3:6] == ["1", "0", "1"]  # containers, running, images
    cli("rm", "-f", "done", check=True)


def test_hello_playbook_takes_the_shared_config_variable(host_vars, engine_root):
    cli = Cli(engine_root, host_vars["pycontainer_config_path"])
    port = free_port()
    try:
        run = run_playbook("hello.yml", extra_vars={**host_vars, "pycontainer_web_port": port})
        assert run.returncode == 0, run.output
        assert '"msg": "Hello World"' in run.stdout and '"msg": "Hello from pycontainer"' in run.stdout
        assert _get(port) == "Hello from pycontainer\n"
        assert os.path.isdir(os.path.join(engine_root, "containers"))
    finally:
        cli("rm", "-f", "web")


HOST_ROLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "fleet", "host_role.yml")


def test_host_role_check_mode_merge_and_idempotence(registry, engine_root, tmp_path):
    config = tmp_path / "etc" / "pycontainer" / "engine.json"
    sysctl = tmp_path / "sysctl.d" / "90-pycontainer.conf"
    extra = {"pycontainer_root": engine_root, "pycontainer_config_path": str(config),
             "host_sysctl_file": str(sysctl), "host_registry_mirrors": [f"http://{registry.host}"],
             "host_blocked_registries": ["docker.io"], "host_bridge_name": "pyctest0",
             "host_engine_settings": {"log_file": str(tmp_path / "engine.log")}}

    # Check mode on a fresh host: predicts the writes, makes none.
    check = run_playbook(HOST_ROLE, "--check", "--diff", extra_vars=extra)
    assert check.returncode == 0 and check.changed("localhost") == 4, check.output  # 2 dirs, config, sysctl
    assert not config.parent.exists() and not sysctl.parent.exists()

    first = run_playbook(HOST_ROLE, extra_vars=extra)
    assert first.returncode == 0 and first.changed("localhost") == 4, first.output
    assert json.loads(config.read_text()) == {
        "registry_mirrors": [f"http://{registry.host}"], "blocked_registries": ["docker.io"],
        "bridge_name": "pyctest0", "log_file": str(tmp_path / "engine.log")}
    assert "net.ipv4.ip_forward = 1" in sysctl.read_text()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "1"

    # Keys set by others are kept; a key the role sets is merged; the same data in another layout is left alone.
    config.write_text(json.dumps({**json.loads(config.read_text()), "max_concurrent_downloads": 2}))
    second = run_playbook(HOST_ROLE, extra_vars=extra)
    assert second.returncode == 0 and second.changed("localhost") == 0, second.output
    third = run_playbook(HOST_ROLE, extra_vars={**extra, "host_nft_table": "pyctest"})
    assert third.returncode == 0 and third.changed("localhost") == 1, third.output
    assert json.loads(config.read_text())["max_concurrent_downloads"] == 2
    assert json.loads(config.read_text())["nft_table"] == "pyctest"


def test_host_role_refuses_bad_variables(engine_root, tmp_path):
    config = tmp_path / "engine.json"
    base = {"pycontainer_root": engine_root, "pycontainer_config_path": str(config), "host_sysctl_file": ""}
    bad_type = run_playbook(HOST_ROLE, extra_vars={**base, "host_install_packages": "maybe"})
    assert bad_type.returncode != 0 and "host_install_packages" in bad_type.stdout, bad_type.output
    # A key the engine does not know is refused by the engine's own check, naming the key, before the config is
    # written: the host keeps its config as it was (here: none).
    unknown = run_playbook(HOST_ROLE, extra_vars={**base, "host_engine_settings": {"no_such_key": 1}})
    assert unknown.returncode != 0 and "unknown keys no_such_key" in unknown.stdout, unknown.output
    assert not config.exists()
    # Nor is the scratch candidate left behind.
    scratch = pathlib.Path(tempfile.gettempdir()).glob("ansible.*.json")
    assert not [path for path in scratch if "no_such_key" in path.read_text()]
