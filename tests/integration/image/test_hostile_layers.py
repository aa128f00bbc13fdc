"""Hostile layer tarballs (after containerd's and umoci's breakout tests).

Each case unpacks into ``box/layer`` next to a sentinel tree ``box/outside``; whatever the unpacker
does with the tar (apply it confined, or refuse it with IntegrityError), nothing outside the layer
directory may be created, modified or deleted.
"""

import hashlib
import io
import os
import stat
import tarfile

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import EngineError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer
from ansible_collections.pycontainer.engine.plugins.module_utils.linux import safepath

from tests.fixtures.images import Dir, File, Hardlink, Opaque, Symlink, TarEntry, Whiteout, build_tar


def snapshot(top: str, skip: str) -> dict:
    """Everything observable about the tree at ``top`` except the subtree ``skip``."""
    result = {}
    for dirpath, dirs, files in os.walk(top):
        if dirpath == skip or dirpath.startswith(skip + os.sep):
            dirs[:] = []
            continue
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            if path == skip:
                continue
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            try:
                xattrs = sorted(os.listxattr(path, follow_symlinks=False))
            except OSError:
                xattrs = []
            result[os.path.relpath(path, top)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_nlink,
                st.st_mtime_ns,
                st.st_size,
                content,
                xattrs,
            )
    return result


@pytest.fixture
def box(tmp_path):
    outside = tmp_path / "box" / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "sentinel").write_bytes(b"precious")
    (outside / "dir" / "keep").write_bytes(b"keep")
    (tmp_path / "sentinel-top").write_bytes(b"top")
    layer = tmp_path / "box" / "layer"
    layer.mkdir()
    return tmp_path, str(layer), str(outside)


HOST_FILES = ["/etc/passwd", "/etc/hostname"]
# /tmp's own owner and mode only: its link count and times change whenever another process uses /tmp.
HOST_DIRS = ["/tmp"]


def host_state():
    files = {p: os.lstat(p) for p in HOST_FILES if os.path.lexists(p)}
    dirs = {p: (st.st_mode, st.st_uid, st.st_gid) for p in HOST_DIRS for st in [os.lstat(p)]}
    return files | dirs | {
        "/pwned": os.path.lexists("/pwned"),
        "/etc/pwned": os.path.lexists("/etc/pwned"),
    }


def apply(entries, layer):
    raw = build_tar(entries)
    try:
        unpack_layer(io.BytesIO(raw), layer)
        return None
    except EngineError as exc:
        return exc


def raw_entry(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return (info, data)
    return (info, None)


def cases(outside: str):
    """name -> list of entries. ``outside`` is the absolute sentinel dir (relative to / for escapes)."""
    rel_out = outside.lstrip("/")
    up = "../" * 12
    return {
        "dotdot-file": [raw_entry("../outside/pwned")],
        "dotdot-deep": [raw_entry("a/../../outside/sentinel", data=b"overwritten")],
        "dotdot-only": [raw_entry(".."), raw_entry("../", tarfile.DIRTYPE)],
        "absolute-file": [raw_entry(outside + "/pwned")],
        "absolute-overwrite": [raw_entry(outside + "/sentinel", data=b"overwritten")],
        "symlink-root-write": [Symlink("root", "/"), File(f"root/{rel_out}/pwned", b"x")],
        "symlink-root-overwrite": [Symlink("root", "/"), File(f"root/{rel_out}/sentinel", b"overwritten")],
        "symlink-abs-dir": [Symlink("l", outside), File("l/pwned", b"x"), Dir("l/newdir")],
        "symlink-relative-escape": [Symlink("l", up + rel_out), File("l/pwned"), File("l/sentinel", b"o")],
        "symlink-chain": [
            Symlink("a", "b"),
            Symlink("b", "c/d"),
            Dir("c"),
            Symlink("c/d", "../e"),
            Symlink("e", up + rel_out),
            File("a/pwned"),
            File("a/sentinel", b"overwritten"),
        ],
        "symlink-dir-chain-parent": [Dir("x"), Symlink("x/y", "../../.."), File(f"x/y/{rel_out}/pwned")],
        "symlink-then-dir-entry": [Symlink("l", outside), Dir("l", 0o777)],
        "symlink-final-file-replaced": [Symlink("l", outside + "/sentinel"), File("l", b"overwritten")],
        "symlink-then-hardlink-through": [Symlink("l", outside), Hardlink("h", "l/sentinel")],
        "hardlink-host-passwd": [Hardlink("h", "/etc/passwd")],
        "hardlink-dotdot": [Hardlink("h", "../outside/sentinel")],
        "hardlink-to-escaping-symlink": [Symlink("l", outside + "/sentinel"), Hardlink("h", "l"), File("h", b"o")],
        "whiteout-dotdot": [raw_entry("../outside/.wh.sentinel"), raw_entry("../.wh.outside")],
        "whiteout-through-symlink": [Symlink("l", outside), Whiteout("l/sentinel"), Whiteout("l/dir")],
        "opaque-through-symlink": [Symlink("l", outside), Opaque("l"), Opaque("l/dir")],
        "device-through-symlink": [Symlink("l", outside), TarEntry("l/dev", "char", devmajor=1, devminor=3)],
        "fifo-through-symlink": [Symlink("l", outside), TarEntry("l/fifo", "fifo")],
        "chmod-through-symlink": [Symlink("l", outside), Dir("l/dir", 0o777)],
        "xattr-through-symlink": [Symlink("l", outside), File("l/dir/keep", b"k", xattrs={"trusted.x": b"1"})],
        "symlink-loop": [Symlink("a", "b"), Symlink("b", "a"), File("a/x")],
        "parent-is-file": [File("f", b"f"), File("f/x", b"x")],
        "dangling-parent": [Symlink("d", "/nonexistent/deeper"), File("d/x", b"x")],
        "whiteout-replaces-symlink-target": [Symlink("l", outside + "/sentinel"), Whiteout("l")],
        "proc-magic-link": [Symlink("p", "/proc/self/root" + outside), File("p/pwned")],
        "dir-chmod-escape-absolute": [raw_entry(outside, tarfile.DIRTYPE)],
    }


CASE_NAMES = sorted(cases("/x"))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_no_escape(box, case):
    top, layer, outside = box
    before = snapshot(str(top), layer)
    host_before = host_state()
    apply(cases(outside)[case], layer)
    assert snapshot(str(top), layer) == before
    assert host_state() == host_before


def test_confined_results(box):
    """Where a hostile entry is applied rather than refused, it lands inside the layer."""
    _top, layer, outside = box
    rel_out = outside.lstrip("/")
    assert apply(cases(outside)["symlink-root-write"], layer) is None
    assert os.path.isfile(os.path.join(layer, rel_out, "pwned"))
    assert apply([raw_entry("../../../evil")], layer) is None
    assert os.path.isfile(os.path.join(layer, "evil"))


def test_hardlink_outside_refused(box):
    _top, layer, _outside = box
    assert apply([Hardlink("h", "/etc/passwd")], layer) is not None
    assert not os.path.lexists(os.path.join(layer, "h"))


def test_walk_fallback_matches_openat2(box, monkeypatch):
    """The userspace resolver (kernels without openat2) is just as confined."""
    top, layer, outside = box
    monkeypatch.setattr(safepath, "_have_openat2", False)
    for name, entries in cases(outside).items():
        sub = os.path.join(layer, name)
        os.mkdir(sub)
        before = snapshot(str(top), layer)
        apply(entries, sub)
        assert snapshot(str(top), layer) == before, name
