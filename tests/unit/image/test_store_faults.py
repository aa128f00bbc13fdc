"""ImageStore.verify and sweep_stale_writes: what a writer killed mid-write leaves behind."""

import os
import time

from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore, compute_digest


def test_sweep_stale_writes_removes_only_old_temp_files(tmp_path):
    """Atomic-write temp files (``.tmp-*`` beside layers and blobs) are swept once older than a live write
    could be; a fresh one (a live writer) and committed files are kept. verify reports them all."""
    store = ImageStore(str(tmp_path / "images"))
    data = b'{"a": 1}'
    digest = compute_digest(data)
    store.write_blob(digest, data)
    os.makedirs(store.layers_dir, exist_ok=True)
    old = [os.path.join(store.layers_dir, ".tmp-dead"), os.path.join(store.blobs_dir, "sha256", ".tmp-dead")]
    fresh = os.path.join(store.layers_dir, ".tmp-live")
    for path in [*old, fresh]:
        with open(path, "wb") as f:
            f.write(b"{}")
    for path in old:
        os.utime(path, (time.time() - 120, time.time() - 120))
    assert sorted(store.verify()) == sorted(f"stray file {p}" for p in [*old, fresh])
    assert sorted(store.sweep_stale_writes()) == sorted(old)
    assert os.path.exists(fresh) and store.has_blob(digest)
    os.unlink(fresh)
    assert store.verify() == []


def test_verify_finds_corrupt_blobs_and_orphans(tmp_path):
    store = ImageStore(str(tmp_path / "images"))
    data = b'{"b": 2}'
    digest = compute_digest(data)
    path = store.write_blob(digest, data)
    os.chmod(path, 0o600)
    with open(path, "wb") as f:
        f.write(b'{"b": 3}')
    os.makedirs(store.layers_dir, exist_ok=True)
    with open(os.path.join(store.layers_dir, "ab" * 32 + ".json"), "w") as f:
        f.write("{}")
    problems = store.verify()
    assert any("does not match its digest" in p for p in problems)
    assert any("belongs to no layer" in p for p in problems)
