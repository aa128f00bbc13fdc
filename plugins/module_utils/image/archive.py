"""docker-archive ``save``/``load`` (the format of ``docker save`` and ``skopeo copy docker-archive:``)
and ``import`` of a root filesystem tarball.

A docker-archive is a tar holding ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``), each image
config as ``<hex>.json`` and each layer as an uncompressed tar ``<diff_id hex>.tar``. Layers are rebuilt
byte for byte from the unpacked store with their tar-split record, so diff_ids (and image IDs) survive
a round trip; layers are unpacked from an archive with the same verified, breakout-safe unpacker as pulls.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import ImageNotFound, IntegrityError, InvalidArgument
from ..timefmt import utc_now_rfc3339
from .layers import unpack_layer
from .reference import Reference, parse_reference
from .store import ImageRecord, ImageStore, compute_digest
from .streams import LayerBudget
from .tarsplit import rebuild_layer


class _IterReader:
    """A file object over an iterator of byte chunks; read(n) returns n bytes unless at the end
    (tarfile.addfile insists on full reads)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = bytearray()

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if n < 0:
            n = len(self._buf)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


def layer_tar_size(store: ImageStore, diff_id: str) -> int:
    info = store.layer_info(diff_id)
    if info.get("tar_size"):
        return int(info["tar_size"])
    return sum(len(c) for c in layer_stream(store, diff_id))


def layer_stream(store: ImageStore, diff_id: str) -> Iterator[bytes]:
    """The layer's original uncompressed tar, verified against ``diff_id`` as it is produced."""
    split = store.tarsplit_path(diff_id)
    if not os.path.exists(split):
        raise IntegrityError(
            f"layer {diff_id} has no tar-split record (stored by an older version): pull the image again"
        )
    return rebuild_layer(store.layer_path(diff_id), split, diff_id)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def save(store: ImageStore, images: list[tuple[ImageRecord, list[str]]], out: BinaryIO) -> None:
    """Write a docker-archive of ``images`` ((record, familiar tags to record)) to the stream ``out``."""
    manifest: list[dict] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for record, tags in images:
            layers = []
            for diff_id in record.diff_ids:
                name = diff_id.partition(":")[2] + ".tar"
                layers.append(name)
                if name in written:
                    continue
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = layer_tar_size(store, diff_id), 0o644, 0
                tar.addfile(info, _IterReader(layer_stream(store, diff_id)))
                written.add(name)
            config_digest = record.id
            config_name = config_digest.partition(":")[2] + ".json"
            if config_name not in written:
                _add_bytes(tar, config_name, store.read_blob(config_digest))
                written.add(config_name)
            manifest.append({"Config": config_name, "RepoTags": list(tags), "Layers": layers})
            for tag in tags:
                repo, _sep, tag_name = tag.rpartition(":")
                repositories.setdefault(repo, {})[tag_name] = record.id.partition(":")[2]
        _add_bytes(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


@dataclass
class Loaded:
    image_id: str
    tags: list[str]  # familiar names, as "Loaded image:" prints them
    changed: bool


def _member_bytes(tar: tarfile.TarFile, name: str, limit: int = 16 << 20) -> bytes:
    try:
        f = tar.extractfile(name)
    except KeyError:
        raise IntegrityError(f"archive lacks {name!r}") from None
    if f is None:
        raise IntegrityError(f"archive member {name!r} is not a file")
    data = f.read(limit + 1)
    if len(data) > limit:
        raise IntegrityError(f"archive member {name!r} is too large")
    return data


def inspect_archive(path: str) -> list[tuple[str, list[str]]]:
    """(image ID, RepoTags) of each image in a docker-archive, reading only its small JSON members."""
    with _open_archive(path) as tar:
        return [(compute_digest(_member_bytes(tar, e["Config"])), list(e.get("RepoTags") or []))
                for e in _manifest(tar)]


@contextlib.contextmanager
def _open_archive(path: str) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError) as exc:
        raise InvalidArgument(f"cannot read image archive {path}: {exc}") from None
    try:
        yield tar
    finally:
        tar.close()


def _manifest(tar: tarfile.TarFile) -> list[dict]:
    try:
        manifest = json.loads(_member_bytes(tar, "manifest.json"))
    except ValueError:
        raise IntegrityError("manifest.json of the archive is not valid JSON") from None
    if not isinstance(manifest, list) or not all(isinstance(e, dict) and e.get("Config") for e in manifest):
        raise IntegrityError("manifest.json of the archive is not a docker-archive manifest")
    return manifest


