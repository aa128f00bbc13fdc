"""Tar-split: a layer's tar stream recorded without its file contents, and the exact tar rebuilt from it and the
unpacked directory (``save`` and ``push`` need the original bytes: same diff_id).
"""

from __future__ import annotations

import contextlib
import os

from ..errors import IntegrityError
from ..linux import safepath
from .streams import CHUNK, new_hasher


class SplitRecorder:
    """Records a layer's tar stream minus the contents of regular files (like containerd's tar-split),
    so the exact tar (same diff_id) can be rebuilt later from the unpacked directory: ``save`` and
    ``push`` need it, and keeping only headers costs a few KB per layer instead of a second copy.

    File format (gzip): ``R`` u32 len + raw bytes | ``F`` u64 size + u16 len + path (file content).
    Memory stays bounded: raw bytes are flushed whenever the unpacker reports a member.
    """

    def __init__(self, raw, path: str):
        import gzip

        self.raw = raw
        self.path = path
        self._out = gzip.open(path, "wb", compresslevel=1)  # noqa: SIM115 - closed by finish()
        self.pos = 0  # stream offset of the next byte to be read
        self._pending = bytearray()  # raw bytes not yet written, starting at _pending_start
        self._pending_start = 0
        self._skip_end = 0  # bytes below this offset are file content (a hole): not recorded

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            start, self.pos = self.pos, self.pos + len(data)
            if self._skip_end > start:
                cut = min(len(data), self._skip_end - start)
                start += cut
                self._pending_start = start
                self._pending += data[cut:]
            else:
                self._pending += data
        return data

    def readable(self) -> bool:
        return True

    def _flush_upto(self, offset: int) -> None:
        n = offset - self._pending_start
        if n > 0:
            chunk = bytes(self._pending[:n])
            del self._pending[:n]
            self._pending_start += len(chunk)
            self._out.write(b"R" + len(chunk).to_bytes(4, "big") + chunk)

    def mark(self, offset: int) -> None:
        """Everything before ``offset`` is tar metadata: write it out (keeps memory flat)."""
        self._flush_upto(offset)

    def file(self, offset: int, size: int, rel: str) -> None:
        """[offset, offset + size) is the content of ``rel``, which will be on disk in the layer."""
        self._flush_upto(offset)
        name = rel.encode("utf-8", "surrogateescape")
        self._out.write(b"F" + size.to_bytes(8, "big") + len(name).to_bytes(2, "big") + name)
        end = offset + size
        drop = min(len(self._pending), max(0, end - self._pending_start))
        del self._pending[:drop]
        self._pending_start += drop
        self._skip_end = end

    def finish(self) -> int:
        """Write what is left (end-of-archive blocks, padding); return the tar's total size."""
        while self.read(CHUNK):
            pass
        self._flush_upto(self.pos)
        self._out.close()
        return self.pos

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()


def rebuild_layer(layer_dir: str, tarsplit: str, diff_id: str | None = None, chunk: int = CHUNK):
    """Yield the bytes of the layer's original tar (see SplitRecorder), verifying ``diff_id``."""
    import gzip

    hasher = new_hasher(diff_id) if diff_id else None
    root_fd = os.open(layer_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with gzip.open(tarsplit, "rb") as src:
            while kind := src.read(1):
                if kind == b"R":
                    data = src.read(int.from_bytes(src.read(4), "big"))
                    if hasher:
                        hasher.update(data)
                    yield data
                elif kind == b"F":
                    size = int.from_bytes(src.read(8), "big")
                    rel = src.read(int.from_bytes(src.read(2), "big")).decode("utf-8", "surrogateescape")
                    fd = safepath.open_in_root(root_fd, rel, os.O_RDONLY | os.O_NOFOLLOW)
                    with os.fdopen(fd, "rb") as f:
                        left = size
                        while left:
                            data = f.read(min(chunk, left))
                            if not data:
                                raise IntegrityError(f"layer file {rel!r} is shorter than recorded")
                            left -= len(data)
                            if hasher:
                                hasher.update(data)
                            yield data
                else:
                    raise IntegrityError(f"corrupt tar-split data {tarsplit}")
    except OSError as exc:
        raise IntegrityError(f"cannot rebuild layer from {layer_dir}: {exc}") from None
    finally:
        os.close(root_fd)
    if hasher and diff_id and f"{diff_id.partition(':')[0]}:{hasher.hexdigest()}" != diff_id:
        raise IntegrityError(
            f"layer {diff_id} cannot be reproduced exactly from the store (it overwrites files within itself)"
        )
