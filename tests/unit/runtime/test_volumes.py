"""Volumes without a kernel: flag parsing, the volume store (records, references, filters, prune, crash
leftovers, concurrent creators) and the mount points a container gets."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    UnsupportedError,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.events import EventJournal
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerStore,
    new_container_id,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.records.hostconfig import HostConfig, Mount
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.volumes import (
    ANONYMOUS_LABEL,
    VolumeService,
    inspect_volume,
    mount_points,
    parse_filters,
    parse_mount_flag,
    parse_size,
    parse_tmpfs_flag,
    parse_volume_flag,
    uses_volume,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.system.views import volume_row

# --- parsing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("/host:/ctr", ("bind", "/host", "/ctr", False)),
    ("/host:/ctr:ro", ("bind", "/host", "/ctr", True)),
    ("/host/../h2/:/ctr/sub/", ("bind", "/h2", "/ctr/sub", False)),
    ("name:/data", ("volume", "name", "/data", False)),
    ("name:/data:ro,nocopy", ("volume", "name", "/data", True)),
    ("/anon", ("volume", "", "/anon", False)),
    ("/anon:ro", ("volume", "", "/anon", True)),
    ("/h:/c:rw,z,rshared", ("bind", "/h", "/c", False)),
])
def test_parse_volume_flag(text, expected):
    m = parse_volume_flag(text)
    assert (m.type, m.source, m.target, m.read_only) == expected


def test_parse_volume_flag_options_and_relative_source():
    assert parse_volume_flag("v1:/d:nocopy").options["nocopy"] == "true"
    assert parse_volume_flag("/h:/c:rshared").options["propagation"] == "rshared"
    assert parse_volume_flag("./here:/c").source == os.path.abspath("here")


@pytest.mark.parametrize("text", ["", "a:b:c:d", "/h:relative", "x:/c", "a/b:/c", "/h:/c:rx", "/h:/", "::/c",
                                  "-bad:/c"])
def test_parse_volume_flag_rejects(text):
    with pytest.raises(InvalidArgument):
        parse_volume_flag(text)


def test_parse_mount_flag_forms():
    m = parse_mount_flag("type=bind,source=/h,target=/c,readonly")
    assert (m.type, m.source, m.target, m.read_only) == ("bind", "/h", "/c", True)
    m = parse_mount_flag("type=bind,src=/h,dst=/c,ro=false,bind-propagation=rslave")
    assert (m.read_only, m.options["propagation"]) == (False, "rslave")
    m = parse_mount_flag("target=/v")  # type defaults to volume; no source: anonymous
    assert (m.type, m.source, m.target) == ("volume", "", "/v")
    m = parse_mount_flag("type=volume,source=vol,destination=/v,volume-nocopy,volume-label=a=b")
    assert (m.source, m.options["nocopy"], m.options["label.a"]) == ("vol", "true", "b")
    m = parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert (m.options["size"], m.options["mode"]) == (str(64 << 20), "1770")


@pytest.mark.parametrize("text", ["type=bind,target=/c", "type=bind,source=rel,target=/c", "type=volume",
                                  "type=nfs,target=/c", "type=tmpfs,source=x,target=/t", "target=/c,bogus=1",
                                  "type=bind,source=/h,target=/c,bind-propagation=weird", "target=/c,novalue"])
def test_parse_mount_flag_rejects(text):
    with pytest.raises(InvalidArgument):
        parse_mount_flag(text)


def test_parse_mount_flag_refuses_other_drivers():
    with pytest.raises(UnsupportedError):
        parse_mount_flag("type=volume,source=v1,target=/c,volume-driver=nfs")


def test_parse_tmpfs_flag():
    m = parse_tmpfs_flag("/run:rw,size=1g,mode=755,exec")
    assert (m.type, m.target, m.read_only) == ("tmpfs", "/run", False)
    assert (m.options["size"], m.options["mode"], m.options["flags"]) == (str(1 << 30), "755", "exec")
    assert parse_tmpfs_flag("/ro:ro").read_only
    for bad in ("relative", "/t:bogus", "/t:size"):
        with pytest.raises(InvalidArgument):
            parse_tmpfs_flag(bad)


@pytest.mark.parametrize(("text", "size"), [("1024", 1024), ("64m", 64 << 20), ("1.5g", 3 << 29), ("10k", 10240),
                                            ("2MiB", 2 << 20), ("1GB", 1 << 30)])
def test_parse_size(text, size):
    assert parse_size(text) == size


# --- the store -------------------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path) -> VolumeService:
    config = EngineConfig(root=str(tmp_path / "root"))
    return VolumeService(config, EventJournal(os.path.join(config.root, "events")))


def _container(service: VolumeService, mounts: list[Mount], name: str = ""):
    store = ContainerStore(service.config.paths.containers)
    cid = new_container_id()
    config = ContainerConfig(id=cid, name=name, created="2024-01-01T00:00:00Z", image="sha256:x", image_name="img",
                             entrypoint=None, cmd=["true"], env=[], working_dir="/", user="", hostname=cid[:12],
                             host_config=HostConfig(mounts=mounts))
    return store, store.create(config)


def _actions(service: VolumeService) -> list[tuple[str, str]]:
    return [(e["Action"], e["Actor"]["ID"]) for e in service.events.read() if e["Type"] == "volume"]


def test_create_inspect_list_remove(service):
    record = service.create("data", labels={"a": "1"})
    assert record.mountpoint == os.path.join(service.config.root, "volumes", "data", "_data")
    assert os.path.isdir(record.mountpoint)
    assert service.create("data", labels={"other": "x"}).labels == {"a": "1"}  # existing: unchanged
    anon = service.create()
    assert len(anon.name) == 64 and anon.anonymous and anon.labels == {ANONYMOUS_LABEL: ""}
    assert [v.name for v in service.list()] == sorted([anon.name, "data"])
    doc = inspect_volume(service.inspect("data"))
    assert doc["Labels"] == {"a": "1"} and doc["Options"] is None and doc["Scope"] == "local"
    assert doc["CreatedAt"].endswith("Z") and len(doc["CreatedAt"]) == 20
    assert volume_row(record)["Labels"] == "a=1"
    assert service.remove("data") is True
    with pytest.raises(NotFound, match="get data: no such volume"):
        service.inspect("data")
    assert service.remove("data", force=True) is False
    with pytest.raises(NotFound):
        service.remove("data")
    assert _actions(service) == [("create", "data"), ("create", anon.name), ("destroy", "data")]


def test_create_refuses_what_it_cannot_honour(service):
    with pytest.raises(InvalidArgument, match="too short"):
        service.create("a")
    with pytest.raises(InvalidArgument, match="invalid characters"):
        service.create("../escape")
    with pytest.raises(UnsupportedError):
        service.create("vol", driver="nfs")
    with pytest.raises(UnsupportedError):
        service.create("vol", options={"type": "tmpfs"})
    assert service.list() == []


def test_natural_sort_and_filters(service):
    for name in ("vol10", "vol2", "other"):
        service.create(name, labels={"tier": "db"} if name == "vol2" else {})
    assert [v.name for v in service.list()] == ["other", "vol2", "vol10"]
    assert [v.name for v in service.list(parse_filters(["name=vol"]))] == ["vol2", "vol10"]
    assert [v.name for v in service.list(parse_filters(["label=tier=db"]))] == ["vol2"]
    assert [v.name for v in service.list(parse_filters(["label=tier=web"]))] == []
    assert [v.name for v in service.list(parse_filters(["label!=tier"]))] == ["other", "vol10"]
    assert len(service.list(parse_filters(["dangling=true"]))) == 3
    assert [v.name for v in service.list(parse_filters(["driver=local", "name=other"]))] == ["other"]
    with pytest.raises(InvalidArgument):
        service.list(parse_filters(["colour=red"]))
    with pytest.raises(InvalidArgument):
        service.list(parse_filters(["dangling=maybe"]))
    with pytest.raises(InvalidArgument):
        parse_filters(["novalue"])


def test_prepare_mounts_resolves_and_references(service, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    mounts = [parse_volume_flag(f"{host}:/b:ro"), parse_volume_flag("named:/n"), parse_volume_flag("/anon"),
              parse_tmpfs_flag("/t:size=1m")]
    store, record = _container(service, mounts)
    resolved = service.prepare_mounts(record, {"Volumes": {"/n": {}, "/image": {}}})  # /n: the user's wins
    assert [(m.type, m.target) for m in resolved] == [("bind", "/b"), ("volume", "/n"), ("volume", "/anon"),
                                                      ("tmpfs", "/t"), ("volume", "/image")]
    anon, image_vol = resolved[2].source, resolved[4].source
    assert service.inspect(anon).anonymous and service.inspect(image_vol).anonymous
    for name in ("named", anon, image_vol):
        assert service.users(name) == [record.id]
    points = mount_points(record.directory)
    assert points[0] == {"Type": "bind", "Source": str(host), "Destination": "/b", "Mode": "ro", "RW": False,
                         "Propagation": "rprivate", "CopyUp": False, "Options": [], "Recursive": True}
    assert points[1]["Mode"] == "z" and points[1]["CopyUp"] is True
    assert points[3]["Options"] == ["nosuid", "nodev", "noexec", f"size={1 << 20}"]
    assert uses_volume(record.directory, "named") and uses_volume(record.directory, "/t")
    assert uses_volume(record.directory, str(host)) and not uses_volume(record.directory, "other")

    specs = service.mount_specs(record)
    assert [(s.type, s.source, s.target, s.read_only, s.copy_up) for s in specs][:2] == [
        ("bind", str(host), "/b", True, False), ("bind", service.data_path("named"), "/n", False, True)]

    with pytest.raises(Conflict, match="volume is in use"):
        service.remove("named")
    service.events.record("marker", "x", "")
    assert service.release(record, remove_anonymous=True) == [anon, image_vol]
    assert [v.name for v in service.list()] == ["named"] and service.users("named") == []
    assert service.release(record, remove_anonymous=True) == []  # idempotent
    store.remove(record)


def test_specs_are_ordered_parents_first(service):
    mounts = [parse_volume_flag("/a/b/c"), parse_tmpfs_flag("/a"), parse_volume_flag("v1:/a/b")]
    _store, record = _container(service, mounts)
    service.prepare_mounts(record, {})
    assert [s.target for s in service.mount_specs(record)] == ["/a", "/a/b", "/a/b/c"]


def test_prepare_mounts_failure_leaves_nothing_referenced(service, tmp_path):
    mounts = [parse_volume_flag("/anon"), parse_volume_flag("keep:/k"),
              parse_mount_flag(f"type=bind,source={tmp_path}/missing,target=/x")]
    _store, record = _container(service, mounts)
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        service.prepare_mounts(record, {})
    assert [v.name for v in service.list()] == ["keep"]  # named volumes stay, as Docker's
    assert service.users("keep") == []
    with pytest.raises(InvalidArgument, match="Duplicate mount point"):
        service.prepare_mounts(_container(service, [parse_volume_flag("v1:/d"), parse_tmpfs_flag("/d")])[1], {})


def test_removed_container_never_pins_a_volume(service):
    store, record = _container(service, [parse_volume_flag("pinned:/p")])
    service.prepare_mounts(record, {})
    assert service.users("pinned") == [record.id]
    store.remove(record)  # a command that crashed before release(): the reference is stale
    assert service.users("pinned") == []
    assert service.remove("pinned")


def test_prune(service):
    _store, record = _container(service, [parse_volume_flag("/used")])
    service.prepare_mounts(record, {})
    used = service.mount_specs(record)[0].source.split("/")[-2]
    free_anon = service.create().name
    service.create("named", labels={"keep": "1"})
    service.create("named2")
    with open(os.path.join(service.data_path(free_anon), "f"), "wb") as f:
        f.write(b"x" * 1500)
    assert service.prune() == ([free_anon], 1500)
    assert service.prune(filters={"label!": ["keep"]}, all=True) == (["named2"], 0)
    assert service.prune(filters={"all": ["true"]}) == (["named"], 0)
    assert [v.name for v in service.list()] == [used]
    with pytest.raises(InvalidArgument):
        service.prune(filters={"name": ["x"]})
    events = [e for e in service.events.read() if e["Action"] == "prune"]
    assert [e["Actor"]["Attributes"]["reclaimed"] for e in events] == ["1500", "0", "0"]


def test_crash_leftovers_are_swept(service):
    service.create("ok")
    vols = os.path.join(service.config.root, "volumes")
    for leftover in (".creating-abc", ".removing-def"):
        os.makedirs(os.path.join(vols, leftover, "_data"))
    os.makedirs(os.path.join(vols, "half"))  # a directory without volume.json is not a volume
    assert [v.name for v in service.list()] == ["ok"]
    service.create("next")
    assert sorted(os.listdir(vols)) == [".lock", "half", "next", "ok"]


def _create_many(root: str, name: str, n: int) -> list[str]:
    config = EngineConfig(root=root)
    svc = VolumeService(config, EventJournal(os.path.join(root, "events")))
    return [svc.create(name).created_at + svc.create().name for _i in range(n)]


def test_concurrent_creators_agree(service):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_many, [(service.config.root, "same", 5)] * 4)
    assert len({r[:20] for rs in results for r in rs}) == 1  # every creator saw the same "same"
    names = [v.name for v in service.list()]
    assert "same" in names and len(names) == 1 + 20
    creates = [e for e in service.events.read() if e["Action"] == "create" and e["Actor"]["ID"] == "same"]
    assert len(creates) == 1


def test_mount_points_of_a_container_without_any(tmp_path):
    assert mount_points(str(tmp_path)) == []
    (tmp_path / "mounts.json").write_text(json.dumps({"not": "a list"}))
    assert mount_points(str(tmp_path)) == []


def test_host_config_files_mounts_where_docker_does():
    from ansible_collections.pycontainer.engine.plugins.module_utils.system.views import host_config_view

    mounts = [parse_volume_flag("/h:/c:ro"), parse_volume_flag("name:/d:nocopy"), parse_volume_flag("/anon"),
              parse_mount_flag("type=bind,src=/h,dst=/m"), parse_tmpfs_flag("/run:size=1k,exec")]
    view = host_config_view(HostConfig(mounts=mounts))
    assert view["Binds"] == ["/h:/c:ro", "name:/d:nocopy", "/anon"]
    assert view["Mounts"] == [{"Type": "bind", "Source": "/h", "Target": "/m", "ReadOnly": False}]
    assert view["Tmpfs"] == {"/run": "size=1024"}
    assert host_config_view(HostConfig())["Binds"] is None


def test_usage_for_system_df(service):
    _store, record = _container(service, [parse_volume_flag("used:/u")])
    service.prepare_mounts(record, {})
    service.create("idle")
    with open(os.path.join(service.data_path("idle"), "f"), "wb") as f:
        f.write(b"y" * 300)
    usage = {u["Name"]: u["UsageData"] for u in service.usage()}
    assert usage == {"idle": {"Size": 300, "RefCount": 0}, "used": {"Size": 0, "RefCount": 1}}


def test_api_callers_cannot_name_a_volume_outside_the_root(service):
    _store, record = _container(service, [Mount("volume", "../../escape", "/x")])
    with pytest.raises(InvalidArgument):
        service.prepare_mounts(record, {})
    assert not os.path.exists(os.path.join(service.config.root, "escape"))
    assert not os.path.exists(os.path.join(os.path.dirname(service.config.root), "escape"))
