"""ImageStore bookkeeping: commit, lookup rules (Docker's), listing."""

import json
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import ImageNotFound, IntegrityError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import parse_reference
from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore, compute_digest


def add_image(store, name, created, payload, digest_name=None):
    layer_data = payload.encode()
    diff_id = compute_digest(layer_data)
    if not store.has_layer(diff_id):
        with store.layer_lock(diff_id), store.new_tmp() as tmp:
            with open(os.path.join(tmp.path, "f"), "wb") as f:
                f.write(layer_data)
            store.commit_layer(diff_id, tmp, {"size": len(layer_data)})
    config = {"created": created, "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}
    config_bytes = json.dumps(config).encode()
    config_digest = compute_digest(config_bytes)
    store.write_blob(config_digest, config_bytes)
    ref = parse_reference(name)
    top = compute_digest(b"manifest-" + payload.encode())
    return store.commit_image(
        config_digest,
        config_digest=config_digest,
        manifest_digest=top,
        diff_ids=[diff_id],
        created=created,
        ref=ref,
        repo_digest=f"{ref.name}@{top}",
    )


def test_commit_and_lookup(tmp_path):
    store = ImageStore(str(tmp_path / "images"))
    rec, changed = add_image(store, "busybox", "2024-01-01T00:00:00Z", "one")
    assert changed and rec.repo_tags == ["busybox:latest"] and rec.size == 3
    assert rec.repo_digests[0].startswith("busybox@sha256:")
    _rec, changed = add_image(store, "busybox", "2024-01-01T00:00:00Z", "one")
    assert not changed
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        rec.id,
        rec.id[7:],
        rec.id[7:10],
        "sha256:" + rec.id[7:15],
        rec.repo_digests[0],
        "docker.io/" + "library/" + rec.repo_digests[0],
    ]:
        assert store.lookup(name).id == rec.id, name
    with pytest.raises(ImageNotFound, match=r"^No such image: busybox:other$"):
        store.lookup("busybox:other")
    with pytest.raises(ImageNotFound, match="No such image: foo/bar:latest"):
        store.lookup("foo/bar")
    assert store.layer_dirs(rec) == [store.layer_path(rec.diff_ids[0])]


def test_retag_moves_tag_and_ambiguous_prefix(tmp_path):
    store = ImageStore(str(tmp_path / "images"))
    ids = set()
    for i in range(40):  # enough images that some share a first hex digit
        rec, _created = add_image(store, f"img:{i}", f"2024-01-{1 + i % 28:02d}T00:00:00Z", f"p{i}")
        ids.add(rec.id)
    first = sorted(ids)[0][7]
    if sum(1 for i in ids if i[7] == first) > 1:
        with pytest.raises(ImageNotFound):
            store.lookup(first)
    new, changed = add_image(store, "img:0", "2025-01-01T00:00:00Z", "moved")
    assert changed and store.lookup("img:0").id == new.id
    listed = store.list()
    assert listed[0].id == new.id  # newest first
    assert len(listed) == 41


def test_tag_name_beats_id_prefix(tmp_path):
    store = ImageStore(str(tmp_path / "images"))
    rec, _created = add_image(store, "x", "2024-01-01T00:00:00Z", "x")
    other, _created = add_image(store, rec.id[7:13], "2024-01-01T00:00:00Z", "y")
    assert store.lookup(rec.id[7:13]).id == other.id


def test_corrupt_blob_detected(tmp_path):
    store = ImageStore(str(tmp_path / "images"))
    with pytest.raises(IntegrityError):
        store.write_blob("sha256:" + "0" * 64, b"data")


def test_a_sweep_racing_a_new_work_dir_never_takes_it(tmp_path, monkeypatch):
    """A sweeper that runs while a pull creates its work dir (before the pull holds the lock) must not
    delete it: this once lost a concurrent pull's layer ("No such file or directory: .../tmp/pull-…")."""
    import fcntl

    from ansible_collections.pycontainer.engine.plugins.module_utils.image import store as store_module

    images = ImageStore(str(tmp_path / "images"))
    real_flock = fcntl.flock
    raced = []

    def flock_after_a_sweep(fd, operation):
        if operation == fcntl.LOCK_EX and not raced:  # the creator's own, blocking lock
            raced.append(True)
            images.sweep_tmp()
        return real_flock(fd, operation)

    monkeypatch.setattr(store_module.fcntl, "flock", flock_after_a_sweep)
    work = images.new_tmp()
    try:
        assert raced and os.path.isdir(work.path) and os.path.exists(work.lock_path)
    finally:
        work.cleanup()
    assert os.listdir(images.tmp_dir) == []
