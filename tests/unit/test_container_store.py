import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.container_store import (
    ContainerConfig,
    ContainerStore,
    new_container_id,
    process_start_time,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    Conflict,
    ContainerNotFound,
    InvalidArgument,
)


def _config(name: str = "", created: str = "2026-01-01T00:00:00Z") -> ContainerConfig:
    return ContainerConfig(
        id=new_container_id(), name=name, created=created, image="sha256:" + "a" * 64, image_name="busybox",
        entrypoint=None, cmd=["sh"], env=[], working_dir="/", user="", hostname="h")


def test_names_are_unique_with_dockers_conflict_message(tmp_path):
    store = ContainerStore(str(tmp_path))
    first = store.create(_config("web"))
    with pytest.raises(Conflict, match=f'The container name "/web" is already in use by container "{first.id}"'):
        store.create(_config("web"))


def test_name_is_free_again_after_removal(tmp_path):
    store = ContainerStore(str(tmp_path))
    store.remove(store.create(_config("web")))
    assert store.create(_config("web")).name == "web"
    assert not [e for e in os.listdir(tmp_path) if e.startswith(".removing-")]


def test_invalid_name_is_refused(tmp_path):
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        ContainerStore(str(tmp_path)).create(_config("-bad"))


def test_lookup_by_name_id_and_prefix(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    assert store.lookup("web").id == record.id
    assert store.lookup(record.id).id == record.id
    assert store.lookup(record.id[:8]).id == record.id
    with pytest.raises(ContainerNotFound, match="No such container: nope"):
        store.lookup("nope")


def test_generated_names_and_listing_newest_first(tmp_path):
    store = ContainerStore(str(tmp_path))
    old = store.create(_config(created="2026-01-01T00:00:00Z"))
    new = store.create(_config(created="2026-01-02T00:00:00Z"))
    assert "_" in old.name and old.name != new.name
    assert [r.id for r in store.list()] == [new.id, old.id]


def test_running_record_whose_process_is_gone_reads_as_exited(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    record.state.status, record.state.pid, record.state.pid_start_time = "running", os.getpid(), 1
    store.save_state(record)  # start time 1 cannot be ours: the pid was "reused"
    loaded = store.lookup("web")
    assert (loaded.state.status, loaded.state.exit_code) == ("exited", 255)
    record.state.pid_start_time = process_start_time(os.getpid())
    store.save_state(record)
    assert store.lookup("web").state.status == "running"
