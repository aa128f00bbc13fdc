"""The module's comparison: one normal form per option, only the options a task sets (container/compare.py),
and the checks `update` makes before touching a container (container/update.py)."""

from __future__ import annotations

import dataclasses

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.container import (
    asked_options,
    create_options,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.container.compare import (
    UPDATABLE_OPTIONS,
    Settings,
    option_differences,
    option_view,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.container.update import UpdateOptions
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerRecord,
    ContainerState,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import RestartPolicy

IMAGE_ID = "sha256:" + "b" * 64


def _record_from(params: dict) -> ContainerRecord:
    """A record as create stores it for these module parameters (over image defaults)."""
    options = create_options({"name": "c", "image": "busybox", **params})
    config = ContainerConfig(
        id="a" * 64, name="c", created="2026-01-01T00:00:00Z", image=IMAGE_ID, image_name="busybox",
        entrypoint=None, cmd=options.command or ["sh"], env=["PATH=/bin", "IMAGE=1", *options.env],
        working_dir=options.working_dir or "/", user=options.user or "", hostname="h",
        labels={"from.image": "x", **options.labels}, host_config=options.host_config, tty=options.tty,
        open_stdin=options.open_stdin, stop_signal=options.stop_signal, stop_timeout=options.stop_timeout)
    return ContainerRecord(config=config, state=ContainerState(status="running"), directory="/nonexistent")


def _diff(created_with: dict, asked_now: dict) -> list[str]:
    record = _record_from(created_with)
    params = {"name": "c", "image": "busybox", **asked_now}
    asked = asked_options(params)
    env_keys, label_keys = list(params.get("env") or {}), list(params.get("labels") or {})
    actual = option_view(Settings.of_record(record), asked, env_keys, label_keys)
    desired = option_view(Settings.of_options(create_options(params), IMAGE_ID), asked, env_keys, label_keys)
    return [d.name for d in option_differences(actual, desired)]


@pytest.mark.parametrize(("created", "now"), [
    ({"published_ports": ["8080:80"]}, {"published_ports": ["0.0.0.0:8080:80/tcp"]}),
    ({"published_ports": ["80", "9000:90/udp"]}, {"published_ports": ["9000:90/udp", "80/tcp"]}),
    ({"exposed_ports": ["5000"]}, {"exposed_ports": ["5000/tcp"]}),
    ({"env": {"A": 1, "B": True, "C": "x"}}, {"env": {"C": "x", "B": "true", "A": "1"}}),
    ({"labels": {"n": 1.5}}, {"labels": {"n": "1.5"}}),
    ({"memory": "64m", "memory_swap": "1g"}, {"memory": "67108864", "memory_swap": "1024m"}),
    ({"pids_limit": -1}, {"pids_limit": 0}),
    ({"cpus": 0.5}, {"cpus": 0.50}),
    ({"volumes": ["/srv/x:/data", "vol:/v:ro", "/anon"]}, {"volumes": ["/anon/", "vol:/v/:ro", "/srv/x/:/data:rw"]}),
    ({"tmpfs": ["/run:size=64m"]}, {"tmpfs": ["/run/:size=67108864"]}),
    ({"mounts": [{"target": "/m", "type": "tmpfs", "tmpfs_size": "1m"}]},
     {"mounts": [{"target": "/m/", "type": "tmpfs", "tmpfs_size": "1024k"}]}),
    ({"capabilities": ["NET_ADMIN"], "cap_drop": ["chown"]}, {"capabilities": ["cap_net_admin"],
                                                              "cap_drop": ["CAP_CHOWN"]}),
    ({"devices": ["/dev/fuse"]}, {"devices": ["/dev/fuse:/dev/fuse:rwm"]}),
    ({"command": "sleep 300"}, {"command": ["sleep", "300"]}),
    ({"working_dir": "/srv/"}, {"working_dir": "/srv"}),
    ({"etc_hosts": {"a": "192.0.2.1", "b": "192.0.2.2"}}, {"etc_hosts": {"b": "192.0.2.2", "a": "192.0.2.1"}}),
    ({"kill_signal": "TERM"}, {"kill_signal": "SIGTERM"}),
    ({"restart_policy": "always"}, {"restart_policy": "always"}),
    ({"ulimits": ["nofile:1024"]}, {"ulimits": ["nofile:1024:1024"]}),
    ({"networks": [{"name": "n1", "aliases": ["b", "a"]}]}, {"networks": [{"name": "n1", "aliases": ["a", "b"]}]}),
])
def test_equivalent_spellings_compare_equal(created, now):
    assert _diff(created, now) == []


def test_only_what_the_task_sets_is_compared():
    created = {"memory": "64m", "env": {"A": "1"}, "privileged": True, "published_ports": ["80"]}
    # Nothing set: the image's defaults and the container's own settings are left alone.
    assert _diff(created, {}) == []
    # env: only the keys set (the image's IMAGE and PATH are not the task's business).
    assert _diff(created, {"env": {"A": "1"}}) == []
    assert _diff(created, {"env": {"A": "2"}}) == ["env"]
    assert _diff(created, {"labels": {"from.image": "x"}}) == []
    assert _diff(created, {"privileged": False, "memory": "32m"}) == ["memory", "privileged"]
    assert _diff(created, {"published_ports": ["127.0.0.1::80"]}) == ["published_ports"]
    assert _diff(created, {"command": ["sh"]}) == []  # the image's Cmd, stated
    assert _diff(created, {"command": "sh -c true"}) == ["command"]
    # restart_retries comes with restart_policy: on-failure:3 -> always is one change (in place).
    assert set(_diff({"restart_policy": "on-failure", "restart_retries": 3}, {"restart_policy": "always"})) == {
        "restart_policy", "restart_retries"} <= UPDATABLE_OPTIONS


def test_update_options_checks_as_docker_update():
    record = _record_from({"memory": "64m", "memory_swap": "128m"})
    host = record.config.host_config
    new = UpdateOptions(memory=96 << 20).applied_to(host)
    assert (new.memory, new.memory_swap, host.memory) == (96 << 20, 128 << 20, 64 << 20)  # a copy
    with pytest.raises(InvalidArgument, match="memoryswap limit should be larger"):
        UpdateOptions(memory=256 << 20).applied_to(host)
    with pytest.raises(InvalidArgument, match="Minimum memory limit"):
        UpdateOptions(memory=1 << 20).applied_to(host)
    with pytest.raises(InvalidArgument, match="maximum retry count"):
        UpdateOptions(restart_policy=RestartPolicy("always", 3)).applied_to(host)
    auto = dataclasses.replace(host, auto_remove=True)
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        UpdateOptions(restart_policy=RestartPolicy("always")).applied_to(auto)
    assert UpdateOptions().empty() and not UpdateOptions(pids_limit=0).empty()
