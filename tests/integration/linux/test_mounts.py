"""Overlay mounting (new API and legacy fallback), pivot_root and mountinfo parsing, in throwaway mount
namespaces."""

from __future__ import annotations

import errno
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc, mounts

from .helpers import in_child


def _layers(tmp_path, count: int, name_len: int = 40) -> list[str]:
    layers = []
    for i in range(count):
        d = tmp_path / "l" / f"{i:03d}{'y' * name_len}"
        d.mkdir(parents=True)
        (d / f"f{i}").write_text(str(i))
        (d / "top").write_text(str(i))
        layers.append(str(d))
    (tmp_path / "upper").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "merged").mkdir()
    return layers


def _mount_and_read(tmp_path, layers, mount_fn) -> tuple[str, int]:
    def child():
        libc.unshare(libc.CLONE_NEWNS)
        mounts.make_private("/")
        merged = str(tmp_path / "merged")
        mount_fn(list(reversed(layers)), str(tmp_path / "upper"), str(tmp_path / "work"), merged, False)
        with open(merged + "/top") as f:
            return f.read(), len([n for n in os.listdir(merged) if n.startswith("f")])

    return in_child(child)


def test_overlay_new_api_many_layers(tmp_path):
    layers = _layers(tmp_path, 150)
    assert len(":".join(layers)) > 4096
    assert _mount_and_read(tmp_path, layers, mounts._mount_overlay_fsconfig) == ("149", 150)
    assert mounts.mountpoints_under(str(tmp_path)) == []  # never visible in our mount namespace


def test_overlay_legacy_short(tmp_path):
    layers = _layers(tmp_path, 3)
    assert _mount_and_read(tmp_path, layers, mounts._mount_overlay_legacy) == ("2", 3)


def test_overlay_legacy_relative_paths_beyond_a_page(tmp_path):
    layers = _layers(tmp_path, 60)
    assert len(",".join(layers)) > 4096
    cwd = os.getcwd()
    assert _mount_and_read(tmp_path, layers, mounts._mount_overlay_legacy) == ("59", 60)
    assert os.getcwd() == cwd


def test_overlay_legacy_too_many_layers(tmp_path):
    layers = _layers(tmp_path, 90, name_len=60)
    with pytest.raises(OSError) as ei:
        _mount_and_read(tmp_path, layers, mounts._mount_overlay_legacy)
    assert ei.value.errno == errno.E2BIG


def test_overlay_error_names_the_layer(tmp_path):
    layers = [*_layers(tmp_path, 2), str(tmp_path / "missing")]
    with pytest.raises(OSError, match="missing"):
        _mount_and_read(tmp_path, layers, mounts._mount_overlay_fsconfig)


def test_mountpoints_under_parses_escapes(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "30 1 0:40 / /var/lib/x\\040y/merged rw - overlay overlay rw\n"
        "31 30 0:41 / /var/lib/x\\040y/merged/dev rw - tmpfs tmpfs rw\n"
        "32 1 0:42 / /var/lib/x\\040yz rw - tmpfs tmpfs rw\n"
    )
    assert mounts.mountpoints_under("/var/lib/x y", str(info)) == [
        "/var/lib/x y/merged/dev", "/var/lib/x y/merged"]


def test_umount_all_under_and_bind(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "file").write_text("x")

    def child():
        libc.unshare(libc.CLONE_NEWNS)
        mounts.make_private("/")
        mounts.bind(str(tmp_path / "a"), str(tmp_path / "b"), readonly=True)
        before = mounts.mountpoints_under(str(tmp_path))
        try:
            open(str(tmp_path / "b" / "new"), "w").close()
            writable = True
        except OSError:
            writable = False
        mounts.umount_all_under(str(tmp_path))
        mounts.umount_all_under(str(tmp_path))  # idempotent
        return before, writable, mounts.mountpoints_under(str(tmp_path))

    assert in_child(child) == ([str(tmp_path / "b")], False, [])
