"""Durability of what commands report done: each commit rename comes after the fsync of what it commits and
before the fsync of the directory it lands in. A recording fake sits in front of the kernel's fsync/rename
(and still calls them); the paths come from /proc/self/fd at the moment of each fsync. Also: exact modes
of state directories whatever the umask, and older roots tightened at open."""

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils import fsutil
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EnginePaths
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import parse_reference
from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore, compute_digest
from ansible_collections.pycontainer.engine.plugins.module_utils.records.containers import (
    ContainerConfig,
    ContainerStore,
    new_container_id,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.supervision.monitor import check_request


class Recorder:
    """Records ("fsync", path) and ("rename", src, dst) in call order, then does the real call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, ...]] = []
        real_fsync, real_rename = os.fsync, os.rename

        def fsync(fd: int) -> None:
            self.calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            real_fsync(fd)

        def rename(src: str, dst: str) -> None:
            self.calls.append(("rename", os.path.abspath(src), os.path.abspath(dst)))
            real_rename(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "rename", rename)

    def index(self, *call: str) -> int:
        assert call in self.calls, f"{call} not among {self.calls}"
        return self.calls.index(call)

    def rename_to(self, dst: str) -> tuple[str, str, str]:
        [call] = [c for c in self.calls if c[0] == "rename" and c[2] == dst]
        return call  # type: ignore[return-value]

    def synced_after(self, path: str, position: int) -> bool:
        return ("fsync", path) in self.calls[position + 1:]

    def assert_committed(self, dst: str) -> None:
        """``dst`` was fsynced under its temporary name, renamed into place, then its directory fsynced."""
        _op, src, _dst = self.rename_to(dst)
        renamed = self.calls.index(("rename", src, dst))
        assert self.index("fsync", src) < renamed, self.calls
        assert self.synced_after(os.path.dirname(dst), renamed), self.calls


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    return Recorder(monkeypatch)


def test_atomic_write_syncs_the_file_then_renames_then_syncs_the_directory(tmp_path, recorder):
    path = str(tmp_path / "record.json")
    fsutil.atomic_write_json(path, {"a": 1})
    recorder.assert_committed(path)


def test_a_blob_and_the_image_index_are_durable_when_committed(tmp_path, recorder):
    store = ImageStore(str(tmp_path / "images"))
    data = b'{"config": {}}'
    digest = compute_digest(data)
    path = store.write_blob(digest, data)
    recorder.assert_committed(path)
    # The new blobs/sha256 directory itself is durable in blobs/ before the blob is committed into it.
    assert recorder.index("fsync", store.blobs_dir) < recorder.index(*recorder.rename_to(path))
    recorder.calls.clear()
    store.commit_image(digest, config_digest=digest, manifest_digest="", diff_ids=[], created="",
                       ref=parse_reference("busybox"), repo_digest=None)
    recorder.assert_committed(store.index_path)


def test_a_layer_tree_is_synced_before_the_rename_that_commits_it(tmp_path, recorder):
    store = ImageStore(str(tmp_path / "images"))
    diff_id = compute_digest(b"layer")
    with store.layer_lock(diff_id), store.new_tmp() as tmp:
        os.makedirs(os.path.join(tmp.path, "etc", "conf.d"))
        for rel in ("etc/passwd", "etc/conf.d/a", "top"):
            with open(os.path.join(tmp.path, rel), "wb") as f:
                f.write(b"data")
        os.symlink("top", os.path.join(tmp.path, "link"))
        os.mkfifo(os.path.join(tmp.path, "fifo"))  # never opened: it would block
        with open(tmp.tarsplit, "wb") as f:
            f.write(b"split")
        tree = tmp.path
        recorder.calls.clear()
        final = store.commit_layer(diff_id, tmp, {"size": 4})
    committed = recorder.index("rename", tree, final)
    for rel in ("etc/passwd", "etc/conf.d/a", "top", "etc/conf.d", "etc", ""):
        assert recorder.index("fsync", os.path.join(tree, rel).rstrip("/")) < committed, rel
    assert recorder.synced_after(store.layers_dir, committed)
    assert ("fsync", os.path.join(tree, "fifo")) not in recorder.calls
    # Its metadata and tar-split are in place (and durable) before the layer appears.
    recorder.assert_committed(final + ".json")
    assert recorder.index(*recorder.rename_to(final + ".json")) < committed
    split_rename = recorder.index(*recorder.rename_to(final + ".tarsplit"))
    assert recorder.index("fsync", tmp.tarsplit) < split_rename < committed
    assert os.path.isfile(os.path.join(final, "etc", "conf.d", "a"))


def test_a_container_record_is_durable_when_created_and_saved(tmp_path, recorder):
    store = ContainerStore(str(tmp_path / "containers"))
    config = ContainerConfig(id=new_container_id(), name="web", created="2026-01-01T00:00:00Z",
                             image="sha256:" + "a" * 64, image_name="busybox", entrypoint=None, cmd=["sh"],
                             env=[], working_dir="/", user="", hostname="h")
    record = store.create(config)
    config_json = os.path.join(record.directory, "config.json")
    recorder.assert_committed(config_json)
    # The container's directory is durable in containers/ too, before the record is reported created.
    assert recorder.index("fsync", store.directory) < recorder.index(*recorder.rename_to(config_json))
    recorder.calls.clear()
    record.state.status = "running"
    store.save_state(record)
    recorder.assert_committed(os.path.join(record.directory, "state.json"))


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_state_directories_get_exact_modes_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        fsutil.ensure_dir(str(tmp_path / "root" / "images" / "layers"))
        fsutil.ensure_dir(str(tmp_path / "root" / "volumes" / "v" / "_data"), 0o755)
    finally:
        os.umask(old)
    modes = {rel: stat.S_IMODE(os.stat(tmp_path / "root" / rel).st_mode)
             for rel in ("", "images", "images/layers", "volumes", "volumes/v", "volumes/v/_data")}
    assert modes == {"": 0o700, "images": 0o700, "images/layers": 0o700, "volumes": 0o700, "volumes/v": 0o700,
                     "volumes/v/_data": 0o755}


def test_open_tightens_a_root_an_older_version_made(tmp_path):
    root = tmp_path / "root"
    for rel, mode in (("", 0o755), ("images", 0o711), ("images/layers", 0o711), ("volumes", 0o701),
                      ("run", 0o755), ("lib", 0o755)):
        (root / rel).mkdir(exist_ok=True)
        os.chmod(root / rel, mode)
    (root / "images" / "layers" / "abc").mkdir()
    os.chmod(root / "images" / "layers" / "abc", 0o755)  # a layer's own root mode: overlay shows it, kept
    EnginePaths(str(root)).secure()
    modes = {rel: stat.S_IMODE(os.stat(root / rel).st_mode)
             for rel in ("", "images", "images/layers", "volumes", "run", "lib", "images/layers/abc")}
    assert modes == {"": 0o700, "images": 0o700, "images/layers": 0o700, "volumes": 0o700, "run": 0o700,
                     "lib": 0o700, "images/layers/abc": 0o755}


def test_open_makes_a_missing_root_root_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        EnginePaths(str(tmp_path / "fresh")).secure()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "fresh").st_mode) == 0o700


@pytest.mark.parametrize("bad", ["../x", "a" * 63, "A" * 64, "a" * 65, "a" * 64 + "\n", 7, None, "", ["a" * 64]])
def test_monitor_requests_with_anything_but_a_full_id_are_refused(bad):
    with pytest.raises(InvalidArgument):
        check_request({"op": "wait", "id": bad})
    assert check_request({"op": "wait", "id": "a" * 64})["id"] == "a" * 64
    assert check_request({"op": "ping"}) == {"op": "ping"}
    with pytest.raises(InvalidArgument):
        check_request(["op", "wait"])
