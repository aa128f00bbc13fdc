"""`--group-add` / the module's ``groups`` (Docker's HostConfig.GroupAdd), added through the option table alone:
the container's processes (exec'd ones too) get the supplementary groups, names resolved in the container's own
/etc/group, numbers taken as they are; an unknown name fails the start with Docker's words."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from tests.fixtures.images import Dir, File, Symlink, busybox_config, busybox_rootfs
from tests.integration import test_container_module
from tests.integration.helpers import Cli
from tests.integration.test_container_module import _check_then_real, _inspect, _run

setup = test_container_module.setup  # its fixture: an engine root with busybox pulled, and the module's args

UNKNOWN = "Unable to find group nosuch: no matching entries in group file"


def _groups(text: str) -> set[str]:
    return set(text.split())


def test_run_gives_the_process_the_added_groups_by_number_and_by_image_name(cli: Cli):
    proc = cli("run", "--rm", "--network", "none", "--group-add", "1234", "--group-add", "www-data", "busybox",
               "id", "-G")
    assert proc.returncode == 0, proc.stderr
    assert _groups(proc.stdout) == {"0", "33", "1234"}  # www-data is 33 in the image's /etc/group
    # Another user keeps its own primary group and gets the added ones.
    proc = cli("run", "--rm", "--network", "none", "--user", "nobody", "--group-add", "daemon", "busybox",
               "id", "-G")
    assert proc.returncode == 0 and _groups(proc.stdout) == {"65534", "1"}, proc.stdout + proc.stderr


def test_exec_gets_the_added_groups_and_inspect_shows_them(cli: Cli):
    cli("run", "-d", "--name", "grp", "--network", "none", "--group-add", "www-data", "--group-add", "4321",
        "busybox", "sleep", "300", check=True)
    try:
        assert _groups(cli("exec", "grp", "id", "-G", check=True).stdout) == {"0", "33", "4321"}
        assert _groups(cli("exec", "-u", "nobody", "grp", "id", "-G", check=True).stdout) == {"65534", "33", "4321"}
        host = json.loads(cli("inspect", "grp", check=True).stdout)[0]["HostConfig"]
        assert host["GroupAdd"] == ["www-data", "4321"]
        # `compare` names it by its inspect path; asking for fewer groups than the container has is no change.
        assert cli("compare", "--name", "grp", "--network", "none", "--group-add", "4321", "busybox", "sleep",
                   "300").returncode == 0
        changed = cli("compare", "--name", "grp", "--network", "none", "--group-add", "99", "busybox", "sleep", "300")
        assert changed.returncode == 1
        assert changed.stdout.splitlines() == ['HostConfig.GroupAdd: ["www-data", "4321"] -> ["99"]']
    finally:
        cli("rm", "-f", "grp", check=True)
    cli("create", "--name", "plain", "busybox", "true", check=True)
    assert json.loads(cli("inspect", "plain", check=True).stdout)[0]["HostConfig"]["GroupAdd"] is None
    cli("rm", "plain", check=True)


def test_an_unknown_group_name_fails_the_start_as_docker_does(cli: Cli):
    proc = cli("run", "--rm", "--network", "none", "--group-add", "nosuch", "busybox", "true")
    assert proc.returncode == 125 and UNKNOWN in proc.stderr, proc.stdout + proc.stderr
    cli("create", "--name", "nogrp", "--network", "none", "--group-add", "nosuch", "busybox", "true", check=True)
    proc = cli("start", "nogrp")
    assert proc.returncode == 1 and UNKNOWN in proc.stderr
    assert json.loads(cli("inspect", "nogrp", check=True).stdout)[0]["State"]["Error"] == UNKNOWN
    cli("rm", "-f", "nogrp", check=True)


def test_a_hostile_images_group_file_link_is_resolved_inside_the_image(cli: Cli, oci_builder):
    """The image's /etc/group is a link to an absolute path where the host has a group file naming mallory 4242;
    the image has its own file at that path naming mallory 1111. Only the image's may count."""
    host_dir = tempfile.mkdtemp(prefix="pycontainer-grp-", dir="/tmp")
    try:
        with open(os.path.join(host_dir, "group"), "w") as f:
            f.write("mallory:x:4242:\n")
        rel = host_dir.lstrip("/")
        hostile = [Dir(rel), File(rel + "/group", "mallory:x:1111:\n"),
                   Symlink("etc/group", host_dir + "/group")]
        ref, _built = oci_builder.push("hostile/grouplink:v1", [busybox_rootfs(), hostile], busybox_config())
        proc = cli("run", "--rm", "--network", "none", "--group-add", "mallory", ref, "id", "-G")
        assert proc.returncode == 0 and _groups(proc.stdout) == {"0", "1111"}, proc.stdout + proc.stderr
    finally:
        shutil.rmtree(host_dir)


def test_module_groups_create_idempotent_change_recreates_and_check_mode(setup):
    cli, engine_args = setup
    base = {"name": "grpmod", "image": "busybox", "command": "sleep 300", "network_mode": "none", "stop_timeout": 1}
    first = _check_then_real(cli, engine_args, **base, groups=[1234, "www-data"])
    assert first["actions"] == ["Created container grpmod", "Started container grpmod"]
    assert _inspect(cli, "grpmod")["HostConfig"]["GroupAdd"] == ["1234", "www-data"]
    first_id = first["container"]["Id"]
    pid = _inspect(cli, "grpmod")["State"]["Pid"]
    with open(f"/proc/{pid}/status") as f:
        groups = next(line for line in f if line.startswith("Groups:")).split()[1:]
    assert set(groups) == {"33", "1234"}  # the kernel's view of the container's process
    again = _check_then_real(cli, engine_args, **base, groups=["www-data", "1234"])
    assert again["changed"] is False and again["actions"] == []
    fewer = _check_then_real(cli, engine_args, **base, groups=["1234"])  # compared as community.docker: a set,
    assert fewer["changed"] is False                                     # more present is fine
    changed = _check_then_real(cli, engine_args, **base, groups=["1234", "4321"])
    assert changed["actions"] == ["Removed container grpmod", "Created container grpmod", "Started container grpmod"]
    assert changed["diff"]["before"]["groups"] == ["1234", "www-data"]
    assert changed["diff"]["after"]["groups"] == ["1234", "4321"]
    assert changed["differences"] == [{"name": "groups", "actual": ["1234", "www-data"], "desired": ["1234", "4321"]}]
    assert changed["container"]["Id"] != first_id
    assert _inspect(cli, "grpmod")["HostConfig"]["GroupAdd"] == ["1234", "4321"]
    rc, result = _run(engine_args, **base, state="absent")
    assert rc == 0 and result["changed"] is True
