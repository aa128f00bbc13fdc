"""Streaming, verified, breakout-safe unpacking of layer tarballs into overlayfs lower directories.

The pipeline for one layer, with nothing buffered beyond a chunk:

    HTTP body -> DigestReader(blob digest) -> decompressor -> DigestReader(diff_id) -> tarfile "r|" -> disk

Every path a tar entry names is resolved with ``safepath`` (openat2 RESOLVE_IN_ROOT), and the entry is
then created relative to its parent's fd without following its last component, so ``..``, absolute
names, and symlinks or hardlinks planted by earlier entries cannot reach outside the layer directory.
The readers before tarfile (digests, decompression, bounds) are ``streams.py``; the tar-split record that lets
``save``/``push`` rebuild the exact tar is ``tarsplit.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import EngineError, IntegrityError
from ..linux import safepath
from .streams import (
    CHUNK,
    DEFAULT_MAX_LAYER_SIZE,
    BudgetReader,
    CountingReader,
    DigestReader,
    LayerBudget,
    check_quietly,
    decompressing_reader,
)
from .tarsplit import SplitRecorder

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass
class UnpackStats:
    files: int = 0
    size: int = 0  # bytes of regular file content (what Docker reports as the layer size)
    entries: int = 0
    warnings: list[str] = field(default_factory=list)
    tar_size: int = 0  # bytes of the uncompressed tar
    diff_id: str = ""  # sha256 of the uncompressed tar (computed when not given)


# Tar member types we act on.
_DIR_TYPES = {tarfile.DIRTYPE}
_FILE_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE}


def _remove_entry(parent_fd: int, base: str) -> None:
    """Remove whatever ``base`` is in ``parent_fd`` (recursively for a directory, never following links)."""
    try:
        st = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        # shutil.rmtree with dir_fd walks with O_NOFOLLOW fds: symlinks inside are unlinked, not followed.
        dfd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            for name in os.listdir(dfd):
                _remove_entry(dfd, name)
        finally:
            os.close(dfd)
        os.rmdir(base, dir_fd=parent_fd)
    else:
        os.unlink(base, dir_fd=parent_fd)


class LayerUnpacker:
    """Applies one layer tar stream to an (empty) directory, producing an overlayfs lowerdir."""

    def __init__(self, dest: str, *, same_owner: bool | None = None, chunk: int = CHUNK,
                 recorder: SplitRecorder | None = None, budget: LayerBudget | None = None):
        self.dest = dest
        self.budget = budget or LayerBudget(DEFAULT_MAX_LAYER_SIZE)
        self.recorder = recorder
        self.same_owner = os.geteuid() == 0 if same_owner is None else same_owner
        self.chunk = chunk
        self.stats = UnpackStats()
        self._dir_times: list[tuple[str, int]] = []
        self.root_fd = -1

    def unpack(self, stream: BinaryIO) -> UnpackStats:
        self.root_fd = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            try:
                tar = tarfile.open(fileobj=stream, mode="r|", bufsize=64 * 1024)  # noqa: SIM115 - with below
            except tarfile.ReadError as exc:
                raise IntegrityError(f"layer is not a valid tar stream: {exc}") from None
            with tar:
                while True:
                    try:
                        member = tar.next()
                    except tarfile.ReadError as exc:
                        raise IntegrityError(f"corrupt layer tar stream: {exc}") from None
                    if member is None:
                        break
                    # tarfile remembers every member; forget them so memory stays flat on huge layers.
                    tar.members.clear()
                    self.stats.entries += 1
                    self._apply(tar, member)
            # Directory mtimes last: creating children changes them.
            for path, mtime_ns in reversed(self._dir_times):
                with contextlib.suppress(OSError):
                    self._set_times(path, mtime_ns, is_symlink=False)
        finally:
            os.close(self.root_fd)
            self.root_fd = -1
        return self.stats

    # -- one entry -------------------------------------------------------------------------------------

    def _apply(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = safepath.clean(m.name)
        if self.recorder is not None:
            base_name = rel.rpartition("/")[2]
            if (m.type in _FILE_TYPES and m.size > 0 and rel and not m.issparse()
                    and not base_name.startswith(WHITEOUT_PREFIX)):
                self.recorder.file(m.offset_data, m.size, rel)
            else:
                self.recorder.mark(m.offset_data)
        if not rel:
            # "./" itself: the layer root's metadata (overlay ignores lowerdir root attributes mostly).
            if m.type in _DIR_TYPES:
                self._dir_times.append(("", int(m.mtime * 1e9)))
            return
        base = rel.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(rel, base)
            return
        pfd, base = safepath.open_parent(self.root_fd, rel)
        try:
            if m.type in _DIR_TYPES:
                self._mkdir(pfd, base, m)
                self._dir_times.append((rel, int(m.mtime * 1e9)))
                return
            _remove_entry(pfd, base)  # a later layer entry replaces an earlier one wholesale
            if m.type in _FILE_TYPES:
                self._write_file(tar, m, pfd, base)
            elif m.type == tarfile.SYMTYPE:
                os.symlink(m.linkname, base, dir_fd=pfd)
            elif m.type == tarfile.LNKTYPE:
                self._hardlink(m, pfd, base)
                return  # a hardlink shares the target's inode and metadata
            elif m.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
                kind = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK}.get(m.type, stat.S_IFIFO)
                os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            else:
                self.stats.warnings.append(f"skipped {m.name!r}: unsupported tar entry type {m.type!r}")
                return
            self._set_metadata(pfd, base, m)
        finally:
            os.close(pfd)

    def _mkdir(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            _remove_entry(pfd, base)
            st = None
        if st is None:
            os.mkdir(base, 0o700, dir_fd=pfd)
        self._set_metadata(pfd, base, m, times=False)

    def _write_file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        # m.size is the file's full size, holes included for a sparse member (which tarfile reads dense).
        self.budget.check_file(m.size, m.name)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            src = tar.extractfile(m)
            if src is not None:
                remaining = m.size
                while remaining > 0:
                    data = src.read(min(self.chunk, remaining))
                    if not data:
                        raise IntegrityError(f"layer tar truncated inside {m.name!r}")
                    self.budget.charge_file(len(data))
                    _write_all(fd, data)
                    remaining -= len(data)
        finally:
            os.close(fd)
        self.stats.files += 1
        self.stats.size += m.size

    def _hardlink(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        target = safepath.clean(m.linkname)
        if not target:
            raise IntegrityError(f"hardlink {m.name!r} points at the layer root")
        # The target's parent is resolved inside the root; its last component is linked as is
        # (linkat without AT_SYMLINK_FOLLOW), so the link can only ever share an inode of this layer.
        tfd, tbase = safepath.open_parent(self.root_fd, target, create=False)
        try:
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise IntegrityError(f"hardlink {m.name!r} -> {m.linkname!r}: target not in this layer") from None
        finally:
            os.close(tfd)

    def _whiteout(self, rel: str, base: str) -> None:
        pfd, _name = safepath.open_parent(self.root_fd, rel)
        try:
            if base == WHITEOUT_OPAQUE:
                # Mark the directory itself opaque; position in the tar does not matter.
                os.setxattr(f"/proc/self/fd/{pfd}", OVERLAY_OPAQUE_XATTR, b"y")
                return
            name = base[len(WHITEOUT_PREFIX) :]
            if not name or name in (".", "..") or "/" in name:
                raise IntegrityError(f"invalid whiteout entry {rel!r}")
            _remove_entry(pfd, name)
            # overlayfs whiteout: a 0/0 character device.
            os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        finally:
            os.close(pfd)

    # -- metadata --------------------------------------------------------------------------------------

    def _set_metadata(self, pfd: int, base: str, m: tarfile.TarInfo, times: bool = True) -> None:
        is_symlink = m.type == tarfile.SYMTYPE
        if self.same_owner:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        xattrs = {k[len("SCHILY.xattr.") :]: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        # Via /proc/self/fd/<parent>/<base>: the parent is a trusted fd, the last component not followed.
        proc_path = f"/proc/self/fd/{pfd}/{base}"
        for key, value in xattrs.items():
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            try:
                os.setxattr(proc_path, key, raw, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EPERM) and not key.startswith("trusted.overlay."):
                    self.stats.warnings.append(f"{m.name}: could not set xattr {key}: {exc.strerror}")
                    continue
                raise
        if not is_symlink:
            # Known not to be a symlink (we just created it, nobody else writes here): chmod may follow.
            # chmod after chown, because chown clears setuid/setgid.
            os.chmod(base, stat.S_IMODE(m.mode), dir_fd=pfd)
        if times:
            self._set_times_at(pfd, base, int(m.mtime * 1e9), is_symlink)

    def _set_times_at(self, pfd: int, base: str, mtime_ns: int, is_symlink: bool) -> None:
        try:
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
        except OSError:
            if not is_symlink:
                raise

    def _set_times(self, rel: str, mtime_ns: int, is_symlink: bool) -> None:
        if not rel:
            os.utime(f"/proc/self/fd/{self.root_fd}", ns=(mtime_ns, mtime_ns))
            return
        pfd, base = safepath.open_parent(self.root_fd, rel, create=False)
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                self._set_times_at(pfd, base, mtime_ns, is_symlink)
        finally:
            os.close(pfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def unpack_layer(
    stream: BinaryIO,
    dest: str,
    *,
    media_type: str = "",
    blob_digest: str | None = None,
    blob_size: int | None = None,
    diff_id: str | None = None,
    progress: Callable[[int], None] | None = None,
    tarsplit: str | None = None,
    budget: LayerBudget | None = None,
) -> UnpackStats:
    """Unpack a (possibly compressed) layer stream into the empty directory ``dest``, verifying digests.

    Raises IntegrityError if the compressed bytes do not match ``blob_digest`` or the uncompressed tar
    does not match ``diff_id``, and LayerTooLarge once the layer expands past ``budget`` (default: the
    default max_layer_size and the ratio bound on ``blob_size``). ``dest`` is left partially written then;
    the caller discards it.
    """
    budget = budget or LayerBudget.for_blob(None, blob_size)
    source: BinaryIO = stream
    blob_reader = None
    if blob_digest:
        blob_reader = DigestReader(stream, blob_digest, blob_size, what="layer blob")
        source = blob_reader  # type: ignore[assignment]
    if progress is not None:
        source = CountingReader(source, progress)  # type: ignore[assignment]
    tar_stream = BudgetReader(decompressing_reader(source, media_type), budget)
    # Without a diff_id to check (import), compute one: the caller names the layer by it.
    diff_reader = DigestReader(tar_stream, diff_id or "sha256:", what="layer content (diff_id)")
    tar_stream = diff_reader
    recorder = SplitRecorder(tar_stream, tarsplit) if tarsplit else None
    try:
        stats = LayerUnpacker(dest, recorder=recorder, budget=budget).unpack(recorder or tar_stream)
        # The tar ends with zero blocks; what follows must still be hashed for the digests to match.
        if recorder is not None:
            stats.tar_size = recorder.finish()
        if diff_id:
            diff_reader.verify()
        else:
            diff_reader.drain()
        stats.tar_size = stats.tar_size or diff_reader.count
        stats.diff_id = diff_id or f"sha256:{diff_reader.hasher.hexdigest()}"
    except EngineError:
        if blob_reader is not None:
            check_quietly(blob_reader)
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM):
            raise
        if blob_reader is not None:
            check_quietly(blob_reader)
        raise IntegrityError(f"cannot unpack layer {blob_digest or ''}: {exc}") from None
    except Exception as exc:
        if blob_reader is not None:
            check_quietly(blob_reader)
        raise IntegrityError(f"corrupt layer data {blob_digest or ''}: {exc}") from None
    finally:
        if recorder is not None:
            recorder.abort()
    if blob_reader is not None:
        blob_reader.verify()
    return stats


def dir_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def remove_tree(path: str) -> None:
    """Remove a (possibly partially unpacked, possibly hostile) tree without following symlinks."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


__all__ = [
    "LayerUnpacker",
    "UnpackStats",
    "unpack_layer",
]
