"""The monitor's side of a container lives below ``container/``: the lifecycle object is built from the config
alone, and supervision/ and runtime/lifecycle.py import nothing of the layers above them (issue 13)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import load_config
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import ContainerNotFound
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    new_container_id,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.lifecycle import Lifecycle

PACKAGE = "ansible_collections.pycontainer.engine.plugins.module_utils"
MODULE_UTILS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "module_utils")


def _imports(relpath: str) -> set[str]:
    """Every module ``relpath`` imports (function-local and TYPE_CHECKING imports too), as dotted names
    relative to module_utils."""
    path = os.path.join(MODULE_UTILS, relpath)
    package = os.path.dirname(relpath).replace("/", ".").split(".") if os.path.dirname(relpath) else []
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            prefix = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if node.module:
                found.add(prefix)
            found.update(f"{prefix}.{alias.name}".lstrip(".") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE + "."):
            found.add(node.module[len(PACKAGE) + 1:])
    return found


def _owned(folder: str) -> list[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(os.path.join(MODULE_UTILS, folder))
                  if name.endswith(".py"))


@pytest.mark.parametrize("relpath", [*_owned("supervision"), "runtime/lifecycle.py"])
def test_the_monitors_side_imports_nothing_above_it(relpath):
    above = ("container", "engine", "system", "ansible", "cli")
    bad = sorted(name for name in _imports(relpath) if name.split(".")[0] in above)
    assert bad == [], f"{relpath} imports {bad}"


def test_the_supervisor_starts_the_monitor_without_importing_it():
    assert "supervision.monitor" not in _imports("supervision/supervisor.py")


@pytest.mark.parametrize("relpath", _owned("container"))
def test_container_verbs_do_not_reach_up_or_around(relpath):
    names = _imports(relpath)
    assert not [n for n in names if n.split(".")[0] in ("system", "engine", "ansible", "cli")], names
    if relpath.endswith(("compare.py", "update.py")):
        assert "container.service" not in names


def test_importing_the_monitor_loads_no_engine_and_no_container_verbs():
    code = ("import sys, json; from ansible_collections.pycontainer.engine.plugins.module_utils.supervision "
            "import monitor; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = [m for m in json.loads(out) if m.startswith(PACKAGE + ".")]
    assert f"{PACKAGE}.supervision.monitor" in loaded
    assert not [m for m in loaded if m[len(PACKAGE) + 1:].split(".")[0] in ("engine", "container", "system")]


def _lifecycle(tmp_path) -> Lifecycle:
    return Lifecycle.from_config(load_config(root=str(tmp_path / "root")))


def _create(lifecycle: Lifecycle, name: str, **hc):
    config = ContainerConfig(id=new_container_id(), name=name, created="2026-01-01T00:00:00Z",
                             image="sha256:" + "a" * 64, image_name="busybox", entrypoint=None, cmd=["sh"],
                             env=[], working_dir="/", user="", hostname="h")
    return lifecycle.store.create(config)


def _events(lifecycle: Lifecycle) -> list[tuple[str, str]]:
    return [(e["Action"], e["Actor"]["Attributes"].get("name", "")) for e in lifecycle.events.read()]


def test_built_from_the_config_alone_it_looks_up_and_records_events(tmp_path):
    lifecycle = _lifecycle(tmp_path)
    record = _create(lifecycle, "web")
    assert lifecycle.lookup("web").id == record.id
    assert lifecycle.lookup(record.id[:12]).id == record.id
    with pytest.raises(ContainerNotFound):
        lifecycle.lookup("nope")
    lifecycle.event(record, "create")
    assert ("create", "web") in _events(lifecycle)
    assert os.stat(str(tmp_path / "root")).st_mode & 0o777 == 0o700  # the root made root-only, as Engine does


def test_stopped_while_restarting_is_recorded_as_a_manual_stop(tmp_path):
    lifecycle = _lifecycle(tmp_path)
    record = _create(lifecycle, "web")
    record.state.status = "restarting"
    lifecycle.record_stopped_while_restarting(record)
    state = lifecycle.store.load(record.id).state
    assert (state.status, state.manually_stopped) == ("exited", True)


def test_remove_exited_removes_the_record_and_says_destroy(tmp_path):
    lifecycle = _lifecycle(tmp_path)
    record = _create(lifecycle, "gone")
    doomed = lifecycle.remove_exited(record, defer_delete=True)
    with pytest.raises(ContainerNotFound):
        lifecycle.lookup("gone")
    assert ("destroy", "gone") in _events(lifecycle)
    lifecycle.store.delete_removed(doomed)
