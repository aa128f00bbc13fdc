"""``pull``: resolve a reference on a registry (mirrors first), verify everything, store the image.

Order of work makes a killed pull harmless: layers are unpacked into tmp/ and renamed into place, blobs
are written atomically, and only then is the image added to the index (the single commit point).
"""

from __future__ import annotations

import errno
import json
import platform as _platform
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import EngineError, ImageNotFound, IntegrityError, InvalidArgument, RegistryError, UnsupportedError
from .layers import unpack_layer
from .reference import Reference
from .registry import (
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_SCHEMA1,
    MEDIA_DOCKER_SCHEMA1_SIGNED,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    RegistryClient,
)
from .store import ImageRecord, ImageStore, compute_digest
from .streams import DEFAULT_MAX_LAYER_SIZE, LayerBudget
from .transport import endpoints_for

_INDEX_TYPES = {MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST}
_MANIFEST_TYPES = {MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST}
_LAYER_ATTEMPTS = 3

# (short layer id, status, bytes so far, total bytes or None): Docker's per-layer progress.
LayerProgress = Callable[[str, str, int, "int | None"], None]


class _Cancelled(Exception):
    """Raised inside a download thread when the pull as a whole failed or was interrupted."""


_ARCH_MAP = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch, variant = _ARCH_MAP.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def parse_platform(text: str | None) -> Platform:
    if not text:
        return host_platform()
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    arch = _ARCH_MAP.get(parts[1], (parts[1], None))[0]
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else None)


def _normal_variant(arch: str, variant: str | None) -> str | None:
    # arm64 images are "v8" or unspecified; treat those alike (as containerd's platform matcher does).
    if arch == "arm64" and variant in (None, "", "v8"):
        return None
    return variant or None


def choose_manifest(index: dict, wanted: Platform) -> dict:
    """Pick the descriptor for ``wanted`` out of a manifest list / OCI index."""
    offered: list[str] = []
    best: dict | None = None
    for desc in index.get("manifests") or []:
        plat = desc.get("platform") or {}
        annotations = desc.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        p = Platform(str(plat.get("os", "")), str(plat.get("architecture", "")), plat.get("variant"))
        if p.os == "unknown":
            continue
        offered.append(str(p))
        if p.os != wanted.os or p.architecture != wanted.architecture:
            continue
        have = _normal_variant(p.architecture, p.variant)
        want = _normal_variant(wanted.architecture, wanted.variant)
        if want is None or have == want:
            if best is None:
                best = desc
            if have == want:  # an exact variant match wins over a looser one
                return desc
    if best is not None:
        return best
    raise UnsupportedError(
        f"no matching manifest for {wanted} in the manifest list entries (offered: {', '.join(offered) or 'none'})"
    )


def _media_type(body_doc: dict, header_type: str) -> str:
    media = body_doc.get("mediaType") or header_type or ""
    if not media and "manifests" in body_doc:
        media = MEDIA_OCI_INDEX
    elif not media and "layers" in body_doc:
        media = MEDIA_OCI_MANIFEST
    if body_doc.get("schemaVersion") == 1 or media in (MEDIA_DOCKER_SCHEMA1, MEDIA_DOCKER_SCHEMA1_SIGNED):
        raise UnsupportedError(
            "Docker Image manifest schema 1 is not supported; push the image again with a current client"
        )
    return media


def _parse_json(data: bytes, what: str) -> dict:
    try:
        doc = json.loads(data)
    except ValueError:
        raise IntegrityError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{what} is not a JSON object")
    return doc


def _verify(data: bytes, digest: str, what: str) -> None:
    algo = digest.partition(":")[0]
    if algo not in ("sha256", "sha512"):
        raise UnsupportedError(f"unsupported digest algorithm in {digest!r}")
    actual = compute_digest(data, algo)
    if actual != digest:
        raise IntegrityError(f"{what}: digest mismatch: expected {digest}, got {actual}")


def _descriptor_size(desc: dict, what: str) -> int:
    """The ``size`` of a descriptor: required, since it bounds what we read of the blob."""
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise IntegrityError(f"{what}: descriptor without a valid size ({size!r})")
    return size


