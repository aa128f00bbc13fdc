"""The local image store: content-addressed blobs, shared unpacked layers, and a tag/record index.

Layout under ``images_dir``::

    index.json              {"version": 1, "images": {id: {...}}, "tags": {"docker.io/library/busybox:latest": id}}
    index.lock              flock serialising index updates (readers need none: index.json is replaced atomically)
    blobs/<algo>/<hex>      manifests, indexes and image configs, exactly as the registry served them
    layers/<key>/           one unpacked layer, used as an overlayfs lowerdir as is (nothing else inside)
    layers/<key>.json       that layer's metadata (diff_id, size, source blob), beside the dir, not in it
    layers/<key>.lock       flock held while a process downloads/unpacks that layer
    tmp/<name>/, .lock      work dirs of running pulls; the rename of one into layers/ is the commit point

``<key>`` is the diff_id hex for sha256 (``<algo>-<hex>`` otherwise). A layer directory exists only once
completely unpacked, and an image appears in index.json only after all its layers and blobs exist, so a
pull killed at any moment leaves nothing half-visible; leftovers in tmp/ are swept by later pulls.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ImageNotFound, IntegrityError, InvalidArgument
from ..fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    durable_rename,
    ensure_dir,
    fsync_tree,
    locked,
    read_json,
)
from .reference import Reference, familiar_from_qualified, parse_reference

INDEX_VERSION = 1
_HEX_PREFIX_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
_TMP_STALE_SECONDS = 3600


@dataclass
class ImageRecord:
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created: str
    size: int
    config: dict
    diff_ids: list[str]
    manifest_digest: str = ""  # the platform manifest actually unpacked
    extra: dict = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id.partition(":")[2][:12]


def _digest_key(digest: str) -> tuple[str, str]:
    algo, sep, hexpart = digest.partition(":")
    if not sep or not re.fullmatch(r"[0-9a-f]+", hexpart) or algo not in ("sha256", "sha512"):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return algo, hexpart


def compute_digest(data: bytes, algo: str = "sha256") -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


@dataclass
class GcResult:
    layers: list[str] = field(default_factory=list)  # diff_ids of the layers deleted
    blobs: int = 0
    reclaimed: int = 0  # bytes of layer content deleted
    deferred: bool = False  # a pull/load was writing: nothing collected this time


def _remove_if_unlocked_and_old(lock_path: str, now: float) -> None:
    """A lock file left by a work dir's owner that died before (or after) its directory existed."""
    try:
        if now - os.lstat(lock_path).st_mtime < 60:
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(lock_path)
    except OSError:
        pass
    finally:
        os.close(fd)


class TmpDir:
    """A work directory under tmp/, flock'ed while alive so a sweeper knows it is in use."""

    def __init__(self, tmp_root: str, prefix: str):
        ensure_dir(tmp_root, 0o700)
        # The lock is held before its name appears beside the directory: a sweeper that finds "<dir>.lock"
        # can never take it in the instant between its creation and our flock.
        self._fd, pending = tempfile.mkstemp(prefix=".pending-", suffix=".lock", dir=tmp_root)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.path = tempfile.mkdtemp(prefix=prefix, dir=tmp_root)
        self.lock_path = self.path + ".lock"
        os.rename(pending, self.lock_path)

    @property
    def tarsplit(self) -> str:
        return self.path + ".tarsplit"

    def cleanup(self) -> None:
        if os.path.lexists(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tarsplit)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TmpDir:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


