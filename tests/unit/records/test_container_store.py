import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    Conflict,
    ContainerNotFound,
    InvalidArgument,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerStore,
    new_container_id,
    process_start_time,
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


def test_a_live_monitor_is_trusted_even_when_the_container_pid_is_gone(tmp_path):
    from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import monitor_alive

    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    s = record.state
    s.status, s.pid, s.pid_start_time = "running", 999_999_999, 5  # exited, not yet reaped by its monitor
    s.monitor_pid, s.monitor_start_time = os.getpid(), process_start_time(os.getpid())
    store.save_state(record)
    loaded = store.lookup("web")
    assert monitor_alive(loaded.state) and loaded.state.status == "running" and not loaded.reconciled
    s.monitor_start_time += 1  # the monitor's pid now belongs to another process: it died
    store.save_state(record)
    loaded = store.lookup("web")
    assert (loaded.state.status, loaded.state.exit_code, loaded.reconciled) == ("exited", 255, True)


def test_restarting_record_without_its_monitor_reads_as_exited_with_its_last_code(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    record.state.status, record.state.exit_code = "restarting", 3
    store.save_state(record)
    loaded = store.lookup("web")
    assert (loaded.state.status, loaded.state.exit_code) == ("exited", 3)


def test_rename_moves_the_name_and_checks_conflicts(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("old"))
    store.create(_config("taken"))
    with pytest.raises(Conflict):
        store.rename(record, "taken")
    with pytest.raises(InvalidArgument):
        store.rename(record, "-bad")
    store.rename(record, "new")
    assert store.lookup("new").id == record.id and store.lookup("new").name == "new"
    with pytest.raises(ContainerNotFound):
        store.lookup("old")
    assert store.create(_config("old")).name == "old"


def test_deferred_removal_hides_the_record_at_once(tmp_path):
    store = ContainerStore(str(tmp_path))
    record = store.create(_config("web"))
    doomed = store.remove(record, defer_delete=True)
    assert os.path.isdir(doomed) and not store.exists(record.id)
    with pytest.raises(ContainerNotFound):
        store.lookup("web")
    assert store.list() == []  # listing also sweeps removals a dead process left behind
    assert not os.path.exists(doomed)


def test_statuses_read_only_state_files_and_agree_with_list(tmp_path):
    """`info`'s counts: the same statuses as ``list`` (crashes accounted for), damaged states dead."""
    store = ContainerStore(str(tmp_path))
    created = store.create(_config("created"))
    exited = store.create(_config("exited"))
    exited.state.status, exited.state.exit_code = "exited", 3
    store.save_state(exited)
    crashed = store.create(_config("crashed"))  # "running", but neither its process nor its monitor exists
    crashed.state.status, crashed.state.pid, crashed.state.pid_start_time = "running", 2 ** 22 + 7, 1
    crashed.state.monitor_pid, crashed.state.monitor_start_time = 2 ** 22 + 9, 1
    store.save_state(crashed)
    alive = store.create(_config("alive"))  # this test's own process stands in for a running container
    alive.state.status, alive.state.pid = "running", os.getpid()
    alive.state.pid_start_time = process_start_time(os.getpid())
    store.save_state(alive)
    damaged = store.create(_config("damaged"))
    with open(os.path.join(damaged.directory, "state.json"), "w") as f:
        f.write("{not json")
    expected = sorted(r.state.status for r in store.list())
    assert sorted(store.statuses()) == expected == sorted(["created", "exited", "exited", "running", "dead"])
    assert created.id  # (kept: its state file does not exist yet, and it still counts)