def new_client(endpoint, config) -> RegistryClient:
    """A registry client whose Authenticator draws credentials from the engine's auth file."""
    from .auth import credentials_for
    from .challenge import Authenticator

    return RegistryClient(endpoint, auth=Authenticator(credentials=credentials_for(config)))


def _over_endpoints(ref: Reference, config, action):
    """Run ``action(client)`` against each endpoint for ``ref`` in turn (mirrors first)."""
    failures: list[tuple[str, EngineError]] = []
    for endpoint in endpoints_for(ref.domain, config):
        with new_client(endpoint, config) as client:
            try:
                return action(client)
            except (RegistryError, ImageNotFound) as exc:
                # Mirror or transport trouble: the next endpoint may do better. Integrity and
                # unsupported-content errors are final (another endpoint serving the same digests
                # cannot fix them).
                failures.append((endpoint.url, exc))
    notfound = [exc for _url, exc in failures if isinstance(exc, ImageNotFound)]
    last = failures[-1][1]
    if len(failures) == 1:
        raise last
    detail = "; ".join(f"{url}: {exc}" for url, exc in failures)
    cls = ImageNotFound if notfound else type(last)
    primary = notfound[0] if notfound else last
    raise cls(f"{primary} (tried {detail})")


def pull(
    store: ImageStore,
    ref: Reference,
    config,
    platform: str | None = None,
    progress: Callable[[str], None] | None = None,
    layer_progress: LayerProgress | None = None,
) -> ImageRecord:
    """Pull ``ref`` into ``store`` and return its record (see module doc for the guarantees)."""
    emit = progress or (lambda _line: None)
    wanted = parse_platform(platform)
    store.sweep_tmp()
    store.sweep_stale_writes()
    workers = max(1, int(getattr(config, "max_concurrent_downloads", 3) or 1))
    max_layer = int(getattr(config, "max_layer_size", DEFAULT_MAX_LAYER_SIZE) or DEFAULT_MAX_LAYER_SIZE)
    # Held until the image is in the index: a concurrent rmi/prune must not collect our fresh layers.
    try:
        with store.gc_hold():
            return _over_endpoints(
                ref, config,
                lambda client: _pull_from(client, store, ref, wanted, emit, layer_progress, workers, max_layer),
            )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # The work dir is gone already (TmpDir cleans up on the way out); what was committed stays.
            raise EngineError(f"pull of {ref.familiar} failed: no space left under {store.root}: {exc}") from None
        raise


def list_tags(ref: Reference, config) -> list[str]:
    """The repository's tags (GET /v2/<name>/tags/list), for `pull --all-tags`."""

    def action(client: RegistryClient) -> list[str]:
        status, _h, body = client.request("GET", f"/v2/{ref.path}/tags/list", f"repository:{ref.path}:pull")
        if status != 200:
            raise client.response_error(status, body, f"tags of {ref.familiar_name}")
        tags = _parse_json(body, "tag list").get("tags") or []
        return sorted(str(t) for t in tags)

    return _over_endpoints(ref, config, action)


@dataclass
class RemoteImage:
    image_id: str
    top_digest: str
    manifest_digest: str
    config: dict


def resolve_remote(ref: Reference, config, platform: str | None = None) -> RemoteImage:
    """What ``pull`` would store, without storing anything (manifests and the config are small)."""
    wanted = parse_platform(platform)

    def action(client: RegistryClient) -> RemoteImage:
        blobs, doc, _media = _resolve_manifest(client, ref, wanted)
        config_digest = (doc.get("config") or {}).get("digest", "")
        config_bytes = client.fetch_blob(ref.path, config_digest,
                                         size=_descriptor_size(doc.get("config") or {}, "image config"))
        _verify(config_bytes, config_digest, f"image config of {ref}")
        return RemoteImage(config_digest, blobs[0][0], blobs[-1][0], _parse_json(config_bytes, "image config"))

    return _over_endpoints(ref, config, action)


