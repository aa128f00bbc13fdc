"""Image operations through the engine API against the real registry: tag/rmi/prune semantics, layer GC,
containers pinning images, import, events, pulling while another process removes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import Conflict, ImageNotFound, InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerStore,
    new_container_id,
)

from tests.fixtures.images import Dir, File, Hardlink, Whiteout, build_tar

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(engine_config):
    return Engine(engine_config)


def events(engine) -> list[tuple[str, str]]:
    return [(e["Action"], e["Actor"]["Attributes"].get("name", "")) for e in engine.events.read()
            if e["Type"] == "image"]


def layer_names(engine) -> set[str]:
    return {n for n in os.listdir(engine.images.store.layers_dir) if "." not in n}


def add_container(engine, image_id: str, status: str = "exited") -> ContainerConfig:
    store = ContainerStore(engine.config.paths.containers)
    config = ContainerConfig(id=new_container_id(), name="", created="2024-01-01T00:00:00Z", image=image_id,
                             image_name="x", entrypoint=None, cmd=["sh"], env=[], working_dir="", user="",
                             hostname="h")
    record = store.create(config)
    record.state.status = status
    store.save_state(record)
    return config


def test_tag_untag_delete_and_layer_gc(engine, oci_builder):
    base = [Dir("etc"), File("etc/base", "base")]
    ref_a, built_a = oci_builder.push("ops/a:v1", [base, [File("a", "a")]], {})
    ref_b, _built_b = oci_builder.push("ops/b:v1", [base, [File("b", "b")]], {})
    a = engine.images.pull(ref_a)
    b = engine.images.pull(ref_b)
    assert len(layer_names(engine)) == 3
    engine.images.tag(ref_a, "mine:1")
    engine.images.tag("mine:1", "mine:2")
    assert sorted(engine.images.inspect(a.id).repo_tags) == sorted([ref_a, "mine:1", "mine:2"])
    with pytest.raises(InvalidArgument):
        engine.images.tag("mine:1", f"mine@{a.id}")

    # More than one name: rmi only untags.
    report = engine.images.remove("mine:1")
    assert report.lines() == ["Untagged: mine:1"]
    assert engine.images.inspect(a.id).id == a.id
    # By ID while referenced in several repositories: refused unless forced.
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        engine.images.remove(a.short_id)
    report = engine.images.remove(a.short_id, force=True)
    assert sorted(report.untagged) == sorted([ref_a, "mine:2", a.repo_digests[0]])
    assert report.deleted[0] == a.id
    # Only a's own layer went; the shared base stays for b.
    assert report.deleted[1:] == [built_a.images[0].diff_ids[1]]
    assert len(layer_names(engine)) == 2
    with pytest.raises(ImageNotFound):
        engine.images.inspect(a.id)
    assert engine.images.store.layer_dirs(engine.images.inspect(ref_b))  # b intact
    # The last name of b: untag + delete, every layer and blob collected.
    report = engine.images.remove(ref_b)
    assert report.untagged == [ref_b, b.repo_digests[0]] and b.id in report.deleted
    assert layer_names(engine) == set()
    assert os.listdir(os.path.join(engine.images.store.blobs_dir, "sha256")) == []
    with pytest.raises(ImageNotFound):
        engine.images.remove(ref_b)
    acts = events(engine)
    assert ("tag", "mine:1") in acts and ("untag", "mine:1") in acts and ("delete", a.id) in acts
    assert acts[0] == ("pull", ref_a)


def test_image_used_by_container_is_kept(engine, busybox_image):
    record = engine.images.pull(busybox_image)
    container = add_container(engine, record.id)
    with pytest.raises(Conflict, match=f"container {container.id[:12]} is using its referenced image"):
        engine.images.remove(busybox_image)
    with pytest.raises(Conflict, match="being used by stopped container"):
        engine.images.remove(record.id)
    # Forced: the name goes, the image (and its layers) stay while the container needs them.
    report = engine.images.remove(busybox_image, force=True)
    assert report.deleted == [] and busybox_image in report.untagged
    kept = engine.images.inspect(record.id)
    assert kept.repo_tags == [] and engine.images.store.layer_dirs(kept)
    assert engine.images.prune(all_images=True).deleted == []
    # Once the container is gone, prune collects it.
    ContainerStore(engine.config.paths.containers).remove(ContainerStore(engine.config.paths.containers)
                                                          .load(container.id))
    report = engine.images.prune()
    assert report.deleted[0] == record.id and report.reclaimed > 0
    assert layer_names(engine) == set()


def test_prune_dangling_all_and_filters(engine, oci_builder):
    ref1, _layout = oci_builder.push("prune/one:v1", [[File("one", "1")]],
                                     {"created": "2020-01-01T00:00:00Z", "config": {"Labels": {"keep": "yes"}}})
    ref2, _layout = oci_builder.push("prune/two:v1", [[File("two", "2")]], {"created": "2021-01-01T00:00:00Z"})
    one, two = engine.images.pull(ref1), engine.images.pull(ref2)
    assert engine.images.prune().deleted == []  # nothing dangling
    engine.images.tag(ref1, "prune/one:v2")
    engine.images.remove(ref1)
    engine.images.remove("prune/one:v2")  # deleted with its last tag: prune never sees it
    engine.images.pull(ref1)
    assert engine.images.prune(all_images=True, filters=["until=2020-06-01T00:00:00Z", "label!=keep"]).deleted == []
    report = engine.images.prune(all_images=True, filters=["until=2020-06-01T00:00:00Z"])
    assert report.deleted[0] == one.id and report.untagged[0] == ref1
    report = engine.images.prune(all_images=True, filters=["label=nothing"])
    assert report.deleted == []
    report = engine.images.prune(all_images=True)
    assert report.deleted[0] == two.id
    assert engine.images.list() == []
    with pytest.raises(InvalidArgument):
        engine.images.prune(filters=["bogus=1"])


def test_history_rows(engine, oci_builder):
    config = {"history": [
        {"created": "2023-01-01T00:00:00Z", "created_by": "ADD rootfs"},
        {"created": "2023-01-02T00:00:00Z", "created_by": "ENV A=b", "empty_layer": True},
        {"created": "2023-01-03T00:00:00Z", "created_by": "RUN make", "comment": "built"},
    ]}
    ref, _built = oci_builder.push("hist/img:v1", [[File("x", "x" * 100)], [File("y", "y" * 7)]], config)
    record = engine.images.pull(ref)
    rows = engine.images.history(ref)
    assert [r["created_by"] for r in rows] == ["RUN make", "ENV A=b", "ADD rootfs"]
    assert [r["size"] for r in rows] == [7, 0, 100]
    assert rows[0]["id"] == record.id and rows[1]["id"] == "<missing>"
    assert rows[0]["comment"] == "built"


def test_import_rootfs_tarball(engine, tmp_path):
    tar = build_tar([Dir("bin"), File("bin/tool", "#!/bin/sh\n", 0o755), Hardlink("bin/tool2", "bin/tool")])
    path = tmp_path / "rootfs.tar"
    path.write_bytes(tar)
    record, changed = engine.images.import_image(str(path), "imported:v1", message="from test",
                                                 changes=["CMD [\"/bin/tool\"]", "ENV A=1"])
    assert changed and record.repo_tags == ["imported:v1"]
    assert record.config["config"] == {"Cmd": ["/bin/tool"], "Env": ["A=1"]}
    assert record.config["history"][0]["comment"] == "from test"
    (layer,) = engine.images.store.layer_dirs(record)
    st1, st2 = os.stat(os.path.join(layer, "bin/tool")), os.stat(os.path.join(layer, "bin/tool2"))
    assert st1.st_ino == st2.st_ino and st1.st_mode & 0o777 == 0o755
    # From a stream (stdin), gzip'd: same layer (diff_id of the uncompressed tar), a new image.
    import gzip

    again, _created = engine.images.import_image("-", None, stream=io.BytesIO(gzip.compress(tar)))
    assert again.id != record.id and again.diff_ids == record.diff_ids and again.repo_tags == []
    assert ("import", "imported:v1") in events(engine)
    with pytest.raises(InvalidArgument):
        engine.images.import_image(str(tmp_path / "missing.tar"))


def test_hardlinks_and_whiteouts_match_docker(engine, oci_builder, tmp_path):
    """What Docker gives for these layers: hardlinks share an inode within a layer, a whiteout hides the
    lower file (and a hardlink to it in the same lower layer stays), an opaque dir hides lower content."""
    lower = [Dir("data"), File("data/orig", "payload", 0o640, uid=1, gid=2), Hardlink("data/link", "data/orig"),
             File("data/gone", "x"), Dir("opaq"), File("opaq/old", "o")]
    from tests.fixtures.images import Opaque

    upper = [Whiteout("data/gone"), Whiteout("data/orig"), Opaque("opaq"), File("opaq/new", "n"),
             File("data/new", "new"), Hardlink("data/new2", "data/new")]
    ref, _layout = oci_builder.push("hlwh/img:v1", [lower, upper], {})
    record = engine.images.pull(ref)
    low, up = engine.images.store.layer_dirs(record)
    assert os.stat(f"{low}/data/orig").st_ino == os.stat(f"{low}/data/link").st_ino
    assert os.stat(f"{low}/data/orig").st_nlink == 2
    assert (os.stat(f"{low}/data/link").st_uid, os.stat(f"{low}/data/link").st_gid) == (1, 2)
    assert os.stat(f"{up}/data/new").st_ino == os.stat(f"{up}/data/new2").st_ino
    merged, work, upperdir = (tmp_path / n for n in ("m", "w", "u"))
    for d in (merged, work, upperdir):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={up}:{low},upperdir={upperdir},workdir={work}", str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "data")) == ["link", "new", "new2"]
        assert (merged / "data/link").read_text() == "payload"
        assert sorted(os.listdir(merged / "opaq")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


_PULL_LOOP = """
import sys
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
engine = Engine(EngineConfig(root=sys.argv[1], registry_mirrors=[], blocked_registries=["docker.io"]))
for _ in range(int(sys.argv[3])):
    if sys.argv[2] == "rmi":
        try:
            engine.images.remove(sys.argv[4], force=True)
        except Exception:
            pass
    else:
        engine.images.pull(sys.argv[2])
