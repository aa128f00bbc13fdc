"""Layer unpacking that needs root: every entry type with its metadata (chown, mknod, trusted xattrs), whiteouts."""

import contextlib
import os
import stat

import pytest

from tests.fixtures.images import (
    EPOCH,
    Dir,
    File,
    Hardlink,
    Opaque,
    Symlink,
    TarEntry,
    Whiteout,
)
from tests.fixtures.layer_dirs import read, unpack


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
