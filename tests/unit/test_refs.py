"""References validated before they become paths, damaged records that still load, and what the engine log
may not hold (command lines with secrets, credentials inside messages)."""

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils import refs
from ansible_collections.pycontainer.engine.plugins.module_utils.engine_log import EngineLog, redact_command
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    Conflict,
    ContainerNotFound,
    InvalidArgument,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerStore,
    check_usable,
    new_container_id,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.volumes import (
    validate_name as validate_volume_name,
)


def _config(name: str = "") -> ContainerConfig:
    return ContainerConfig(
        id=new_container_id(), name=name, created="2026-01-01T00:00:00Z", image="sha256:" + "a" * 64,
        image_name="busybox", entrypoint=None, cmd=["sh"], env=[], working_dir="/", user="", hostname="h")


# -- validators -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref", ["web", "/web", "a1", "web.1_x-y", "abc123", "a" * 64, "0" * 12])
def test_container_refs_that_can_name_a_container(ref):
    assert refs.container_ref(ref) == ref


@pytest.mark.parametrize("ref", ["", "g", "/", "../x", "a/b", "/tmp/" + "a" * 59, "web\n", "-web", ".web",
                                 "web name", "a\x00b", "~", "..", "x" * 3 + "/" + "0" * 60])
def test_refs_that_cannot_name_a_container_are_no_such_container(ref):
    with pytest.raises(ContainerNotFound, match="No such container"):
        refs.container_ref(ref)


def test_full_ids_only_become_paths():
    assert refs.is_container_id("a" * 64)
    for bad in ("A" * 64, "a" * 63, "a" * 65, "a" * 63 + "\n", "/" + "a" * 63, "../" + "a" * 61):
        assert not refs.is_container_id(bad)
        with pytest.raises(ContainerNotFound):
            refs.container_id(bad)


def test_names_follow_dockers_pattern_without_a_trailing_newline():
    assert refs.container_name("/web") == "web"
    for bad in ("web\n", "w", "we/b", "../web", "-web", ""):
        with pytest.raises(InvalidArgument, match=r"(?s)Invalid container name .*only \[a-zA-Z0-9\]"):
            refs.container_name(bad)
    validate_volume_name("vv")
    for bad in ("vv\n", "../v", "a/b", ""):
        with pytest.raises(InvalidArgument, match="invalid characters for a local volume name"):
            validate_volume_name(bad)