class ImageStore:
    def __init__(self, images_dir: str):
        self.root = os.path.abspath(images_dir)
        self.index_path = os.path.join(self.root, "index.json")
        self.lock_path = os.path.join(self.root, "index.lock")
        self.blobs_dir = os.path.join(self.root, "blobs")
        self.layers_dir = os.path.join(self.root, "layers")
        self.tmp_dir = os.path.join(self.root, "tmp")

    # -- index ---------------------------------------------------------------------------------------

    def _ensure(self) -> None:
        # Root-only: layers hold setuid binaries and devices. Overlay resolves its lowerdirs once, as root, at
        # mount time; the container's users reach them through the mount, never through these paths.
        ensure_dir(self.root, 0o700)
        ensure_dir(self.blobs_dir, 0o700)
        ensure_dir(self.layers_dir, 0o700)
        ensure_dir(self.tmp_dir, 0o700)

    def _read_index(self) -> dict:
        data = read_json(self.index_path, default=None)
        if data is None:
            return {"version": INDEX_VERSION, "images": {}, "tags": {}}
        if data.get("version") != INDEX_VERSION:
            raise IntegrityError(f"{self.index_path}: unsupported index version {data.get('version')!r}")
        data.setdefault("images", {})
        data.setdefault("tags", {})
        return data

    @contextlib.contextmanager
    def _index_update(self) -> Iterator[dict]:
        """Read-modify-write of index.json under the store lock."""
        self._ensure()
        with locked(self.lock_path):
            index = self._read_index()
            yield index
            atomic_write_json(self.index_path, index)

    # -- blobs ---------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        algo, hexpart = _digest_key(digest)
        return os.path.join(self.blobs_dir, algo, hexpart)

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def read_blob(self, digest: str, verify: bool = True) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            data = f.read()
        if verify and compute_digest(data, digest.partition(":")[0]) != digest:
            raise IntegrityError(f"stored blob {digest} is corrupt")
        return data

    def write_blob(self, digest: str, data: bytes) -> str:
        if compute_digest(data, digest.partition(":")[0]) != digest:
            raise IntegrityError(f"blob digest mismatch: expected {digest}")
        path = self.blob_path(digest)
        if not os.path.isfile(path):
            ensure_dir(os.path.dirname(path), 0o700)
            atomic_write_bytes(path, data, 0o600)
        return path

    # -- layers --------------------------------------------------------------------------------------

    def layer_key(self, diff_id: str) -> str:
        algo, hexpart = _digest_key(diff_id)
        return hexpart if algo == "sha256" else f"{algo}-{hexpart}"

    def layer_path(self, diff_id: str) -> str:
        return os.path.join(self.layers_dir, self.layer_key(diff_id))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(self.layer_path(diff_id))

    def layer_info(self, diff_id: str) -> dict:
        return read_json(self.layer_path(diff_id) + ".json", default=None) or {}

    @contextlib.contextmanager
    def layer_lock(self, diff_id: str) -> Iterator[None]:
        """Held while one process produces a layer; others wait, then find it done."""
        self._ensure()
        with locked(self.layer_path(diff_id) + ".lock"):
            yield

    def new_tmp(self, prefix: str = "pull-") -> TmpDir:
        self._ensure()
        return TmpDir(self.tmp_dir, prefix)

    def commit_layer(self, diff_id: str, tmp: TmpDir, info: dict) -> str:
        """Move an unpacked tree into place (atomic rename). Caller holds layer_lock(diff_id).

        Durable once this returns: every file and directory of the tree is synced before the rename that
        commits it, and layers/ after it (the metadata and the tar-split too, before the layer appears).
        """
        final = self.layer_path(diff_id)
        if os.path.isdir(final):
            return final
        atomic_write_json(final + ".json", dict(info, diff_id=diff_id), 0o600)
        if os.path.exists(tmp.tarsplit):
            with open(tmp.tarsplit, "rb") as f:
                os.fsync(f.fileno())
            os.rename(tmp.tarsplit, final + ".tarsplit")
        os.chmod(tmp.path, 0o755)  # mkdtemp made it 0700; overlay wants the layer's own root mode
        fsync_tree(tmp.path)
        durable_rename(tmp.path, final)
        return final

    def sweep_tmp(self) -> None:
        """Remove work dirs of pulls that died (their flock is free again)."""
        if not os.path.isdir(self.tmp_dir):
            return
        now = time.time()
        for name in os.listdir(self.tmp_dir):
            path = os.path.join(self.tmp_dir, name)
            if name.endswith((".lock", ".tarsplit")):
                if name.endswith(".lock") and not os.path.exists(path[: -len(".lock")]):
                    _remove_if_unlocked_and_old(path, now)
                if name.endswith(".tarsplit") and not os.path.exists(path[: -len(".tarsplit")]):
                    with contextlib.suppress(OSError):
                        if now - os.lstat(path).st_mtime > 60:
                            os.unlink(path)
                continue
            lock_path = path + ".lock"
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                # No lock file: either being created right now, or an ancient leftover.
                with contextlib.suppress(OSError):
                    if now - os.lstat(path).st_mtime > _TMP_STALE_SECONDS:
                        shutil.rmtree(path, ignore_errors=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                shutil.rmtree(path, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + ".tarsplit")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
            finally:
                os.close(fd)

    # -- images --------------------------------------------------------------------------------------

    def commit_image(
        self,
        image_id: str,
        *,
        config_digest: str,
        manifest_digest: str,
        diff_ids: list[str],
        created: str,
        ref: Reference | None,
        repo_digest: str | None,
        extra_blobs: list[str] | None = None,
    ) -> tuple[ImageRecord, bool]:
        """Record an image whose blobs and layers are all in place; point ``ref``'s tag at it.

        Returns (record, changed): changed is False when the tag already named this very image.
        """
        size = sum(int(self.layer_info(d).get("size", 0)) for d in diff_ids)
        with self._index_update() as index:
            # Checked under the index lock: a GC (which takes it too) cannot slip in between.
            for diff_id in diff_ids:
                if not self.has_layer(diff_id):
                    raise IntegrityError(f"layer {diff_id} of {image_id} is missing from the store")
            images, tags = index["images"], index["tags"]
            changed = image_id not in images
            entry = images.setdefault(image_id, {"repo_digests": [], "added": time.time()})
            entry.update(
                config_digest=config_digest,
                diff_ids=list(diff_ids),
                created=created,
                size=size,
            )
            if manifest_digest or "manifest_digest" not in entry:
                entry["manifest_digest"] = manifest_digest
            owned = set(entry.get("blobs", [])) | {config_digest}
            owned |= set(extra_blobs or ()) | ({manifest_digest} if manifest_digest else set())
            entry["blobs"] = sorted(owned)
            if repo_digest:
                # One digest per repository, like Docker: a re-pushed tag replaces the old digest.
                repo = repo_digest.partition("@")[0]
                kept = [d for d in entry["repo_digests"] if d.partition("@")[0] != repo]
                if repo_digest not in entry["repo_digests"]:
                    changed = changed or ref is None or ref.tag is None
                entry["repo_digests"] = sorted(set(kept) | {repo_digest})
            if ref is not None and ref.tag is not None:
                tag_name = str(ref.with_tag(ref.tag))
                if tags.get(tag_name) != image_id:
                    changed = True
                    tags[tag_name] = image_id
        return self._record(image_id, index), changed

    def _record(self, image_id: str, index: dict) -> ImageRecord:
        entry = index["images"][image_id]
        config_digest = entry.get("config_digest", image_id)
        try:
            import json

            config = json.loads(self.read_blob(config_digest, verify=False))
        except FileNotFoundError:
            raise IntegrityError(f"image {image_id}: config blob {config_digest} missing from the store") from None
        tags = sorted(familiar_from_qualified(t) for t, i in index["tags"].items() if i == image_id)
        digests = sorted(familiar_from_qualified(d) for d in entry.get("repo_digests", []))
        return ImageRecord(
            id=image_id,
            repo_tags=tags,
            repo_digests=digests,
            created=entry.get("created") or config.get("created", ""),
            size=int(entry.get("size", 0)),
            config=config,
            diff_ids=list(entry.get("diff_ids") or config.get("rootfs", {}).get("diff_ids", [])),
            manifest_digest=entry.get("manifest_digest", ""),
            extra={"added": entry.get("added", 0), "comment": entry.get("comment", "")},
        )

    def list(self) -> list[ImageRecord]:
        index = self._read_index()
        records = [self._record(i, index) for i in index["images"]]
        return sorted(records, key=lambda r: r.created, reverse=True)

    def lookup(self, name_or_id: str) -> ImageRecord:
        """Find an image by reference, full id, or unique id prefix (Docker's order of precedence)."""
        index = self._read_index()
        text = name_or_id.strip()
        found = self._find_id(text, index)
        if found is None:
            try:
                shown = parse_reference(text).familiar
            except InvalidArgument:
                shown = text
            raise ImageNotFound(f"No such image: {shown}")
        return self._record(found, index)

    def resolve_id(self, name_or_id: str) -> str:
        return self.lookup(name_or_id).id

    def _find_id(self, text: str, index: dict) -> str | None:
        images = index["images"]
        if text.startswith("sha256:") and len(text) == 71:
            return text if text in images else None
        if re.fullmatch(r"[0-9a-f]{64}", text):
            return f"sha256:{text}" if f"sha256:{text}" in images else None
        ref: Reference | None = None
        try:
            ref = parse_reference(text)
        except InvalidArgument:
            if not _HEX_PREFIX_RE.match(text):
                raise
        if ref is not None:
            if ref.digest:
                wanted = f"{ref.name}@{ref.digest}"
                for image_id, entry in images.items():
                    if wanted in entry.get("repo_digests", []):
                        return image_id
                return None
            image_id = index["tags"].get(str(ref))
            if image_id in images:
                return image_id
        m = _HEX_PREFIX_RE.match(text)
        if m:
            matches = [i for i in images if i.partition(":")[2].startswith(m.group(1))]
            if len(matches) == 1:
                return matches[0]
        return None

    # -- tags, removal, garbage collection --------------------------------------------------------------

    def tag(self, image_id: str, ref: Reference) -> bool:
        """Point ``ref`` (a tagged reference) at ``image_id``; False if it already did."""
        name = str(ref.with_tag(ref.tag or "latest"))
        with self._index_update() as index:
            if image_id not in index["images"]:
                raise ImageNotFound(f"No such image: {image_id}")
            if index["tags"].get(name) == image_id:
                return False
            index["tags"][name] = image_id
        return True

    def untag(self, ref: Reference) -> str | None:
        """Drop the tag (or repo digest) ``ref``; return the image ID it named, or None."""
        with self._index_update() as index:
            if ref.digest:
                wanted = f"{ref.name}@{ref.digest}"
                for image_id, entry in index["images"].items():
                    if wanted in entry.get("repo_digests", []):
                        entry["repo_digests"].remove(wanted)
                        return image_id
                return None
            return index["tags"].pop(str(ref), None)

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record ``name@digest`` for an image (after a push), one digest per repository as Docker keeps."""
        with self._index_update() as index:
            entry = index["images"].get(image_id)
            if entry is None:
                return
            repo = repo_digest.partition("@")[0]
            kept = [d for d in entry.get("repo_digests", []) if d.partition("@")[0] != repo]
            entry["repo_digests"] = sorted({*kept, repo_digest})

    def references(self, image_id: str) -> tuple[list[str], list[str]]:
        """(qualified tags, qualified repo digests) naming ``image_id``."""
        index = self._read_index()
        entry = index["images"].get(image_id) or {}
        tags = sorted(t for t, i in index["tags"].items() if i == image_id)
        return tags, sorted(entry.get("repo_digests", []))

    def forget_image(self, image_id: str) -> bool:
        """Remove the image record (its tags and digests with it). Layers and blobs go at the next gc()."""
        with self._index_update() as index:
            if index["images"].pop(image_id, None) is None:
                return False
            for name in [t for t, i in index["tags"].items() if i == image_id]:
                del index["tags"][name]
        return True

    @contextlib.contextmanager
    def gc_hold(self) -> Iterator[None]:
        """Held (shared) by anything that writes layers/blobs not yet referenced by the index (pull,
        load, import): a garbage collection waits for none of them, it just skips while one runs."""
        self._ensure()
        with locked(os.path.join(self.root, "gc.lock"), shared=True):
            yield

    def gc(self, keep_images: set[str] | None = None) -> GcResult:
        """Delete layers and blobs no image references. Never blocks: if a pull/load is writing
        (gc_hold), the collection is left to a later call (orphans are harmless meanwhile)."""
        result = GcResult()
        if not os.path.isdir(self.root):
            return result
        with locked(self.lock_path):
            gfd = os.open(os.path.join(self.root, "gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(gfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    result.deferred = True
                    return result
                index = self._read_index()
                used_layers: set[str] = set()
                used_blobs: set[str] = set()
                for entry in index["images"].values():
                    used_layers |= {self.layer_key(d) for d in entry.get("diff_ids", [])}
                    used_blobs |= set(entry.get("blobs", [])) | {entry.get("config_digest", "")}
                    used_blobs.add(entry.get("manifest_digest", ""))
                    used_blobs |= {d.rpartition("@")[2] for d in entry.get("repo_digests", [])}
                self._gc_layers(used_layers, result)
                self._gc_blobs(used_blobs, result)
            finally:
                os.close(gfd)
        return result

    def _gc_layers(self, used: set[str], result: GcResult) -> None:
        if not os.path.isdir(self.layers_dir):
            return
        for name in os.listdir(self.layers_dir):
            path = os.path.join(self.layers_dir, name)
            if "." in name or name in used or not os.path.isdir(path):
                continue
            info = read_json(path + ".json", default=None) or {}
            # Rename out of sight first: a crash mid-delete leaves garbage in tmp/, never half a layer.
            doomed = tempfile.mkdtemp(prefix="gc-", dir=self.tmp_dir)
            os.rename(path, os.path.join(doomed, "layer"))
            for suffix in (".json", ".tarsplit", ".lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)
            shutil.rmtree(doomed, ignore_errors=True)
            result.layers.append(info.get("diff_id") or f"sha256:{name}")
            result.reclaimed += int(info.get("size", 0))

    def _gc_blobs(self, used: set[str], result: GcResult) -> None:
        for algo in ("sha256", "sha512"):
            directory = os.path.join(self.blobs_dir, algo)
            if not os.path.isdir(directory):
                continue
            for name in os.listdir(directory):
                if name.startswith(".") or f"{algo}:{name}" in used:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
                result.blobs += 1

    def tarsplit_path(self, diff_id: str) -> str:
        return self.layer_path(diff_id) + ".tarsplit"

    def update_layer_info(self, diff_id: str, **changes) -> None:
        """Merge ``changes`` into a layer's metadata (e.g. where its blob can be found for a push)."""
        with self.layer_lock(diff_id):
            info = self.layer_info(diff_id)
            if not info:
                return
            for key, value in changes.items():
                if key == "sources":
                    known = info.setdefault("sources", [])
                    for src in value:
                        if src not in known:
                            known.append(src)
                    del known[:-8]  # a few recent places suffice
                else:
                    info[key] = value
            atomic_write_json(self.layer_path(diff_id) + ".json", info, 0o600)

    def layer_dirs(self, record: ImageRecord) -> list[str]:
        dirs = []
        for diff_id in record.diff_ids:
            path = self.layer_path(diff_id)
            if not os.path.isdir(path):
                raise IntegrityError(f"layer {diff_id} of image {record.short_id} is missing from the store")
            dirs.append(path)
        return dirs

    # -- verification (image-side faults work: appended, owned by the store's maintainer) ------------------

    def verify(self, content: bool = True) -> list[str]:
        """Check the committed store; return the problems found ([] when sound).

        Every blob matches its digest; every layer directory has its metadata (and the metadata a directory),
        and with ``content`` its tar rebuilt from the tree matches its diff_id and size; every image's
        config, manifest, blobs and layers exist; every tag names an image. Work dirs under tmp/ are not
        looked at (a live pull owns them; sweep_tmp collects dead ones)."""
        from .tarsplit import rebuild_layer

        problems: list[str] = []
        for algo in ("sha256", "sha512"):
            directory = os.path.join(self.blobs_dir, algo)
            for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
                path = os.path.join(directory, name)
                if name.startswith("."):
                    problems.append(f"stray file {path}")
                    continue
                with open(path, "rb") as f:
                    if compute_digest(f.read(), algo) != f"{algo}:{name}":
                        problems.append(f"blob {algo}:{name} does not match its digest")
        for name in sorted(os.listdir(self.layers_dir)) if os.path.isdir(self.layers_dir) else []:
            path = os.path.join(self.layers_dir, name)
            if name.endswith(".lock"):
                continue
            if name.startswith("."):
                problems.append(f"stray file {path}")
                continue
            if name.endswith((".json", ".tarsplit")):
                if not os.path.isdir(path.rpartition(".")[0]):
                    problems.append(f"{path} belongs to no layer")
                continue
            info = read_json(path + ".json", default=None)
            if not os.path.isdir(path) or not info:
                problems.append(f"layer {name} is not a directory with its metadata")
                continue
            diff_id = str(info.get("diff_id", ""))
            if self.layer_key(diff_id) != name:
                problems.append(f"layer {name} records diff_id {diff_id}")
            elif content and os.path.exists(path + ".tarsplit"):
                try:
                    tar_size = sum(len(chunk) for chunk in rebuild_layer(path, path + ".tarsplit", diff_id))
                except IntegrityError as exc:
                    problems.append(f"layer {name}: {exc}")
                    continue
                if info.get("tar_size") not in (None, tar_size):
                    problems.append(f"layer {name}: tar of {tar_size} bytes, metadata says {info.get('tar_size')}")
        index = self._read_index()
        for image_id, entry in index["images"].items():
            wanted = {entry.get("config_digest", ""), entry.get("manifest_digest", "")} | set(entry.get("blobs", []))
            for digest in sorted(d for d in wanted if d):
                if not self.has_blob(digest):
                    problems.append(f"image {image_id}: blob {digest} missing")
            for diff_id in entry.get("diff_ids", []):
                if not self.has_layer(diff_id):
                    problems.append(f"image {image_id}: layer {diff_id} missing")
        for tag, image_id in index["tags"].items():
            if image_id not in index["images"]:
                problems.append(f"tag {tag} names the missing image {image_id}")
        return problems

    def sweep_stale_writes(self, max_age: float = 60.0) -> list[str]:
        """Remove what a writer killed mid-write leaves in layers/ and blobs/: atomic-write temp files
        (``.tmp-*``, never renamed into place) older than ``max_age`` seconds (a live write takes far less).
        Returns the paths removed. (Appended by the image-faults work; pull calls it after sweep_tmp.)"""
        removed: list[str] = []
        now = time.time()
        dirs = [self.layers_dir] + [os.path.join(self.blobs_dir, algo) for algo in ("sha256", "sha512")]
        for directory in dirs:
            for name in os.listdir(directory) if os.path.isdir(directory) else []:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if name.startswith(".tmp-") and now - os.lstat(path).st_mtime > max_age:
                        os.unlink(path)
                        removed.append(path)
        return removed
