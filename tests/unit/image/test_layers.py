"""Layer unpacking: every entry type, metadata, whiteouts, digests, compressions."""

import gzip
import hashlib
import io
import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import IntegrityError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer

from tests.fixtures.images import (
    File,
    build_tar,
)
from tests.fixtures.layer_dirs import sha, unpack


def test_diff_id_mismatch(tmp_path):
    with pytest.raises(IntegrityError, match="diff_id"):
        unpack([File("a", b"a")], str(tmp_path / "l"), diff_id="sha256:" + "0" * 64)


def test_blob_digest_mismatch(tmp_path):
    with pytest.raises(IntegrityError, match="digest mismatch"):
        unpack([File("a", b"a")], str(tmp_path / "l"), blob_digest="sha256:" + "0" * 64)


def test_sha512_blob_digest(tmp_path):
    raw = build_tar([File("a", b"a")])
    blob = gzip.compress(raw, mtime=0)
    dest = tmp_path / "l"
    dest.mkdir()
    unpack_layer(
        io.BytesIO(blob), str(dest), blob_digest="sha512:" + hashlib.sha512(blob).hexdigest(), diff_id=sha(raw)
    )
    assert (dest / "a").read_bytes() == b"a"


def test_corrupt_gzip(tmp_path):
    raw = build_tar([File("a", b"a" * 100000)])
    blob = bytearray(gzip.compress(raw))
    blob[len(blob) // 2] ^= 0xFF
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(IntegrityError):
        unpack_layer(
            io.BytesIO(bytes(blob)),
            str(dest),
            media_type="application/vnd.oci.image.layer.v1.tar+gzip",
            diff_id=sha(raw),
        )


def test_not_a_tar(tmp_path):
    dest = tmp_path / "l"
    dest.mkdir()
    with pytest.raises(IntegrityError):
        unpack_layer(io.BytesIO(gzip.compress(b"hello world" * 100)), str(dest))


def test_streaming_large_file_bounded_memory(tmp_path):
    """A 64 MiB file streams through without the layer ever being held in memory."""
    import resource
    import subprocess
    import sys

    script = f"""
import hashlib, io, os, resource, sys, tarfile, zlib
sys.path.insert(0, {os.getcwd()!r})
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer
SIZE = 64 << 20
class Gen(io.RawIOBase):  # a tar of one big file, generated on the fly and gzip'd on the fly
    def __init__(self):
        ti = tarfile.TarInfo("big"); ti.size = SIZE
        self.parts = [ti.tobuf(format=tarfile.PAX_FORMAT)]
        self.left = SIZE
        self.c = zlib.compressobj(1, zlib.DEFLATED, 31)
        self.buf = b""
        self.done = False
    def readable(self): return True
    def _raw(self):
        if self.parts: return self.parts.pop()
        if self.left:
            n = min(self.left, 1 << 20); self.left -= n; return os.urandom(n)
        if not self.done:
            self.done = True; return b"\\0" * 1024
        return b""
    def read(self, n=-1):
        while len(self.buf) < (n if n > 0 else 1 << 20):
            raw = self._raw()
            if not raw:
                if self.c is not None:
                    self.buf += self.c.flush(); self.c = None
                break
            self.buf += self.c.compress(raw)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out
dest = sys.argv[1]
os.makedirs(dest)
stats = unpack_layer(Gen(), dest, media_type="application/vnd.oci.image.layer.v1.tar+gzip")
assert os.path.getsize(os.path.join(dest, "big")) == SIZE
# VmHWM, not ru_maxrss: Linux carries the forking parent's peak into ru_maxrss across exec.
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "l")], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) < 60, f"peak RSS {out.stdout.strip()} MiB"
    del resource
