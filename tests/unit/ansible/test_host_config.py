"""The logic of the pycontainer_config and pycontainer_cgroup modules (the roles' building blocks).

The cgroup plans run against a fake hierarchy in a temporary directory: plain files stand in for the kernel's
(so the v2 branch, which this machine cannot show for real, is exercised too)."""

from __future__ import annotations

import json
import os
import re

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible import cgroup as cg
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.config import manage_config, merge
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument

# --- pycontainer_config ----------------------------------------------------------------------------------


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_merge_keeps_other_keys_and_one_spelling(tmp_path):
    path = write(tmp_path / "engine.json", {"registry-mirrors": ["http://m"], "log-driver": "none"})
    change = merge(path, {"log_driver": "json-file", "log_opts": {"max-size": "1m"}})
    assert change.after == {"registry-mirrors": ["http://m"], "log_driver": "json-file",
                            "log_opts": {"max-size": "1m"}}
    assert change.changed_keys == ["log_driver", "log_opts"] and change.changed


def test_merge_same_values_is_no_change_whatever_the_layout(tmp_path):
    path = tmp_path / "engine.json"
    path.write_text('{ "log_level":   "debug" }')
    change = merge(str(path), {"log_level": "debug"})
    assert not change.changed and change.changed_keys == []


def test_none_removes_a_key(tmp_path):
    path = write(tmp_path / "engine.json", {"cgroup_parent": "fleet", "log_level": "info"})
    change = merge(path, {"cgroup_parent": None, "bridge_name": None})
    assert change.after == {"log_level": "info"} and change.changed_keys == ["cgroup_parent"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"log_driver": "journald"}, "no log driver named 'journald'"),
    ({"log_opts": {"compress": "true"}}, "compress cannot be true when max-size is not set"),
    ({"log_opts": {"max-file": "3"}}, "max-file can only be set if max-size is set"),
    ({"log_level": "loud"}, 'invalid log level "loud"'),
    ({"log_format": "xml"}, 'invalid log format "xml"'),
    ({"no_such_key": 1}, "unknown keys no_such_key"),
    ({"log_opts": {"max-file": 3}}, "log_opts must be of type dict[str, str]"),
    ({"cgroup_parent": "../up"}, "is not a cgroup path"),
])
def test_the_engine_rules_refuse_bad_settings(tmp_path, settings, message):
    path = write(tmp_path / "engine.json", {})
    with pytest.raises(InvalidArgument, match=None) as caught:
        merge(path, settings)
    assert message in str(caught.value)


def test_manage_config_creates_then_is_idempotent_and_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "etc" / "engine.json")
    params = {"config": path, "settings": {"log_opts": {"max-size": "10m", "max-file": "3"}}, "mode": "0640"}
    check = manage_config(params, check_mode=True)
    assert check["changed"] and not os.path.exists(path)
    first = manage_config(params, check_mode=False)
    assert first["changed"] and first["actions"] == [f"Created {path} (log_opts)"]
    assert first["log_config"] == {"driver": "json-file", "max_size": 10_000_000, "max_file": 3, "compress": False}
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    assert first["engine_config"]["log_opts"] == {"max-size": "10m", "max-file": "3"}
    again = manage_config(params, check_mode=False)
    assert not again["changed"] and again["actions"] == []
    os.chmod(path, 0o600)
    assert manage_config(params, check_mode=False)["actions"] == [f"Set mode 0640 on {path}"]


# --- pycontainer_cgroup ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("512m", 512 << 20), ("2g", 2 << 30), ("1.5g", 3 << 29), ("4096", 4096), ("10kb", 10 << 10),
    ("max", -1), ("0", -1), ("-1", -1), (None, None), ("", None),
])
def test_parse_memory(text, value):
    assert cg.parse_memory(text) == value


def test_parse_memory_refuses_garbage():
    with pytest.raises(InvalidArgument, match="invalid memory_max"):
        cg.parse_memory("lots")


def test_limits_from_params():
    limits = cg.limits_from_params({"memory_max": "1g", "cpus": 1.5, "cpu_weight": 50, "pids_max": 0})
    assert limits == cg.CgroupLimits(memory=1 << 30, cpu_weight=50, cpu_quota_us=150_000, pids=-1)
    assert cg.limits_from_params({"cpus": 0}).cpu_quota_us == -1
    with pytest.raises(InvalidArgument, match="cpu_weight"):
        cg.limits_from_params({"cpu_weight": 0})


def test_unmounted_v1_controllers_leaves_out_mounted_disabled_and_v2_bound():
    layout = cg.Layout("hybrid", {"cpu": "/c/cpu", "cpuacct": "/c/cpuacct", "memory": "/c/memory"}, "/c/unified")
    proc_cgroups = ("#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                    "cpu\t2\t1\t1\ncpuacct\t3\t1\t1\nmemory\t4\t1\t1\npids\t0\t1\t1\nfreezer\t0\t1\t1\n"
                    "blkio\t0\t1\t0\ndevices\t0\t1\t1\n")
    assert cg.unmounted_v1_controllers(layout, proc_cgroups, {"devices"}) == ["freezer", "pids"]


def fake_v2(root) -> cg.Layout:
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids hugetlb\n")
    (root / "cgroup.subtree_control").write_text("memory\n")
    return cg.Layout("v2", {}, str(root))


