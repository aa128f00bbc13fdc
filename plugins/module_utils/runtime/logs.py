"""Container logs: Docker's ``json-file`` driver (writer, rotation, reader) and ``none``.

The monitor owns the writer: one ``{"log","stream","time"}`` JSON object per line in
``<container dir>/<id>-json.log``, as Docker writes it. ``max-size`` rotates the file (``max-file`` keeps that
many files in all, ``.1`` the newest rotated one; ``compress`` gzips the rotated ones). The reader serves
``logs [-f] [--tail] [--since] [--until] [-t]``; it never needs the monitor.

Stdlib only, imported lazily: the monitor and the ``logs`` command both load it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InvalidArgument

DRIVERS = ("json-file", "none")
JSON_FILE_OPTIONS = ("max-size", "max-file", "compress", "labels", "env", "tag", "mode", "max-buffer-size")
PARTIAL_LIMIT = 16 * 1024  # Docker cuts lines longer than its 16 KiB buffer into several entries


def log_path(directory: str, container_id: str) -> str:
    return os.path.join(directory, f"{container_id}-json.log")


def parse_size(text: str) -> int:
    """go-units FromHumanSize (decimal: 1k = 1000), as Docker reads json-file's max-size."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*", text.lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * 1000 ** " kmgtp".index(m.group(2) or " "))


@dataclass
class LogConfig:
    driver: str = "json-file"
    max_size: int = -1      # bytes; -1 unlimited
    max_file: int = 1
    compress: bool = False

    @classmethod
    def parse(cls, driver: str, options: dict[str, str]) -> LogConfig:
        """Validate the way ``docker run --log-driver/--log-opt`` does (errors at create, exit 125)."""
        driver = driver or "json-file"
        if driver not in DRIVERS:
            raise InvalidArgument(f'logger: no log driver named \'{driver}\' is registered (supported: '
                                  f'{", ".join(DRIVERS)})')
        if driver == "none":
            if options:
                raise InvalidArgument(f"unknown log opt '{next(iter(options))}' for none log driver")
            return cls(driver="none")
        for key in options:
            if key not in JSON_FILE_OPTIONS:
                raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
        config = cls()
        if options.get("max-size", "") not in ("", "-1"):
            config.max_size = parse_size(options["max-size"])
        if "max-file" in options:
            try:
                config.max_file = int(options["max-file"])
            except ValueError:
                raise InvalidArgument(f"invalid max-file: {options['max-file']}") from None
            if config.max_file < 1:
                raise InvalidArgument("max-file cannot be less than 1")
            if config.max_file > 1 and config.max_size < 0:
                raise InvalidArgument("max-file can only be set if max-size is set")
        if "compress" in options:
            value = options["compress"].lower()
            if value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"error parsing compress: {options['compress']}")
            config.compress = value in ("true", "1")
            if config.compress and config.max_size < 0:
                raise InvalidArgument("compress cannot be true when max-size is not set")
        return config