def _resolve_manifest(client: RegistryClient, ref: Reference, wanted: Platform):
    repo = ref.path
    body, header_type, _header_digest = client.get_manifest(repo, ref.reference)
    top_digest = compute_digest(body, ref.digest.partition(":")[0] if ref.digest else "sha256")
    if ref.digest:
        _verify(body, ref.digest, f"manifest {ref}")
    doc = _parse_json(body, f"manifest of {ref}")
    media = _media_type(doc, header_type)
    blobs: list[tuple[str, bytes]] = [(top_digest, body)]

    if media in _INDEX_TYPES:
        desc = choose_manifest(doc, wanted)
        child_digest = desc["digest"]
        body, header_type, _digest = client.get_manifest(repo, child_digest)
        _verify(body, child_digest, f"manifest {child_digest} of {ref}")
        if isinstance(desc.get("size"), int) and desc["size"] != len(body):
            raise IntegrityError(f"manifest {child_digest} of {ref}: {len(body)} bytes, the index says {desc['size']}")
        doc = _parse_json(body, f"manifest {child_digest}")
        media = _media_type(doc, header_type or desc.get("mediaType", ""))
        blobs.append((child_digest, body))
    if media not in _MANIFEST_TYPES:
        raise UnsupportedError(f"unsupported manifest media type {media!r} for {ref}")
    return blobs, doc, media


