"""Image operations as the engine offers them: what `pull`, `push`, `images`, `rmi`, `tag`, `image inspect`,
`history`, `image prune`, `save`, `load`, `import`, `login` and `logout` do, each recording its event.

The CLI and the Ansible module call only this; credentials never leave ``auth.py`` and the registry client.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from ..errors import Conflict, ImageNotFound, InvalidArgument

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..records.containers import ContainerRecord
    from .archive import Loaded
    from .pull import LayerProgress, RemoteImage
    from .store import ImageRecord, ImageStore

PULL_POLICIES = ("missing", "always", "never")

Progress = Callable[[str], None]


@dataclass
class RemovalReport:
    """What `rmi` / `image prune` did, in Docker's order: Untagged then Deleted lines."""

    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0

    def lines(self, lower: bool = False) -> list[str]:
        u, d = ("untagged", "deleted") if lower else ("Untagged", "Deleted")
        return [f"{u}: {t}" for t in self.untagged] + [f"{d}: {i}" for i in self.deleted]

    def extend(self, other: RemovalReport) -> None:
        self.untagged += other.untagged
        self.deleted += other.deleted
        self.reclaimed += other.reclaimed


class ImageService:
    def __init__(self, config: EngineConfig, events: EventJournal) -> None:
        self.config = config
        self.events = events
        self._store: ImageStore | None = None

    @property
    def store(self) -> ImageStore:
        if self._store is None:
            from .store import ImageStore

            self._store = ImageStore(self.config.paths.images)
        return self._store

    # -- registry --------------------------------------------------------------------------------------

    def pull(self, reference: str, platform: str | None = None, progress: Progress | None = None,
             layer_progress: LayerProgress | None = None) -> ImageRecord:
        from .pull import pull
        from .reference import parse_reference

        ref = parse_reference(reference)
        record = pull(self.store, ref, self.config, platform=platform, progress=progress,
                      layer_progress=layer_progress)
        self.events.record("image", "pull", ref.familiar, {"name": ref.familiar})
        return record

    def pull_all_tags(self, reference: str, platform: str | None = None, progress: Progress | None = None,
                      layer_progress: LayerProgress | None = None) -> list[ImageRecord]:
        """`pull -a`: every tag of the repository."""
        from .pull import list_tags
        from .reference import parse_reference

        ref = parse_reference(reference)
        if ref.digest or (ref.tag and ref.tag != "latest" and ":" in reference.rpartition("/")[2]):
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        return [self.pull(str(ref.with_tag(tag)), platform, progress, layer_progress)
                for tag in list_tags(ref, self.config)]

    def resolve_remote(self, reference: str, platform: str | None = None) -> RemoteImage:
        """The image ID (and digests) a pull would produce, asking the registry only for small documents."""
        from .pull import resolve_remote
        from .reference import parse_reference

        return resolve_remote(parse_reference(reference), self.config, platform)

    def push(self, reference: str, progress: Progress | None = None) -> str:
        from .push import push
        from .reference import parse_reference

        ref = parse_reference(reference)
        try:
            record = self.store.lookup(str(ref))
        except ImageNotFound:
            raise ImageNotFound(f"An image does not exist locally with the tag: {ref.familiar_name}") from None
        digest, _size = push(self.store, ref, record, self.config, progress)
        self.store.add_repo_digest(record.id, f"{ref.name}@{digest}")
        self.events.record("image", "push", ref.familiar, {"name": ref.familiar})
        return digest

    def login(self, server: str | None, username: str, password: str, store: bool = True) -> str:
        """Check the credentials against the registry, then store them (unless ``store`` is false: a module's
        check mode). Returns the file key."""
        from .auth import DOCKER_HUB_KEY, auth_file_path, registry_host, server_key, store_credentials
        from .challenge import Authenticator
        from .registry import RegistryClient
        from .transport import endpoints_for

        if not username or not password:
            raise InvalidArgument("username and password are required")
        key = server_key(server)
        host = registry_host(key)
        if key == DOCKER_HUB_KEY:
            upstream = [e for e in endpoints_for("docker.io", self.config) if not e.mirror]
            if not upstream:
                raise InvalidArgument("docker.io is blocked by the engine config")
            endpoint = upstream[0]
        else:
            endpoint = endpoints_for(host, self.config)[0]
        # Checked with the typed credentials, not the stored ones.
        auth = Authenticator(credentials=lambda _host: (username, password))
        with RegistryClient(endpoint, auth=auth) as client:
            client.check_login()
        if store:
            store_credentials(auth_file_path(self.config), key, username, password)
        return key

    def logout(self, server: str | None) -> tuple[str, bool]:
        from .auth import auth_file_path, remove_credentials, server_key

        key = server_key(server)
        return key, remove_credentials(auth_file_path(self.config), key)

    # -- local store -----------------------------------------------------------------------------------

    def ensure(self, reference: str, policy: str = "missing", progress: Progress | None = None,
               platform: str | None = None) -> ImageRecord:
        """The image named ``reference``, pulled first when the policy says so (Docker's --pull)."""
        if policy not in PULL_POLICIES:
            raise InvalidArgument(f'invalid pull policy "{policy}": must be one of {", ".join(PULL_POLICIES)}')
        if policy == "always":
            return self.pull(reference, platform=platform, progress=progress)
        try:
            return self.store.lookup(reference)
        except ImageNotFound:
            if policy == "never":
                raise
        if progress:
            progress(f"Unable to find image '{familiar(reference)}' locally")
        return self.pull(reference, platform=platform, progress=progress)

    def list(self) -> list[ImageRecord]:
        return self.store.list()

    def inspect(self, reference: str) -> ImageRecord:
        return self.store.lookup(reference)

    def layer_dirs(self, image_id: str) -> list[str]:
        return self.store.layer_dirs(self.store.lookup(image_id))

    def tag(self, source: str, target: str) -> ImageRecord:
        from .reference import parse_reference

        record = self.store.lookup(source)
        ref = parse_reference(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        if self.store.tag(record.id, ref):
            self.events.record("image", "tag", record.id, {"name": ref.familiar})
        return self.store.lookup(record.id)

    def containers_using(self, image_id: str) -> list[ContainerRecord]:
        from ..records.containers import ContainerStore

        return [c for c in ContainerStore(self.config.paths.containers).list() if c.config.image == image_id]

    def remove(self, name: str, force: bool = False) -> RemovalReport:
        """`rmi`: untag, and delete the image when no reference is left (Docker's rules)."""
        from .reference import familiar_from_qualified as fam
        from .reference import parse_reference

        record = self.store.lookup(name)
        image_id, short = record.id, record.short_id
        tags, digests = self.store.references(image_id)
        ref = None
        with contextlib.suppress(InvalidArgument):
            ref = parse_reference(name)
        named = None
        if ref is not None:
            wanted = f"{ref.name}@{ref.digest}" if ref.digest else str(ref)
            if wanted in tags or wanted in digests:
                named = wanted
        users = self.containers_using(image_id)
        running = [c for c in users if c.state.status == "running"]
        report = RemovalReport()
        if named is not None and (len(tags) + len(digests) > 1) and (named in digests or len(tags) > 1):
            # Other references remain: only this one goes (containers do not matter).
            if self.store.untag(parse_reference(named)):
                report.untagged.append(fam(named))
                self.events.record("image", "untag", image_id, {"name": fam(named)})
            return report
        if users and not force:
            user = users[0]
            state = "running" if user.state.status == "running" else "stopped"
            if named is not None:
                raise Conflict(f'conflict: unable to remove repository reference "{fam(named)}" (must force) - '
                               f"container {user.id[:12]} is using its referenced image {short}")
            raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                           f"image is being used by {state} container {user.id[:12]}")
        if named is None and not force:
            repos = {t.rpartition(":")[0] for t in tags}
            if len(repos) > 1:
                raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                               "image is referenced in multiple repositories")
        if running and named is None:
            raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                           f"image is being used by running container {running[0].id[:12]}")
        for qualified in [*tags, *digests]:
            if self.store.untag(parse_reference(qualified)):
                report.untagged.append(fam(qualified))
                self.events.record("image", "untag", image_id, {"name": fam(qualified)})
        if users:
            return report  # forced: the image stays (dangling) while a container needs its layers
        report.extend(self._delete(image_id))
        return report

    def _delete(self, image_id: str) -> RemovalReport:
        report = RemovalReport()
        if self.store.forget_image(image_id):
            report.deleted.append(image_id)
            self.events.record("image", "delete", image_id, {"name": image_id})
        gc = self.store.gc()
        report.deleted += gc.layers
        report.reclaimed += gc.reclaimed
        return report

    def prune(self, all_images: bool = False, filters: list[str] | None = None) -> RemovalReport:
        """`image prune`: dangling images (or, with ``all``, every image no container uses)."""
        from ..event_filters import parse_time

        until_ns: int | None = None
        labels: list[tuple[str, bool]] = []
        for item in filters or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
            if key == "until":
                until_ns = parse_time(value)
            elif key in ("label", "label!"):
                labels.append((value, key == "label"))
            elif key == "dangling":
                all_images = value.lower() in ("false", "0")
            else:
                raise InvalidArgument(f"invalid filter '{key}'")
        from ..event_filters import label_matches
        from ..timefmt import parse_rfc3339

        used = {c.config.image for c in self.containers_using_any()}
        report = RemovalReport()
        for record in self.store.list():
            if record.id in used or (record.repo_tags and not all_images):
                continue
            if until_ns is not None and parse_rfc3339(record.created) * 1e9 >= until_ns:
                continue
            image_labels = (record.config.get("config") or {}).get("Labels") or {}
            if not all(label_matches(image_labels, want) == positive for want, positive in labels):
                continue
            tags, digests = self.store.references(record.id)
            for qualified in [*tags, *digests]:
                from .reference import familiar_from_qualified as fam
                from .reference import parse_reference

                if self.store.untag(parse_reference(qualified)):
                    report.untagged.append(fam(qualified))
                    self.events.record("image", "untag", record.id, {"name": fam(qualified)})
            if self.store.forget_image(record.id):
                report.deleted.append(record.id)
                self.events.record("image", "delete", record.id, {"name": record.id})
        gc = self.store.gc()
        report.deleted += gc.layers
        report.reclaimed += gc.reclaimed
        self.events.record("image", "prune", "", {"reclaimed": report.reclaimed})
        return report

    def containers_using_any(self) -> list[ContainerRecord]:
        from ..records.containers import ContainerStore

        return ContainerStore(self.config.paths.containers).list()

    def history(self, reference: str) -> list[dict]:
        """The config's history, newest first, with each layer's size (Docker's `history`)."""
        record = self.store.lookup(reference)
        entries = list(record.config.get("history") or [])
        if not entries:
            entries = [{"created": record.created, "created_by": ""} for _i in record.diff_ids]
        sizes = [int(self.store.layer_info(d).get("size", 0)) for d in record.diff_ids]
        rows: list[dict] = []
        layer = 0
        for entry in entries:
            size = 0
            if not entry.get("empty_layer") and layer < len(sizes):
                size, layer = sizes[layer], layer + 1
            rows.append({"created": entry.get("created", ""), "created_by": entry.get("created_by", ""),
                         "comment": entry.get("comment", ""), "size": size, "id": "<missing>"})
        rows.reverse()
        if rows:
            rows[0]["id"] = record.id
        return rows

    # -- archives --------------------------------------------------------------------------------------

    def save(self, names: list[str], out: BinaryIO) -> None:
        from .archive import images_for_save, save

        images = images_for_save(self.store, names)
        save(self.store, images, out)
        for record, tags in images:
            self.events.record("image", "save", record.id, {"name": ",".join(tags) or record.id})

    def save_to_file(self, names: list[str], path: str) -> None:
        """Save to ``path`` atomically: a failed save never leaves a truncated archive there."""
        from ..fsutil import atomic_file

        with atomic_file(os.path.abspath(path)) as f:
            self.save(names, f)

    def load(self, path: str | None = None, stream: BinaryIO | None = None) -> list[Loaded]:
        from .archive import load, spool

        if path is None:
            if stream is None:
                raise InvalidArgument("nothing to load: give a file or a stream")
            path, tmp = spool(stream, self.store)
            with tmp:
                return self._load(path, load)
        if not os.path.isfile(path):
            raise InvalidArgument(f"open {path}: no such file")
        return self._load(path, load)

    def _load(self, path: str, load) -> list[Loaded]:
        results = load(self.store, path)
        for item in results:
            self.events.record("image", "load", item.image_id, {"name": ",".join(item.tags) or item.image_id})
        return results

    def archive_ids(self, path: str) -> list[tuple[str, list[str]]]:
        from .archive import inspect_archive

        return inspect_archive(path)

    def import_image(self, source: str, reference: str | None = None, message: str = "",
                     changes: list[str] | None = None, stream: BinaryIO | None = None,
                     platform: str | None = None) -> tuple[ImageRecord, bool]:
        """`import`: a one-layer image from a root filesystem tarball (``source`` a path, or "-")."""
        from .archive import import_rootfs
        from .pull import parse_platform
        from .reference import parse_reference

        ref = parse_reference(reference) if reference else None
        if ref is not None and ref.digest:
            raise InvalidArgument("import: a digest cannot be given to an imported image")
        if "://" in source:
            raise InvalidArgument("import from a URL is not supported: download the tarball first")
        plat = parse_platform(platform)
        if source == "-":
            if stream is None:
                raise InvalidArgument("import: no input stream")
            record, changed = import_rootfs(self.store, stream, ref, "-", message, changes, plat)
        else:
            try:
                f = open(source, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise InvalidArgument(f"import: cannot open {source}: {exc.strerror}") from None
            with f:
                record, changed = import_rootfs(self.store, f, ref, source, message, changes, plat)
        self.events.record("image", "import", record.id, {"name": ref.familiar if ref else record.id})
        return record, changed


def familiar(reference: str) -> str:
    from .reference import parse_reference

    try:
        return parse_reference(reference).familiar
    except InvalidArgument:
        return reference