def load(store: ImageStore, path: str) -> list[Loaded]:
    """Load every image of the docker-archive at ``path`` (a regular file: gzip'd or not)."""
    results: list[Loaded] = []
    store.sweep_tmp()
    with store.gc_hold(), _open_archive(path) as tar:
        for entry in _manifest(tar):
            config_bytes = _member_bytes(tar, entry["Config"])
            config_digest = compute_digest(config_bytes)
            try:
                config = json.loads(config_bytes)
            except ValueError:
                raise IntegrityError(f"image config {entry['Config']} is not valid JSON") from None
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            layer_names = list(entry.get("Layers") or [])
            if len(diff_ids) != len(layer_names):
                raise IntegrityError(f"image {config_digest}: {len(layer_names)} layers for {len(diff_ids)} diff_ids")
            for name, diff_id in zip(layer_names, diff_ids, strict=True):
                if store.has_layer(diff_id):
                    continue
                with store.layer_lock(diff_id):
                    if store.has_layer(diff_id):
                        continue
                    try:
                        stream = tar.extractfile(name)
                    except KeyError:
                        raise IntegrityError(f"archive lacks layer {name!r}") from None
                    if stream is None:
                        raise IntegrityError(f"archive member {name!r} is not a file")
                    with store.new_tmp("load-") as tmp:
                        # The member's size bounds what it may expand to (sparse members, compressed layers).
                        budget = LayerBudget.for_blob(None, tar.getmember(name).size)
                        stats = unpack_layer(stream, tmp.path, diff_id=diff_id, tarsplit=tmp.tarsplit,
                                             budget=budget)
                        store.commit_layer(diff_id, tmp, {"size": stats.size, "files": stats.files,
                                                          "tar_size": stats.tar_size})
            store.write_blob(config_digest, config_bytes)
            tags = [parse_reference(t) for t in entry.get("RepoTags") or []]
            _record, changed = store.commit_image(
                config_digest, config_digest=config_digest, manifest_digest="", diff_ids=diff_ids,
                created=str(config.get("created") or ""), ref=tags[0] if tags else None, repo_digest=None)
            for ref in tags[1:]:
                changed = store.tag(config_digest, ref) or changed
            results.append(Loaded(config_digest, [r.familiar for r in tags], changed))
    return results


def spool(stream: BinaryIO, store: ImageStore) -> tuple[str, contextlib.AbstractContextManager]:
    """Copy a non-seekable input (stdin) to a work file; returns (path, its cleanup context)."""
    tmp = store.new_tmp("spool-")
    path = os.path.join(tmp.path, "input")
    with open(path, "wb") as f:
        shutil.copyfileobj(stream, f, 1 << 20)
    return path, tmp


# -- import ----------------------------------------------------------------------------------------------

_CHANGE_KEYS = {"CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "LABEL", "EXPOSE", "VOLUME", "STOPSIGNAL"}


def _json_or_shell(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return ["/bin/sh", "-c", value]


def apply_changes(container_config: dict, changes: list[str]) -> dict:
    """Docker's ``import --change`` subset: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME."""
    for change in changes:
        key, _sep, value = change.strip().partition(" ")
        key = key.upper()
        if key not in _CHANGE_KEYS:
            raise InvalidArgument(f"{key} is not a valid change command")
        value = value.strip()
        if key in ("CMD", "ENTRYPOINT"):
            container_config["Cmd" if key == "CMD" else "Entrypoint"] = _json_or_shell(value)
        elif key == "ENV":
            name, sep, val = value.partition("=")
            if not sep:
                name, _sep, val = value.partition(" ")
            env = [e for e in container_config.get("Env") or [] if e.partition("=")[0] != name]
            container_config["Env"] = [*env, f"{name}={val.strip()}"]
        elif key == "WORKDIR":
            container_config["WorkingDir"] = value
        elif key == "USER":
            container_config["User"] = value
        elif key == "STOPSIGNAL":
            container_config["StopSignal"] = value
        elif key == "LABEL":
            name, _sep, val = value.partition("=")
            container_config.setdefault("Labels", {})[name.strip()] = val.strip().strip('"')
        elif key == "EXPOSE":
            for port in value.split():
                container_config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif key == "VOLUME":
            for vol in _json_or_shell(value) if value.startswith("[") else value.split():
                container_config.setdefault("Volumes", {})[vol] = {}
    return container_config


def import_rootfs(
    store: ImageStore,
    stream: BinaryIO,
    ref: Reference | None,
    source_name: str,
    message: str = "",
    changes: list[str] | None = None,
    platform=None,
) -> tuple[ImageRecord, bool]:
    """Make a one-layer image of a root filesystem tarball (compressed or not)."""
    from .pull import host_platform

    plat = platform or host_platform()
    store.sweep_tmp()
    with store.gc_hold():
        with store.new_tmp("import-") as tmp:
            stats = unpack_layer(stream, tmp.path, tarsplit=tmp.tarsplit)
            diff_id = stats.diff_id
            with store.layer_lock(diff_id):
                if not store.has_layer(diff_id):
                    store.commit_layer(diff_id, tmp, {"size": stats.size, "files": stats.files,
                                                      "tar_size": stats.tar_size})
        now = utc_now_rfc3339()
        config = {
            "architecture": plat.architecture,
            "os": plat.os,
            "created": now,
            "config": apply_changes({}, changes or []),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": now, "comment": message or f"Imported from {source_name}"}],
        }
        if plat.variant:
            config["variant"] = plat.variant
        config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        config_digest = compute_digest(config_bytes)
        store.write_blob(config_digest, config_bytes)
        return store.commit_image(config_digest, config_digest=config_digest, manifest_digest="",
                                  diff_ids=[diff_id], created=now, ref=ref, repo_digest=None)


def images_for_save(store: ImageStore, names: list[str]) -> list[tuple[ImageRecord, list[str]]]:
    """Resolve ``save`` arguments: a name keeps its tag in the archive, an ID saves untagged."""
    by_id: dict[str, tuple[ImageRecord, list[str]]] = {}
    for name in names:
        record = store.lookup(name)
        entry = by_id.setdefault(record.id, (record, []))
        try:
            ref = parse_reference(name)
        except InvalidArgument:
            continue
        if ref.tag and not ref.digest and ref.familiar in record.repo_tags and ref.familiar not in entry[1]:
            entry[1].append(ref.familiar)
    if not by_id:
        raise ImageNotFound("no images to save")
    return list(by_id.values())
