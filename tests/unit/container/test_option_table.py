"""The option table (container/option_table.py) against what it drives: the module's DOCUMENTATION (its own
options and the container_network fragment) must agree with the argument spec the table builds - names, types,
elements, aliases, defaults, choices, suboptions - so the two cannot drift; the CLI flags, the HostConfig fields
and the UpdateOptions fields the table names must exist."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import yaml
from ansible_collections.pycontainer.engine.plugins.doc_fragments.container_network import (
    ModuleDocFragment as NetworkDoc,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.cli import container_commands
from ansible_collections.pycontainer.engine.plugins.module_utils.container import option_table
from ansible_collections.pycontainer.engine.plugins.module_utils.container.options import CreateOptions
from ansible_collections.pycontainer.engine.plugins.module_utils.container.update import UpdateOptions
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig
from ansible_collections.pycontainer.engine.plugins.modules import pycontainer

KEYS = ("type", "elements", "aliases", "default", "choices", "required")


def _documented() -> dict[str, dict]:
    options = dict(yaml.safe_load(pycontainer.DOCUMENTATION)["options"])
    options.update(yaml.safe_load(NetworkDoc.DOCUMENTATION)["options"])
    return options


def _normal(spec: dict) -> dict:
    """The keys both sides state, with Ansible's implicit defaults spelled out."""
    out = {k: spec.get(k) for k in KEYS}
    out["required"] = bool(out["required"])
    out["aliases"] = sorted(out["aliases"] or [])
    sub = spec.get("options") or spec.get("suboptions")
    if sub:
        out["suboptions"] = {name: _normal(s) for name, s in sub.items()}
    return out


def test_documentation_and_table_agree():
    documented = _documented()
    spec = option_table.argument_spec()
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        assert _normal(documented[name]) == _normal(option), name


def test_a_drift_is_caught(monkeypatch):
    """The comparison above sees a changed default, alias or type (it cannot pass whatever the table says)."""
    table = {o.name: o for o in option_table.OPTIONS}
    for change in ({"default": "always"}, {"aliases": ("pull_policy",)}, {"type": "raw"}):
        changed = dataclasses.replace(table["pull"], **change)
        monkeypatch.setattr(option_table, "OPTIONS", tuple(changed if o.name == "pull" else o
                                                           for o in option_table.OPTIONS))
        with pytest.raises(AssertionError):
            test_documentation_and_table_agree()


def test_the_fields_and_flags_the_table_names_exist():
    host_fields = {f.name for f in dataclasses.fields(HostConfig)}
    update_fields = {f.name for f in dataclasses.fields(UpdateOptions)}
    create_fields = {f.name for f in dataclasses.fields(CreateOptions)} - {"host_config"}
    for o in option_table.OPTIONS:
        assert o.comparison in ("strict", "allow_more_present", "ignore"), o.name
        if o.stored:
            assert o.host_field in host_fields or o.create_field in create_fields, o.name
        if o.update:
            assert o.update in update_fields and o.update in host_fields and o.view is not None, o.name
    parser = argparse.ArgumentParser()
    container_commands.register(parser.add_subparsers())
    args = parser.parse_args(["run", "--group-add", "1234", "--group-add", "www-data", "-m", "64m", "--cpus", "1.5",
                              "--restart", "on-failure:2", "-t", "-u", "nobody", "--stop-signal", "INT", "busybox"])
    created = option_table.create_fields_from_cli(args)
    assert created == {"pull": "missing", "user": "nobody", "tty": True, "open_stdin": False, "stop_signal": "INT"}
    host = container_commands._host_config(args)
    assert host.group_add == ["1234", "www-data"] and host.memory == 64 << 20 and host.nano_cpus == 1_500_000_000
    assert (host.restart_policy.name, host.restart_policy.maximum_retry_count) == ("on-failure", 2)
    update = parser.parse_args(["update", "--memory", "1g", "--restart", "always", "c1"])
    assert [o.dest for o in option_table.update_flag_options()] == ["memory", "memory_swap", "cpus", "pids_limit",
                                                                    "restart"]
    assert (update.memory, update.memory_swap, update.restart) == ("1g", None, "always")
    with pytest.raises(SystemExit):  # not updatable: `update` has no such flag
        parser.parse_args(["update", "--group-add", "1", "c1"])