def _pull_from(
    client: RegistryClient,
    store: ImageStore,
    ref: Reference,
    wanted: Platform,
    emit: Callable[[str], None],
    layer_progress: LayerProgress | None = None,
    workers: int = 3,
    max_layer: int = DEFAULT_MAX_LAYER_SIZE,
) -> ImageRecord:
    repo = ref.path
    emit(f"{ref.tag if ref.digest is None else ref.digest}: Pulling from {repo}")
    blobs, doc, _media = _resolve_manifest(client, ref, wanted)
    top_digest = blobs[0][0]
    manifest_digest = blobs[-1][0]

    config_desc = doc.get("config") or {}
    layers = doc.get("layers") or []
    config_digest = config_desc.get("digest", "")
    if not config_digest:
        raise IntegrityError(f"manifest of {ref} has no config descriptor")
    if store.has_blob(config_digest):
        config_bytes = store.read_blob(config_digest)
    else:
        config_bytes = client.fetch_blob(repo, config_digest, size=_descriptor_size(config_desc, "image config"))
        _verify(config_bytes, config_digest, f"image config of {ref}")
    image_config = _parse_json(config_bytes, f"image config of {ref}")
    blobs.append((config_digest, config_bytes))
    diff_ids = list((image_config.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(layers):
        raise IntegrityError(f"image config of {ref} lists {len(diff_ids)} diff_ids for {len(layers)} layers")
    image_id = config_digest if config_digest.startswith("sha256:") else compute_digest(config_bytes)

    for desc in layers:
        _descriptor_size(desc, f"layer {desc.get('digest')}")
    _fetch_layers(client, store, repo, list(zip(layers, diff_ids, strict=True)), emit, layer_progress, workers,
                  max_layer)

    for digest, data in blobs:
        store.write_blob(digest, data)
    repo_digest = f"{ref.name}@{top_digest}"
    record, changed = store.commit_image(
        image_id,
        config_digest=config_digest,
        manifest_digest=manifest_digest,
        diff_ids=diff_ids,
        created=str(image_config.get("created") or ""),
        ref=ref,
        repo_digest=repo_digest,
        extra_blobs=[digest for digest, _data in blobs],
    )
    emit(f"Digest: {top_digest}")
    status = "Downloaded newer image" if changed else "Image is up to date"
    emit(f"Status: {status} for {ref.familiar}")
    return record


def _fetch_layers(
    client: RegistryClient,
    store: ImageStore,
    repo: str,
    items: list[tuple[dict, str]],
    emit: Callable[[str], None],
    layer_progress: LayerProgress | None,
    workers: int,
    max_layer: int = DEFAULT_MAX_LAYER_SIZE,
) -> None:
    """Fetch the missing layers, up to ``workers`` at once (each on its own keep-alive connection)."""
    lp = layer_progress or (lambda *_a: None)
    todo: list[tuple[dict, str]] = []
    seen: set[str] = set()
    for desc, diff_id in items:
        short = desc.get("digest", "").partition(":")[2][:12]
        if desc.get("urls") and "foreign" in desc.get("mediaType", ""):
            raise UnsupportedError(f"foreign layer {desc.get('digest')} (Windows base layers) is not supported")
        if store.has_layer(diff_id):
            emit(f"{short}: Already exists")
            lp(short, "Already exists", 0, None)
        elif diff_id not in seen:
            seen.add(diff_id)
            todo.append((desc, diff_id))
            lp(short, "Pulling fs layer", 0, desc.get("size"))
    if not todo:
        return
    cancel = threading.Event()
    lock = threading.Lock()

    def done_line(line: str) -> None:
        with lock:
            emit(line)

    def one(desc: dict, diff_id: str) -> None:
        _fetch_layer(client, store, repo, desc, diff_id, done_line, lp, cancel, max_layer)

    if workers == 1 or len(todo) == 1:
        for desc, diff_id in todo:
            one(desc, diff_id)
        return
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=min(workers, len(todo)), thread_name_prefix="pull")
    try:
        futures = [pool.submit(one, desc, diff_id) for desc, diff_id in todo]
        wait(futures, return_when=FIRST_EXCEPTION)
        for fut in futures:
            if fut.done() and fut.exception() is not None and not isinstance(fut.exception(), _Cancelled):
                raise fut.exception()  # type: ignore[misc]
        for fut in futures:
            fut.result()
    finally:
        # On failure or ^C the other downloads stop at their next chunk; their work dirs are removed.
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _fetch_layer(
    client: RegistryClient,
    store: ImageStore,
    repo: str,
    desc: dict,
    diff_id: str,
    emit: Callable[[str], None],
    lp: LayerProgress,
    cancel: threading.Event,
    max_layer: int = DEFAULT_MAX_LAYER_SIZE,
) -> None:
    digest = desc.get("digest", "")
    short = digest.partition(":")[2][:12]
    total = desc.get("size")
    # One process unpacks a given layer; the others wait for it and then find it present.
    with store.layer_lock(diff_id):
        if store.has_layer(diff_id):
            emit(f"{short}: Already exists")
            lp(short, "Already exists", 0, None)
            return
        for attempt in range(_LAYER_ATTEMPTS):
            got = [0]

            # got is bound per attempt through the default  # pylint: disable-next=dangerous-default-value
            def report(n: int, got: list[int] = got) -> None:
                if cancel.is_set():
                    raise _Cancelled()
                got[0] += n
                lp(short, "Downloading", got[0], total)

            with store.new_tmp() as tmp:
                try:
                    with client.open_blob(repo, digest, total) as stream:
                        stats = unpack_layer(
                            stream,
                            tmp.path,
                            media_type=desc.get("mediaType", ""),
                            blob_digest=digest,
                            blob_size=total,
                            diff_id=diff_id,
                            progress=report,
                            tarsplit=tmp.tarsplit,
                            budget=LayerBudget.for_blob(max_layer, total),
                        )
                except RegistryError:
                    if attempt + 1 == _LAYER_ATTEMPTS or cancel.is_set():
                        raise
                    continue  # a broken download: start the layer over
                store.commit_layer(
                    diff_id,
                    tmp,
                    {
                        "size": stats.size,
                        "files": stats.files,
                        "tar_size": stats.tar_size,
                        "blob_digest": digest,
                        "blob_size": total,
                        "media_type": desc.get("mediaType"),
                        # Where this blob lives, so a push to the same registry can skip or mount it.
                        "sources": [{"registry": client.endpoint.host, "repo": repo, "digest": digest,
                                     "size": total, "media_type": desc.get("mediaType")}],
                    },
                )
                break
    emit(f"{short}: Pull complete")
    lp(short, "Pull complete", 0, None)
