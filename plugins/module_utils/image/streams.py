"""The byte streams of a layer before tarfile sees them: digest verification, decompression and the bounds on
what a layer may expand to (``LayerBudget``). Nothing is buffered beyond a chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import IntegrityError, MissingLibrary, UnsupportedError

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}

# Bounds on what one layer may expand to (the blob itself is bounded by its descriptor's size and digest,
# but neither the diff_id nor the blob digest says anything about what a small blob turns into).
DEFAULT_MAX_LAYER_SIZE = 64 << 30  # engine config max_layer_size
# DEFLATE tops out near 1032:1, so no honest gzip layer exceeds this; zstd can (long runs of zeros), hence
# the floor below which the ratio is not applied (node-tar refuses past 1000:1 outright).
MAX_EXPANSION_RATIO = 1100
EXPANSION_FLOOR = 1 << 30


def new_hasher(digest: str):
    algo = digest.partition(":")[0]
    try:
        return _HASHES[algo]()
    except KeyError:
        raise UnsupportedError(f"unsupported digest algorithm in {digest!r}") from None


class DigestReader:
    """A file-like reader that hashes (and counts) everything read through it."""

    def __init__(self, raw: BinaryIO, digest: str, expected_size: int | None = None, what: str = "blob"):
        self.raw = raw
        self.digest = digest
        self.expected_size = expected_size
        self.what = what
        self.hasher = new_hasher(digest)
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK)
        if data:
            self.hasher.update(data)
            self.count += len(data)
            if self.expected_size is not None and self.count > self.expected_size:
                raise IntegrityError(
                    f"{self.what} {self.digest}: more data than the {self.expected_size} bytes announced"
                )
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def verify(self) -> None:
        self.drain()
        actual = self.digest.partition(":")[0] + ":" + self.hasher.hexdigest()
        if actual != self.digest:
            raise IntegrityError(f"{self.what} digest mismatch: expected {self.digest}, got {actual}")
        if self.expected_size is not None and self.count != self.expected_size:
            raise IntegrityError(
                f"{self.what} {self.digest}: size mismatch: expected {self.expected_size}, got {self.count}"
            )


class LayerTooLarge(IntegrityError):
    """A layer expands past its bound (engine config max_layer_size, or the compression ratio bound)."""


@dataclass
class LayerBudget:
    """How many bytes one layer may expand to, charged as they are produced: the uncompressed tar stream
    and, separately, the file content written (a sparse member is written dense: its holes count; a hard
    link shares an inode and counts nothing)."""

    limit: int
    reason: str = "max_layer_size"
    tar_bytes: int = 0
    written: int = 0

    @classmethod
    def for_blob(cls, max_size: int | None = None, blob_size: int | None = None,
                 floor: int = EXPANSION_FLOOR) -> LayerBudget:
        """The budget of a layer whose blob has ``blob_size`` bytes (None: unknown, only ``max_size``)."""
        limit = DEFAULT_MAX_LAYER_SIZE if max_size is None else max_size
        if blob_size is not None:
            # Uncompressed blobs too: a sparse member claims any size in a few bytes of tar.
            by_ratio = max(floor, blob_size * MAX_EXPANSION_RATIO)
            if by_ratio < limit:
                return cls(by_ratio, f"{MAX_EXPANSION_RATIO}:1 expansion of its {blob_size}-byte blob")
        return cls(limit)

    def _refuse(self, amount: int, what: str) -> LayerTooLarge:
        return LayerTooLarge(f"layer refused: its {what} reach {amount} bytes, more than the {self.limit} "
                             f"bytes allowed ({self.reason})")

    def charge_tar(self, n: int) -> None:
        self.tar_bytes += n
        if self.tar_bytes > self.limit:
            raise self._refuse(self.tar_bytes, "uncompressed tar stream would")

    def check_file(self, size: int, name: str) -> None:
        """Before writing a member: refuse one whose announced size alone overflows the budget."""
        if self.written + size > self.limit:
            raise self._refuse(self.written + size, f"files (with {name!r}, {size} bytes) would")

    def charge_file(self, n: int) -> None:
        self.written += n
        if self.written > self.limit:
            raise self._refuse(self.written, "files written would")


class BudgetReader:
    """Charges the decompressed tar stream to the layer's budget as it is read."""

    def __init__(self, raw, budget: LayerBudget):
        self.raw = raw
        self.budget = budget

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.budget.charge_tar(len(data))
        return data

    def readable(self) -> bool:
        return True


class _PeekReader:
    """Lets us sniff the compression magic of a stream without losing those bytes."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.buf = b""

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n:
            more = self.raw.read(n - len(self.buf))
            if not more:
                break
            self.buf += more
        return self.buf[:n]

    def read(self, n: int = -1) -> bytes:
        if self.buf:
            if n is None or n < 0:
                n = len(self.buf)
            data, self.buf = self.buf[:n], self.buf[n:]
            return data
        return self.raw.read(n)

    def readable(self) -> bool:
        return True


class _GzipReader:
    """Streaming gunzip with bounded output per call (handles multi-member streams and zero padding)."""

    def __init__(self, raw):
        import zlib

        self._zlib = zlib
        self.raw = raw
        self.d = zlib.decompressobj(wbits=31)
        self.eof = False
        self.tail = b""

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        while not self.eof:
            src = self.d.unconsumed_tail or self.tail
            self.tail = b""
            if not src:
                if self.d.eof:
                    src = self.d.unused_data
                    if not src:
                        src = self.raw.read(CHUNK)
                        if not src:
                            self.eof = True
                            break
                    if src.strip(b"\0") == b"":
                        continue  # trailing zero padding after the last member
                    self.d = self._zlib.decompressobj(wbits=31)
                else:
                    src = self.raw.read(CHUNK)
                    if not src:
                        raise IntegrityError("truncated gzip stream")
            out = self.d.decompress(src, n)
            if out:
                return out
        return b""

    def readable(self) -> bool:
        return True


def decompressing_reader(raw: BinaryIO, media_type: str = ""):
    """Wrap ``raw`` in the decompressor its media type (or, failing that, its magic bytes) calls for."""
    peek = _PeekReader(raw)
    head = peek.peek(4)
    if media_type.endswith("+zstd") or media_type.endswith(".zstd") or head.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise MissingLibrary("zstd-compressed layers need the zstandard module (Debian: python3-zstandard, "
                                 "PyPI: zstandard)", library="zstandard", purpose="zstd-compressed layers") from None
        return zstandard.ZstdDecompressor().stream_reader(peek, read_size=CHUNK, read_across_frames=True)
    if head.startswith(GZIP_MAGIC):
        return _GzipReader(peek)
    if "gzip" in media_type:
        raise IntegrityError(f"layer announced as {media_type} is not gzip data")
    return peek


class CountingReader:
    """Reports bytes read (compressed, as they arrive) to a progress callback."""

    def __init__(self, raw, report: Callable[[int], None]):
        self.raw = raw
        self.report = report

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.report(len(data))
        return data

    def readable(self) -> bool:
        return True


def drain(reader) -> None:
    """Read a stream to its end (what follows a tar's end must be hashed too)."""
    while reader.read(CHUNK):
        pass


def check_quietly(reader: DigestReader) -> None:
    """After a decode error, prefer reporting a digest mismatch (the likelier cause) if there is one."""
    try:
        reader.verify()
    except IntegrityError:
        raise
    except Exception:
        pass
