"""`pycontainer compare` (container/compare.differences, what ContainerService.compare runs) decides as the module
does: the same normal forms and comparisons from the option table, only what was asked for. Before the table it
was a second comparator that compared raw fields and always compared Tty, so the two disagreed."""

from __future__ import annotations

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.container import create_options
from ansible_collections.pycontainer.engine.plugins.module_utils.container.compare import differences
from ansible_collections.pycontainer.engine.plugins.module_utils.container.update import in_place_changes
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig, RestartPolicy

from tests.unit.container.test_compare import IMAGE_ID, _diff, _record_from


def _cli_diff(created: dict, now: dict) -> list[tuple]:
    record = _record_from(created)
    return [(d.name, d.actual, d.desired) for d in
            differences(record, create_options({"name": "c", "image": "busybox", **now}), IMAGE_ID)]


@pytest.mark.parametrize(("created", "now"), [
    ({"pids_limit": -1}, {"pids_limit": 0}),
    ({"capabilities": ["NET_ADMIN"], "cap_drop": ["chown"]}, {"capabilities": ["cap_net_admin"],
                                                              "cap_drop": ["CAP_CHOWN"]}),
    ({"devices": ["/dev/fuse"]}, {"devices": ["/dev/fuse:/dev/fuse:rwm"]}),
    ({"tty": True}, {}),            # -t not given: the container's Tty is not compared (the module's rule)
    ({"tty": True}, {"tty": True}),
    ({"groups": ["1234", "www-data"]}, {"groups": ["www-data"]}),  # allow_more_present, as community.docker
    ({"memory": "64m", "privileged": True}, {"memory": "67108864"}),
])
def test_compare_and_the_module_agree_on_no_change(created, now):
    assert _diff(created, now) == []
    assert _cli_diff(created, now) == []


def test_compare_and_the_module_agree_on_a_change_and_compare_names_inspect_paths():
    assert _diff({}, {"tty": True}) == ["tty"]
    assert _cli_diff({}, {"tty": True}) == [("Config.Tty", False, True)]
    assert _diff({"groups": ["1"]}, {"groups": ["2"]}) == ["groups"]
    assert _cli_diff({"groups": ["1"]}, {"groups": ["2"]}) == [("HostConfig.GroupAdd", ["1"], ["2"])]
    changed = _cli_diff({"memory": "64m", "restart_policy": "on-failure", "restart_retries": 2},
                        {"memory": "32m", "restart_policy": "always"})
    assert changed == [("HostConfig.Memory", 64 << 20, 32 << 20),
                       ("HostConfig.RestartPolicy", ["on-failure", 2], ["always", 0])]


def test_what_update_changes_in_place_comes_from_the_table():
    current = HostConfig(memory=64 << 20)
    want = HostConfig(memory=96 << 20, restart_policy=RestartPolicy("always"), group_add=["1"])
    changes = in_place_changes({"memory", "restart_retries"}, want, current)
    assert changes is not None and changes.memory == 96 << 20 and changes.restart_policy.name == "always"
    assert changes.memory_swap is None and changes.nano_cpus is None
    assert in_place_changes({"memory", "groups"}, want, current) is None  # groups is not updatable: recreate
    assert in_place_changes({"memory"}, HostConfig(memory=1 << 20), current) is None  # update would refuse it
    assert in_place_changes(set(), want, current) is None
