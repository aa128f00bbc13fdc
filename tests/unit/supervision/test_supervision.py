"""Pure pieces of supervision: restart decisions, log driver options and rotation, time arguments, the wire
format, signal names, ps filters and the desired/actual comparison."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.container.compare import differences
from ansible_collections.pycontainer.engine.plugins.module_utils.container.filters import (
    filter_containers,
    parse_filters,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.container.options import CreateOptions
from ansible_collections.pycontainer.engine.plugins.module_utils.container.signals import parse_signal
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerRecord,
    ContainerState,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime import logs
from ansible_collections.pycontainer.engine.plugins.module_utils.supervision import protocol
from ansible_collections.pycontainer.engine.plugins.module_utils.supervision.monitor import should_restart


@pytest.mark.parametrize(("policy", "retries", "code", "count", "stopped", "expected"), [
    ("no", 0, 1, 0, False, False),
    ("always", 0, 0, 50, False, True),
    ("always", 0, 1, 0, True, False),          # stopped by a user
    ("unless-stopped", 0, 0, 0, False, True),
    ("on-failure", 0, 0, 0, False, False),     # success is not a failure
    ("on-failure", 0, 2, 99, False, True),     # 0 retries = unlimited
    ("on-failure", 2, 2, 1, False, True),
    ("on-failure", 2, 2, 2, False, False),
])
def test_restart_decisions_follow_dockers_restart_manager(policy, retries, code, count, stopped, expected):
    assert should_restart(policy, retries, code, count, stopped) is expected


def test_log_options_are_validated_like_dockers():
    config = logs.LogConfig.parse("json-file", {"max-size": "10k", "max-file": "3", "compress": "true"})
    assert (config.max_size, config.max_file, config.compress) == (10_000, 3, True)
    assert logs.LogConfig.parse("", {}).driver == "json-file"
    for driver, options in (("syslog", {}), ("json-file", {"bogus": "1"}), ("json-file", {"max-file": "0"}),
                            ("json-file", {"max-file": "2"}), ("json-file", {"compress": "true"}),
                            ("none", {"max-size": "1k"}), ("json-file", {"max-size": "lots"})):
        with pytest.raises(InvalidArgument):
            logs.LogConfig.parse(driver, options)


def test_json_file_writer_lines_partial_lines_and_rotation(tmp_path):
    path = str(tmp_path / "c-json.log")
    writer = logs.JsonFileWriter(path, logs.LogConfig(max_size=400, max_file=3, compress=True))
    writer.write("stdout", b"one\ntw")
    writer.write("stderr", b"err\n")
    writer.write("stdout", b"o\n")
    with open(path) as f:
        first = [json.loads(line) for line in f]
    assert [(e["stream"], e["log"]) for e in first] == [("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n")]
    assert first[0]["time"].endswith("Z") and len(first[0]["time"].split(".")[1]) == 10
    for i in range(40):
        writer.write("stdout", f"line {i}\n".encode())
    writer.write("stdout", b"no newline")
    writer.close()
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz"]
    assert os.path.getsize(path) <= 400
    with gzip.open(path + ".1.gz") as f:
        assert json.loads(f.readline())["log"].startswith("line")
    entries = logs.read_entries(path)
    assert entries[-1].text == "no newline" and entries[-2].text == "line 39\n"
    texts = [e.text for e in entries]
    assert texts == sorted(texts, key=lambda t: int(t.split()[1]) if t.startswith("line") else 99)


def test_long_lines_are_cut_at_16k_like_dockers(tmp_path):
    path = str(tmp_path / "c-json.log")
    writer = logs.JsonFileWriter(path, logs.LogConfig())
    writer.write("stdout", b"x" * (logs.PARTIAL_LIMIT + 10) + b"\n")
    writer.close()
    assert [len(e.text) for e in logs.read_entries(path)] == [logs.PARTIAL_LIMIT, 11]


def test_time_arguments():
    assert logs.parse_time_arg("1700000000") == 1700000000.0
    assert logs.parse_time_arg("10m", now=1000.0) == 400.0
    assert logs.parse_time_arg("1h30m", now=10000.0) == 4600.0
    assert logs.parse_time_arg("2024-01-02") == logs.parse_time_arg("2024-01-02T00:00:00Z")
    with pytest.raises(InvalidArgument):
        logs.parse_time_arg("yesterday")


def test_frames_survive_arbitrary_splits():
    data = protocol.control({"op": "x"}) + protocol.frame(protocol.STDOUT, b"abc") + protocol.frame(b"C")
    buffer = bytearray()
    frames = []
    for byte in data:
        buffer.append(byte)
        frames += protocol.split_frames(buffer)
    assert frames == [(b"J", b'{"op":"x"}'), (b"1", b"abc"), (b"C", b"")] and not buffer


def test_signal_names():
    assert parse_signal("KILL") == parse_signal("SIGKILL") == parse_signal("9") == parse_signal("sigkill") == 9
    for bad in ("NOPE", "0", "99"):
        with pytest.raises(InvalidArgument):
            parse_signal(bad)


def _record(name: str, status: str = "running", code: int = 0, labels=None, **host) -> ContainerRecord:
    config = ContainerConfig(id=name * 32 if len(name) == 2 else (name + "0" * 64)[:64], name=name,
                             created="2026-01-01T00:00:00Z", image="sha256:" + "b" * 64, image_name="busybox",
                             entrypoint=None, cmd=["sleep", "1"], env=["PATH=/bin", "A=1"], working_dir="/",
                             user="", hostname="h", labels=dict(labels or {}), host_config=HostConfig(**host))
    return ContainerRecord(config=config, state=ContainerState(status=status, exit_code=code), directory="/nonexistent")


def test_ps_filters_or_within_a_key_and_across_keys():
    records = [_record("ab", labels={"tier": "web"}), _record("cd", "exited", 2, {"tier": "db"}),
               _record("ef", "exited", 0)]

    def names(*items):
        return [r.name for r in filter_containers(records, parse_filters(list(items)))]

    assert names("status=exited") == ["cd", "ef"]
    assert names("status=exited", "status=running") == ["ab", "cd", "ef"]
    assert names("status=exited", "label=tier") == ["cd"]
    assert names("exited=2") == ["cd"] and names("label=tier=web") == ["ab"] and names("name=^e") == ["ef"]
    assert names("id=cdcd") == ["cd"] and names("ancestor=busybox") == ["ab", "cd", "ef"]
    for bad in ("status=sleeping", "nokey=1", "exited=x", "novalue"):
        with pytest.raises(InvalidArgument):
            parse_filters([bad])


def test_comparison_ignores_what_was_not_asked_for():
    record = _record("ab", memory=64 << 20)
    same = CreateOptions(image="busybox", env=["A=1"], host_config=HostConfig(memory=64 << 20))
    assert differences(record, same, record.config.image) == []
    changed = CreateOptions(image="busybox", command=["sleep", "2"], env=["A=2"],
                            host_config=HostConfig(memory=32 << 20))
    found = {d.name: (d.actual, d.desired) for d in differences(record, changed, "sha256:other")}
    assert found == {"Image": (record.config.image, "sha256:other"),
                     "Config.Cmd": (["sleep", "1"], ["sleep", "2"]), "Config.Env.A": ("1", "2"),
                     "HostConfig.Memory": (64 << 20, 32 << 20)}
