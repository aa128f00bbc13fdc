"""``push``: send a local image to its registry, uploading only what the registry lacks.

For each layer, in order of preference: the registry already has a blob we know for it ("Layer already
exists"); a cross-repository mount from a repository of the same registry we pulled it from ("Mounted
from"); else the layer tar is rebuilt from the store (tar-split), gzip'ed into a work file and uploaded.
When every blob of the manifest the image was pulled with is reused, those exact manifest bytes are
pushed, so the digest stays the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable

from ..errors import IntegrityError, RegistryError
from .archive import layer_stream
from .reference import Reference
from .registry import (
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_MANIFEST,
    RegistryClient,
)
from .store import ImageRecord, ImageStore
from .transport import endpoints_for

MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _compress_layer(store: ImageStore, diff_id: str, path: str) -> tuple[str, int]:
    """Rebuild the layer tar and gzip it into ``path``; return (blob digest, size)."""
    hasher = hashlib.sha256()
    size = 0
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    with open(path, "wb") as f:
        for chunk in layer_stream(store, diff_id):
            out = comp.compress(chunk)
            if out:
                hasher.update(out)
                size += len(out)
                f.write(out)
        out = comp.flush()
        hasher.update(out)
        size += len(out)
        f.write(out)
    return f"sha256:{hasher.hexdigest()}", size


def push(
    store: ImageStore, ref: Reference, record: ImageRecord, config, emit: Callable[[str], None] | None = None
) -> tuple[str, int]:
    """Push ``record`` as ``ref``; return (manifest digest, manifest size)."""
    emit = emit or (lambda _line: None)
    endpoints = [e for e in endpoints_for(ref.domain, config) if not e.mirror]  # mirrors are read-only
    if not endpoints:
        raise RegistryError(f"registry {ref.domain} is blocked by the engine config")
    from .pull import new_client

    last: Exception | None = None
    for endpoint in endpoints:
        with new_client(endpoint, config) as client:
            try:
                with store.gc_hold():
                    return _push_to(client, store, ref, record, emit)
            except RegistryError as exc:
                last = exc
    raise last or RegistryError(f"push to {ref.domain} failed")  # last is set: endpoints is not empty


def _push_to(client: RegistryClient, store: ImageStore, ref: Reference, record: ImageRecord, emit) -> tuple[str, int]:
    repo, host = ref.path, client.endpoint.host
    emit(f"The push refers to repository [{ref.name}]")
    descs: list[dict] = []
    for diff_id in reversed(record.diff_ids):
        emit(f"{diff_id.partition(':')[2][:12]}: Preparing")
    for diff_id in reversed(record.diff_ids):
        descs.append(_push_layer(client, store, repo, host, diff_id, emit))
    descs.reverse()

    config_bytes = store.read_blob(record.id)
    if not client.blob_exists(repo, record.id):
        location = client.start_upload(repo)
        if location is None:  # start_upload returns None only for a cross-repository mount, not asked here
            raise RegistryError(f"blob upload to {repo}: the registry gave no upload location")
        client.finish_upload(repo, location, record.id, config_bytes, len(config_bytes))

    manifest_bytes, media = _original_manifest(store, record, descs)
    if manifest_bytes is None:
        oci = any("oci" in (d.get("mediaType") or "") for d in descs)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST if oci else MEDIA_DOCKER_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG if oci else MEDIA_DOCKER_CONFIG,
                       "size": len(config_bytes), "digest": record.id},
            "layers": descs,
        }
        media = manifest["mediaType"]
        manifest_bytes = json.dumps(manifest, indent=3).encode()
    tag = ref.tag or "latest"
    client.put_manifest(repo, ref.digest or tag, manifest_bytes, media)
    digest = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
    emit(f"{tag}: digest: {digest} size: {len(manifest_bytes)}")
    return digest, len(manifest_bytes)


def _original_manifest(store: ImageStore, record: ImageRecord, descs: list[dict]) -> tuple[bytes | None, str]:
    """The platform manifest the image was pulled with, if it names exactly the blobs now in place."""
    if not record.manifest_digest or not store.has_blob(record.manifest_digest):
        return None, ""
    try:
        data = store.read_blob(record.manifest_digest)
        doc = json.loads(data)
    except (IntegrityError, ValueError):
        return None, ""
    layers = [layer.get("digest") for layer in doc.get("layers") or []]
    if (doc.get("config") or {}).get("digest") != record.id or layers != [d["digest"] for d in descs]:
        return None, ""
    return data, doc.get("mediaType") or MEDIA_OCI_MANIFEST


def _push_layer(client: RegistryClient, store: ImageStore, repo: str, host: str, diff_id: str, emit) -> dict:
    short = diff_id.partition(":")[2][:12]
    info = store.layer_info(diff_id)
    sources = [s for s in info.get("sources") or [] if s.get("digest")]
    same_registry = [s for s in sources if s.get("registry") == host]
    # 1. A blob the registry already has in this repository.
    for src in same_registry or sources:
        if client.blob_exists(repo, src["digest"]):
            emit(f"{short}: Layer already exists")
            return _desc(src)
    # 2. A cross-repository mount within the registry.
    location = None
    for src in same_registry:
        if src.get("repo") and src["repo"] != repo:
            location = client.start_upload(repo, mount=src["digest"], from_repo=src["repo"])
            if location is None:
                emit(f"{short}: Mounted from {src['repo']}")
                _remember(store, diff_id, dict(src, repo=repo))
                return _desc(src)
            break  # the registry opened a plain upload instead: use it
    # 3. Upload a freshly compressed copy.
    work = store.new_tmp("push-")
    try:
        path = os.path.join(work.path, "blob")
        digest, size = _compress_layer(store, diff_id, path)
        if client.blob_exists(repo, digest):
            emit(f"{short}: Layer already exists")
        else:
            location = location or client.start_upload(repo)
            if location is None:  # as above: no mount asked
                raise RegistryError(f"blob upload to {repo}: the registry gave no upload location")
            with open(path, "rb") as f:
                client.finish_upload(repo, location, digest, f, size)
            emit(f"{short}: Pushed")
    finally:
        work.cleanup()
    src = {"registry": host, "repo": repo, "digest": digest, "size": size, "media_type": MEDIA_DOCKER_LAYER_GZIP}
    _remember(store, diff_id, src)
    return _desc(src)


def _remember(store: ImageStore, diff_id: str, src: dict) -> None:
    store.update_layer_info(diff_id, sources=[src])


def _desc(src: dict) -> dict:
    return {"mediaType": src.get("media_type") or MEDIA_DOCKER_LAYER_GZIP, "size": int(src.get("size") or 0),
            "digest": src["digest"]}