# -- the store ----------------------------------------------------------------------------------------------
def _plant(record_dir: str, config: ContainerConfig) -> None:
    os.makedirs(record_dir)
    with open(os.path.join(record_dir, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(config), f)


def test_a_64_character_path_is_not_a_container_id(tmp_path):
    """The old lookup joined any 64-character reference: an absolute one replaced the whole state path."""
    store = ContainerStore(str(tmp_path / "containers"))
    store.create(_config("real"))
    outside = tempfile.mkdtemp(prefix="refs-", dir="/tmp")
    try:
        ref = outside + "/" + "x" * (63 - len(outside))
        assert len(ref) == 64
        _plant(ref, dataclasses.replace(_config("planted"), id=ref))
        base = os.path.relpath(outside, store.directory) + "/"
        relative = base + "y" * (64 - len(base))
        _plant(os.path.join(store.directory, relative), dataclasses.replace(_config("planted2"), id=relative))
        for bad in (ref, relative):
            assert os.path.isfile(os.path.join(store.directory, bad, "config.json"))
            with pytest.raises(ContainerNotFound, match="No such container"):
                store.lookup(bad)
            with pytest.raises(ContainerNotFound):
                store.load(bad)
            assert not store.exists(bad)
    finally:
        shutil.rmtree(outside)


def test_a_name_with_a_trailing_newline_is_refused(tmp_path):
    store = ContainerStore(str(tmp_path))
    with pytest.raises(InvalidArgument):
        store.create(_config("web\n"))
    record = store.create(_config("web"))
    with pytest.raises(InvalidArgument):
        store.rename(record, "other\n")


def test_a_non_hex_reference_never_matches_as_an_id_prefix(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    assert store.lookup(record.id[:5]).id == record.id
    with pytest.raises(ContainerNotFound):
        store.lookup(record.id[:5] + "/")


@pytest.mark.parametrize("damage", ["truncated", "not-an-object", "wrong-types", "other-id", "bad-state",
                                    "nested-garbage"])
def test_damaged_records_load_as_dead_and_keep_their_name(tmp_path, damage):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    config_path = os.path.join(record.directory, "config.json")
    data = dataclasses.asdict(record.config)
    if damage == "truncated":
        text = json.dumps(data)
        pathlib.Path(config_path).write_text(text[: len(text) // 2])
    elif damage == "not-an-object":
        pathlib.Path(config_path).write_text("[1, 2]")
    elif damage == "wrong-types":
        pathlib.Path(config_path).write_text(json.dumps({**data, "created": 5, "env": "A=1"}))
    elif damage == "other-id":
        pathlib.Path(config_path).write_text(json.dumps({**data, "id": "b" * 64}))
    elif damage == "nested-garbage":
        data["host_config"]["mounts"] = [{"no": "fields"}]
        pathlib.Path(config_path).write_text(json.dumps(data))
    else:
        pathlib.Path(record.directory, "state.json").write_text('{"status": "flying", "pid": "x"}')
    loaded = store.lookup("web")
    assert loaded.id == record.id and loaded.name == "web" and loaded.damaged
    assert loaded.state.status == "dead" and "damaged record" in loaded.state.error
    assert [r.id for r in store.list()] == [record.id]
    with pytest.raises(Conflict, match="damaged record"):
        check_usable(loaded)
    with pytest.raises(Conflict):
        store.save_config(loaded)  # never overwritten with the stand-in
    store.remove(loaded)
    assert store.list() == [] and json.loads((tmp_path / "names.json").read_text()) == {}


def test_records_of_a_newer_version_load_whole(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    data = dataclasses.asdict(record.config)
    data["future_field"] = {"x": 1}
    data["host_config"]["future_option"] = True
    data["host_config"]["restart_policy"]["future"] = 1
    data["host_config"]["mounts"] = [{"type": "tmpfs", "source": "", "target": "/t", "future": 2}]
    with open(os.path.join(record.directory, "config.json"), "w") as f:
        json.dump(data, f)
    loaded = store.lookup("web")
    assert not loaded.damaged and loaded.config.host_config.mounts[0].target == "/t"


# -- the log ------------------------------------------------------------------------------------------------
def test_command_lines_keep_flags_and_names_but_not_secret_values():
    argv = ["--root", "/r", "run", "-d", "-e", "PASSWORD=s3cret", "--env=TOKEN=t0k", "-de", "K=v4l", "-e", "HOME",
            "--env-file", "/etc/app.env", "-p", "8080:80", "busybox"]
    text = redact_command(argv, "run", env=["PASSWORD=s3cret", "TOKEN=t0k", "K=v4l", "HOME"])
    for secret in ("s3cret", "t0k", "v4l"):
        assert secret not in text
    assert "-e PASSWORD=***** --env=TOKEN=*****" in text and "K=*****" in text and "-e HOME" in text
    assert "--env-file /etc/app.env -p 8080:80 busybox" in text  # -p of run is a port, not a password
    login = redact_command(["login", "-u", "me", "-p", "hunter2", "r:5000"], "login", secrets=["hunter2"])
    assert login == "login -u me -p ***** r:5000"
    assert "hunter2" not in redact_command(["login", "-phunter2", "r"], "login", secrets=["hunter2"])
    assert "hunter2" not in redact_command(["login", "--password=hunter2", "r"], "login", secrets=["hunter2"])


def test_the_log_never_writes_registered_secrets_or_credentials(tmp_path):
    path = tmp_path / "engine.log"
    log = EngineLog(str(path), level="debug")
    log.add_secret("hunter2", None, "")
    log.add_env(["PASSWORD=s3cret", "HOME", "EMPTY="])
    log.error("login failed for hunter2", command="x PASSWORD=s3cret")
    log.error('token server answered 400: b\'{"token": "eyJabc", "access_token":"eyJdef"}\'')
    log.info("request", header="Authorization: Bearer eyJghi", basic="Basic dXNlcjpodW50ZXIy")
    text = path.read_text()
    for secret in ("hunter2", "s3cret", "eyJabc", "eyJdef", "eyJghi", "dXNlcjpodW50ZXIy"):
        assert secret not in text
    assert "HOME" not in text and text.count("*****") >= 6