def rfc3339_nano(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class JsonFileWriter:
    """Appends entries to the container's log, rotating by size. Complete lines only, per stream."""

    def __init__(self, path: str, config: LogConfig) -> None:
        self.path = path
        self.config = config
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        buffered = self.pending.get(stream, b"") + data
        entries = []
        while True:
            cut = buffered.find(b"\n", 0, PARTIAL_LIMIT)
            if cut < 0:
                if len(buffered) < PARTIAL_LIMIT:
                    break
                cut = PARTIAL_LIMIT - 1
            entries.append(buffered[: cut + 1])
            buffered = buffered[cut + 1:]
        self.pending[stream] = buffered
        if entries:
            self._emit(stream, entries)

    def flush(self) -> None:
        """Write what is left of unterminated lines (the container stopped or its stream ended)."""
        for stream, data in self.pending.items():
            if data:
                self._emit(stream, [data])
            self.pending[stream] = b""

    def _emit(self, stream: str, entries: list[bytes]) -> None:
        now = rfc3339_nano(time.time_ns())
        lines = [(json.dumps({"log": e.decode("utf-8", errors="replace"), "stream": stream, "time": now},
                             separators=(",", ":")) + "\n").encode() for e in entries]
        batch: list[bytes] = []
        size = self.size
        for line in lines:  # rotation is decided entry by entry, as Docker does; writes are batched
            if 0 <= self.config.max_size < size + len(line) and size > 0:
                self._write(b"".join(batch))
                batch = []
                self._rotate()
                size = 0
            batch.append(line)
            size += len(line)
        self._write(b"".join(batch))

    def _write(self, blob: bytes) -> None:
        if not blob:
            return
        try:
            os.write(self.fd, blob)
            self.size += len(blob)
        except OSError:
            pass  # a full disk must not stop the container (Docker drops the entry too)

    def _rotate(self) -> None:
        keep = self.config.max_file - 1
        suffix = ".gz" if self.config.compress else ""
        if keep < 1:
            os.ftruncate(self.fd, 0)
            self.size = 0
            return
        for n in range(keep, 0, -1):
            older = f"{self.path}.{n}{suffix}"
            if n == keep:
                _unlink(older)
            elif os.path.exists(older):
                os.rename(older, f"{self.path}.{n + 1}{suffix}")
        os.close(self.fd)
        if self.config.compress:
            _gzip_to(self.path, f"{self.path}.1.gz")
            os.unlink(self.path)
        else:
            os.rename(self.path, f"{self.path}.1")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = 0

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _gzip_to(source: str, dest: str) -> None:
    import gzip

    tmp = dest + ".tmp"
    with open(source, "rb") as src, gzip.open(tmp, "wb") as out:
        while chunk := src.read(1 << 16):
            out.write(chunk)
    os.rename(tmp, dest)


# --- reading ---------------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_time_arg(text: str, now: float | None = None) -> float:
    """Docker's --since/--until: RFC 3339 (date or date-time), a Unix timestamp, or a Go duration ago."""
    from ..timefmt import parse_rfc3339

    now = time.time() if now is None else now
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"((\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+", text):
        return now - sum(float(v) * _UNIT[u] for v, u in _DURATION_RE.findall(text))
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        text += "T00:00:00Z"
    if "T" in text and not re.search(r"(Z|[+-]\d\d:\d\d)$", text):
        text += "Z"
    value = parse_rfc3339(text)
    if not value:
        raise InvalidArgument(f'invalid value for "since"/"until": {text!r}')
    return value


@dataclass
class LogEntry:
    stream: str
    text: str
    time: str       # RFC 3339 with nanoseconds
    seconds: float


def _files_oldest_first(path: str) -> list[str]:
    found = []
    n = 1
    while True:
        plain, packed = f"{path}.{n}", f"{path}.{n}.gz"
        if os.path.exists(plain):
            found.append(plain)
        elif os.path.exists(packed):
            found.append(packed)
        else:
            break
        n += 1
    return [*reversed(found), path]


def _parse(line: bytes) -> LogEntry | None:
    from ..timefmt import parse_rfc3339

    try:
        obj = json.loads(line)
        return LogEntry(obj["stream"], obj["log"], obj["time"], parse_rfc3339(obj["time"]))
    except (ValueError, KeyError, TypeError):
        return None  # a line cut by a crash


def read_entries(path: str) -> list[LogEntry]:
    entries = []
    for name in _files_oldest_first(path):
        try:
            if name.endswith(".gz"):
                import gzip

                with gzip.open(name, "rb") as f:
                    lines = f.read().splitlines()
            else:
                with open(name, "rb") as f:
                    lines = f.read().splitlines()
        except OSError:
            continue
        entries += [e for e in map(_parse, lines) if e is not None]
    return entries


def follow_entries(path: str, offset: int, inode: int, still_running) -> Iterator[LogEntry]:
    """Entries appended to ``path`` after ``offset`` until ``still_running()`` turns false (then drain)."""
    buffered = b""
    while True:
        running = still_running()
        try:
            st = os.stat(path)
            if st.st_ino != inode or st.st_size < offset:  # rotated or truncated: start over on the new file
                inode, offset = st.st_ino, 0
            if st.st_size > offset:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
                offset += len(data)
                buffered += data
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    entry = _parse(line)
                    if entry is not None:
                        yield entry
                continue
        except FileNotFoundError:
            pass
        if not running:
            return
        time.sleep(0.1)
