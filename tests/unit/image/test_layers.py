"""Layer unpacking: every entry type, metadata, whiteouts, digests, compressions."""

import contextlib
import gzip
import hashlib
import io
import os
import stat

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import IntegrityError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer

from tests.fixtures.images import (
    EPOCH,
    Dir,
    File,
    Hardlink,
    Opaque,
    Symlink,
    TarEntry,
    Whiteout,
    build_tar,
    compress,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, trusted xattrs)")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def unpack(entries, dest, compression="gzip", **kw):
    raw = build_tar(entries)
    blob = compress(raw, compression)
    os.makedirs(dest, exist_ok=True)
    media = {
        "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
        "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    }
    return unpack_layer(
        io.BytesIO(blob),
        dest,
        media_type=media.get(compression, "application/vnd.oci.image.layer.v1.tar"),
        blob_digest=kw.get("blob_digest", sha(blob)),
        blob_size=len(blob),
        diff_id=kw.get("diff_id", sha(raw)),
    )


@needs_root
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_entry_types_and_metadata(tmp_path, compression):
    dest = str(tmp_path / "layer")
    stats = unpack(
        [
            Dir("usr", 0o755, mtime=EPOCH - 100),
            Dir("usr/bin", 0o750, uid=1000, gid=1001),
            File("usr/bin/su", b"#!su\n", 0o4755),
            File("usr/bin/sg", b"sg", 0o2711, uid=5, gid=6, mtime=EPOCH - 5),
            Symlink("usr/bin/link", "su", mtime=EPOCH - 7),
            Symlink("abs", "/usr/bin/su"),
            Hardlink("usr/hard", "usr/bin/su"),
            TarEntry("dev/null", "char", mode=0o666, devmajor=1, devminor=3),
            TarEntry("dev/loop9", "block", mode=0o660, devmajor=7, devminor=9, gid=6),
            TarEntry("run/fifo", "fifo", mode=0o620),
            File(
                "x/attr",
                b"a",
                xattrs={
                    "user.note": b"hello",
                    "trusted.t": b"\x00\xff",
                    "security.capability": b"\x01\x00\x00\x02\x00\x20" + b"\x00" * 14,
                },
            ),
            File("implicit/parents/file", b"p"),
        ],
        dest,
        compression,
    )

    def j(*p):
        return os.path.join(dest, *p)

    st = os.lstat(j("usr/bin/su"))
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime == EPOCH
    assert read(j("usr/bin/su")) == b"#!su\n"
    st = os.lstat(j("usr/bin/sg"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o2711, 5, 6, EPOCH - 5)
    st = os.lstat(j("usr/bin"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 1000, 1001)
    assert os.lstat(j("usr")).st_mtime == EPOCH - 100  # dir mtimes survive their children's creation
    assert os.readlink(j("usr/bin/link")) == "su" and os.lstat(j("usr/bin/link")).st_mtime == EPOCH - 7
    assert os.readlink(j("abs")) == "/usr/bin/su"
    assert os.lstat(j("usr/hard")).st_ino == os.lstat(j("usr/bin/su")).st_ino
    st = os.lstat(j("dev/null"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    st = os.lstat(j("dev/loop9"))
    assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev), st.st_gid) == (7, 9, 6)
    assert stat.S_ISFIFO(os.lstat(j("run/fifo")).st_mode)
    assert os.getxattr(j("x/attr"), "trusted.t") == b"\x00\xff"
    assert os.getxattr(j("x/attr"), "security.capability")[:4] == b"\x01\x00\x00\x02"
    with contextlib.suppress(OSError):  # a filesystem without user xattrs: recorded as a warning
        assert os.getxattr(j("x/attr"), "user.note") == b"hello"
    assert os.path.isfile(j("implicit/parents/file"))
    assert stats.files == 4 and stats.size == len(b"#!su\nsgap")


@needs_root
def test_whiteouts_and_opaque(tmp_path):
    dest = str(tmp_path / "layer")
    unpack(
        [
            Opaque("etc/conf.d"),  # before the dir's own entry and its children: position does not matter
            Dir("etc"),
            Dir("etc/conf.d", 0o700),
            File("etc/conf.d/a", b"a"),
            Whiteout("etc/removed"),
            Whiteout("gone-dir"),
            Opaque(""),
        ],
        dest,
    )
    st = os.lstat(os.path.join(dest, "etc/removed"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_ISCHR(os.lstat(os.path.join(dest, "gone-dir")).st_mode)
    assert os.getxattr(os.path.join(dest, "etc/conf.d"), "trusted.overlay.opaque") == b"y"
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "etc/conf.d")).st_mode) == 0o700
    assert os.getxattr(dest, "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(os.path.join(dest, "etc/.wh.removed"))
    assert not os.path.lexists(os.path.join(dest, "etc/conf.d/.wh..wh..opq"))


@needs_root
def test_later_entries_replace_earlier(tmp_path):
    dest = str(tmp_path / "layer")
    unpack(
        [
            File("a", b"file first"),
            Dir("a"),  # a dir replaces the file
            File("a/child", b"c"),
            Dir("b"),
            File("b/x", b"x"),
            File("b", b"now a file"),  # a file replaces the whole dir
            Symlink("c", "nowhere"),
            File("c", b"file replaces symlink"),
            File("d", b"old"),
            File("d", b"new", 0o600),
        ],
        dest,
    )
    assert os.path.isdir(os.path.join(dest, "a")) and os.path.isfile(os.path.join(dest, "a/child"))
    assert read(os.path.join(dest, "b")) == b"now a file"
    assert read(os.path.join(dest, "c")) == b"file replaces symlink"
    assert read(os.path.join(dest, "d")) == b"new"


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
