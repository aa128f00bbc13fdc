"""tar-split records: the exact layer rebuild (unpacking makes device nodes and chowns: needs root)."""

from __future__ import annotations

import gzip
import io
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import IntegrityError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer
from ansible_collections.pycontainer.engine.plugins.module_utils.image.tarsplit import rebuild_layer

from tests.fixtures.images import Dir, File, Hardlink, Opaque, Symlink, TarEntry, Whiteout, build_tar

LAYER = [
    Dir("etc"), File("etc/a", "a" * 70000, 0o640, uid=3, gid=4), Hardlink("etc/a-link", "etc/a"),
    Symlink("etc/s", "/etc/a"), File("empty", ""), Whiteout("old"), Opaque("etc"),
    TarEntry("dev/null", "char", devmajor=1, devminor=3, mode=0o666), TarEntry("fifo", "fifo"),
    File("x" * 150, "long name"), File("xattr", "x", xattrs={"user.k": b"v"}),
]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_tarsplit_rebuilds_the_exact_tar(tmp_path, compression):
    raw = build_tar(LAYER) + b"\0" * 4096  # trailing padding beyond the end-of-archive blocks counts too
    blob = gzip.compress(raw) if compression == "gzip" else raw
    dest = tmp_path / "layer"
    dest.mkdir()
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    stats = unpack_layer(io.BytesIO(blob), str(dest), diff_id=diff_id, tarsplit=str(tmp_path / "split"))
    assert stats.tar_size == len(raw) and stats.diff_id == diff_id
    # Only headers are kept: the split is much smaller than the content.
    assert os.path.getsize(tmp_path / "split") < 4000
    assert b"".join(rebuild_layer(str(dest), str(tmp_path / "split"), diff_id)) == raw
    # A file changed in the store is caught by the diff_id check.
    os.chmod(dest / "etc/a", 0o600)
    with open(dest / "etc/a", "r+b") as f:
        f.write(b"b")
    with pytest.raises(IntegrityError):
        b"".join(rebuild_layer(str(dest), str(tmp_path / "split"), diff_id))
