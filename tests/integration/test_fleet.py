"""site.yml and facts.yml across a fleet of five hosts simulated on this machine (local connection, per-host
engine root, config, bridge, subnet, nftables table, cgroup parent and published port), run with five forks."""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import subprocess
import urllib.request

import pytest

from tests.fixtures.fleet.fleet import Fleet
from tests.fixtures.fleet.playbook import run_playbook

FLEET_SIZE = 5
FORKS = ("--forks", str(FLEET_SIZE))
TEARDOWN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "fleet", "teardown.yml")


@pytest.fixture
def fleet(registry, busybox_image):
    fleet = Fleet.create(FLEET_SIZE, registry.host)
    teardown = None
    try:
        # Three hosts already have an engine config: the role merges into it.
        for host in fleet.hosts[::2]:
            fleet.preconfigure(host, max_concurrent_downloads=2, nft_table="stale")
        fleet.render_inventory()
        yield fleet
        teardown = run_playbook(TEARDOWN, *FORKS, inventory=fleet.inventory)
    finally:
        fleet.destroy()  # also when the test failed: whatever is left is removed with the CLI
    assert teardown.returncode == 0, teardown.output


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return resp.read().decode()


def _nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_site_converges_the_fleet_idempotently_and_facts_aggregate(fleet: Fleet, tmp_path):
    names = {host.name for host in fleet.hosts}

    # Check mode on the fresh fleet: every host predicts changes, nothing is written or started.
    check = run_playbook("site.yml", "--check", *FORKS, inventory=fleet.inventory)
    assert check.returncode == 0, check.output
    assert all(check.changed(name) > 0 and check.recap[name]["failed"] == 0 for name in names), check.stdout
    for host in fleet.hosts:
        assert os.path.exists(host.config) == bool(host.index % 2)  # only the preconfigured ones
        # A configured engine predicts the pull and the run; an unconfigured one cannot (reported, not fatal).
        assert check.recap[host.name]["ignored"] == (0 if host.index % 2 else 2), check.stdout
        assert not os.path.exists(f"/sys/class/net/{host.bridge}")
        assert not glob.glob(f"/sys/fs/cgroup/*/{host.cgroup_parent}")
    assert not _nft_tables() & {host.nft_table for host in fleet.hosts}

    first = run_playbook("site.yml", *FORKS, inventory=fleet.inventory)
    assert first.returncode == 0, first.output
    assert set(first.recap) == names, first.stdout
    assert all(first.changed(name) > 0 and first.recap[name]["failed"] == 0 for name in names), first.stdout

    second = run_playbook("site.yml", *FORKS, inventory=fleet.inventory)
    assert second.returncode == 0, second.output
    assert {name: second.changed(name) for name in names} == dict.fromkeys(names, 0), second.stdout

    tables = _nft_tables()
    for host in fleet.hosts:
        # Each host's web container answers on its own port, from its own bridge, subnet and table.
        assert _get(host.port) == f"Hello from {host.name}\n"
        web = json.loads(host.cli("inspect", "webapp", check=True).stdout)[0]
        assert ipaddress.ip_address(web["NetworkSettings"]["IPAddress"]) in ipaddress.ip_network(host.subnet)
        assert os.path.isdir(f"/sys/class/net/{host.bridge}") and host.nft_table in tables
        with open(host.config) as f:
            config = json.load(f)
        assert config["registry_mirrors"] == [f"http://{fleet.registry_host}"]
        assert config["blocked_registries"] == ["docker.io"] and config["nft_table"] == host.nft_table
        # The cgroups role's parent holds the container; the logging role's log file is the engine's.
        assert config["cgroup_parent"] == host.cgroup_parent and config["log_file"] == host.log_file
        assert any(os.path.isdir(os.path.join(parent, f"pycontainer-{web['Id']}"))
                   for parent in glob.glob(f"/sys/fs/cgroup/*/{host.cgroup_parent}")), host.cgroup_parent
        assert os.path.getsize(host.log_file) > 0
        # Keys the role does not manage are kept.
        assert config.get("max_concurrent_downloads") == (2 if host.index % 2 else None)

    report = tmp_path / "fleet-facts.json"
    facts = run_playbook("facts.yml", *FORKS, inventory=fleet.inventory,
                         extra_vars={"pycontainer_facts_report": str(report)})
    assert facts.returncode == 0, facts.output
    assert f"{FLEET_SIZE} hosts reported in {report}" in facts.stdout
    hosts = json.loads(report.read_text())["hosts"]
    assert set(hosts) == names
    for host in fleet.hosts:
        info, df = hosts[host.name]["info"], hosts[host.name]["df"]
        assert info["DockerRootDir"] == host.root
        assert info["ContainersRunning"] == 1 and info["Images"] == 1
        assert df["Images"]["TotalCount"] == 1 and df["Containers"]["Active"] == 1
    table = (tmp_path / "fleet-facts.txt").read_text().splitlines()
    assert table[0].startswith("HOST") and sorted(line.split()[0] for line in table[1:]) == sorted(names)
