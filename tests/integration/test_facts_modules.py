"""pycontainer_info and pycontainer_prune through real `ansible` runs."""

from __future__ import annotations

import pytest

from tests.integration.helpers import Cli, write_engine_config
from tests.integration.test_ansible import adhoc


@pytest.fixture
def setup(engine_root, registry, busybox_image, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    cli = Cli(root=str(engine_root), config=config)
    cli("pull", "-q", busybox_image, check=True)
    return cli, f"root={engine_root} config={config}"


def test_info_facts_are_numbers_and_filtered_lists(setup):
    cli, engine_args = setup
    cli("run", "--name", "web1", "--label", "tier=web", "--network", "none", "busybox", "true", check=True)
    cli("run", "--name", "db1", "--label", "tier=db", "--network", "none", "busybox", "true", check=True)
    rc, result = adhoc("pycontainer_info",
                       f"containers=true images=true containers_filters={{'label':'tier=web'}} {engine_args}",
                       "--check")
    assert rc == 0 and result["changed"] is False, result
    facts = result["ansible_facts"]["pycontainer"]
    assert facts["info"]["Containers"] == 2 and facts["info"]["Images"] == 1
    assert facts["df"]["Containers"] == {"TotalCount": 2, "Active": 0, "Size": 0, "Reclaimable": 0}
    assert isinstance(facts["df"]["Images"]["Size"], int) and facts["df"]["Images"]["Size"] > 0
    assert [c["Names"] for c in facts["containers"]] == ["web1"]
    # One image under two names: pulled by its loopback reference and, for `run`, as busybox via the mirror.
    assert sorted(i["Repository"].rsplit("/", 1)[-1] for i in facts["images"]) == ["busybox", "busybox"]
    assert len({i["ID"] for i in facts["images"]}) == 1


def test_prune_module_check_mode_then_real(setup):
    cli, engine_args = setup
    cli("run", "--name", "gone", "--network", "none", "busybox", "sh", "-c", "dd if=/dev/zero of=/f bs=1000 count=7",
        check=True)
    cli("network", "create", "spare", check=True)
    rc, check = adhoc("pycontainer_prune", f"containers=true networks=true {engine_args}", "--check")
    assert rc == 0 and check["changed"] is True and len(check["containers"]) == 1 and check["networks"] == ["spare"]
    assert cli("ps", "-aq").stdout.strip()  # check mode removed nothing
    rc, real = adhoc("pycontainer_prune", f"containers=true networks=true {engine_args}")
    assert rc == 0 and real["changed"] is True and real["containers"] == check["containers"]
    assert real["containers_space_reclaimed"] == 7000 and real["networks"] == ["spare"]
    rc, again = adhoc("pycontainer_prune", f"containers=true networks=true {engine_args}")
    assert rc == 0 and again["changed"] is False


def test_events_module_returns_the_filtered_window(setup):
    cli, engine_args = setup
    cli("run", "--name", "evm", "--network", "none", "busybox", "sh", "-c", "exit 3", check=False)
    rc, result = adhoc("pycontainer_events", f"since=1h filters={{'type':'container','event':'die'}} {engine_args}",
                       "--check")
    assert rc == 0 and result["changed"] is False, result
    (died,) = result["events"]
    assert died["Actor"]["Attributes"]["name"] == "evm" and died["Actor"]["Attributes"]["exitCode"] == "3"
    rc, none = adhoc("pycontainer_events", f"until=1h {engine_args}")
    assert rc == 0 and none["events"] == []