def test_v2_plan_enables_controllers_down_to_the_parent_and_sets_limits(tmp_path):
    layout = fake_v2(tmp_path)
    parent = cg.ParentCgroup("fleet", layout)
    plan = parent.plan_present(cg.CgroupLimits(memory=256 << 20, cpu_weight=50, cpu_quota_us=150_000, pids=99),
                               mount_controllers=True)
    descriptions = [d for d, _action in plan.steps]
    assert descriptions[0] == f"Enabled cpu cpuset pids io in {tmp_path}/cgroup.subtree_control"
    assert descriptions[1] == f"Created cgroup {tmp_path}/fleet with the engine's controllers enabled below it"
    assert descriptions[2:] == [
        f"Set memory.max {256 << 20} on {tmp_path}/fleet", f"Set cpu.weight 50 on {tmp_path}/fleet",
        f"Set cpu.max 150000 100000 on {tmp_path}/fleet", f"Set pids.max 99 on {tmp_path}/fleet"]
    # The kernel appends to subtree_control and makes the interface files; plain files get the write itself.
    for _description, action in plan.steps[:2]:
        action()
    for name in ("memory.max", "cpu.weight", "cpu.max", "pids.max"):
        (tmp_path / "fleet" / name).write_text("")
    for _description, action in plan.steps[2:]:
        action()
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +cpuset +pids +io"
    assert (tmp_path / "fleet" / "cpu.max").read_text() == "150000 100000"
    assert cg.module_limits(parent.read_limits()) == {"memory_max": 256 << 20, "cpu_weight": 50,
                                                      "cpu_quota_us": 150_000, "pids_max": 99}


def test_v2_limits_read_back_equal_mean_no_change(tmp_path):
    layout = fake_v2(tmp_path)
    (tmp_path / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for name, text in {"memory.max": "max\n", "cpu.weight": "100\n", "cpu.max": "max 100000\n", "pids.max": "max\n",
                       "cgroup.controllers": "", "cgroup.subtree_control": ""}.items():
        (fleet / name).write_text(text)
    plan = cg.ParentCgroup("fleet", layout).plan_present(
        cg.limits_from_params({"memory_max": "max", "cpus": 0, "cpu_weight": 100, "pids_max": 0}),
        mount_controllers=True)
    assert plan.steps == []


def test_absent_refuses_while_containers_are_under_the_parent(tmp_path):
    layout = fake_v2(tmp_path)
    (tmp_path / "fleet" / "pycontainer-abc").mkdir(parents=True)
    with pytest.raises(cg.CgroupError, match="still holds pycontainer-abc"):
        cg.ParentCgroup("fleet", layout).plan_absent()


@pytest.mark.parametrize("name", ["", "/", "../x", "a/../b", "has space"])
def test_bad_parent_names(tmp_path, name):
    with pytest.raises(InvalidArgument, match="invalid cgroup name"):
        cg.ParentCgroup(name, fake_v2(tmp_path))


def test_the_engines_default_parent_is_refused():
    with pytest.raises(InvalidArgument, match="engine's own default parent"):
        cg.manage_cgroup({"name": "pycontainer"}, check_mode=True)


def test_config_with_a_bad_bridge_subnet_is_refused_and_not_written(tmp_path):
    path = write(tmp_path / "engine.json", {"log_level": "info"})
    with pytest.raises(InvalidArgument, match=r"bridge_subnet 'ten\.0/8' is not an IPv4 subnet"):
        manage_config({"config": path, "settings": {"bridge_subnet": "ten.0/8"}}, check_mode=False)
    assert json.loads((tmp_path / "engine.json").read_text()) == {"log_level": "info"}


def test_config_claimed_by_another_root_is_a_conflict_in_check_mode_too(tmp_path, monkeypatch):
    from ansible_collections.pycontainer.engine.plugins.module_utils.errors import Conflict
    from ansible_collections.pycontainer.engine.plugins.module_utils.network import claims

    other = tmp_path / "other-root"
    other.mkdir()
    monkeypatch.setattr(claims, "CLAIMS_DIR", str(tmp_path / "claims"))
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "subnets.json").write_text(json.dumps({"roots": {str(other): {
        "bridge": "teambr", "table": "team", "subnets": {"10.77.0.0/24": "teambr"}}}}))
    path = write(tmp_path / "engine.json", {})
    mine = str(tmp_path / "my-root")
    for settings, message in (({"bridge_name": "teambr"}, "bridge_name teambr is used by engine root"),
                              ({"nft_table": "team"}, "nft_table team is used by engine root"),
                              ({"bridge_subnet": "10.77.0.0/16"}, "bridge_subnet 10.77.0.0/16 is used by")):
        for check_mode in (True, False):
            with pytest.raises(Conflict, match=re.escape(message)):
                manage_config({"config": path, "root": mine, "settings": settings}, check_mode=check_mode)
    assert json.loads((tmp_path / "engine.json").read_text()) == {}
    # The owner itself may write its own names; free values pass.
    assert manage_config({"config": path, "root": str(other), "settings": {"bridge_name": "teambr"}},
                         check_mode=True)["changed"]
    assert manage_config({"config": path, "root": mine, "settings": {"bridge_subnet": "10.78.0.0/24"}},
                         check_mode=False)["changed"]