"""


def test_pull_while_another_removes_stays_consistent(engine_root, oci_builder):
    layers = [[File(f"l{i}", os.urandom(200_000))] for i in range(3)]
    ref, _built = oci_builder.push("race/img:v1", layers, {})
    procs = [subprocess.Popen([sys.executable, "-c", _PULL_LOOP, engine_root, ref, "6"], cwd=os.getcwd(),
                              stderr=subprocess.PIPE, text=True) for _i in range(2)]
    procs.append(subprocess.Popen([sys.executable, "-c", _PULL_LOOP, engine_root, "rmi", "12", ref],
                                  cwd=os.getcwd(), stderr=subprocess.PIPE, text=True))
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig

    engine = Engine(EngineConfig(root=engine_root))
    # Whatever the interleaving: every image in the index has all its layers, nothing half-made remains.
    for record in engine.images.list():
        assert len(engine.images.store.layer_dirs(record)) == 3
    engine.images.pull(ref)
    engine.images.remove(ref)
    assert layer_names(engine) == set()
    assert os.listdir(engine.images.store.tmp_dir) == []
    with open(os.path.join(engine.images.store.root, "index.json")) as f:
        assert json.load(f)["images"] == {}


def test_pull_all_tags(engine, oci_builder, registry):
    ref1, _layout = oci_builder.push("alltags/img:one", [[File("v", "1")]], {})
    oci_builder.push("alltags/img:two", [[File("v", "2")]], {})
    records = engine.images.pull_all_tags(f"{registry.host}/alltags/img")
    assert sorted(t for r in records for t in r.repo_tags) == [ref1, f"{registry.host}/alltags/img:two"]
    with pytest.raises(InvalidArgument):
        engine.images.pull_all_tags(ref1)
