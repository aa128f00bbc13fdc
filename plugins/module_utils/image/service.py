"""Image operations as the engine offers them: what `pull`, `images`, `image inspect` (and later `rmi`,
`tag`, `save`, `load`, `push`, `prune`) do, each recording its event."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ImageNotFound, InvalidArgument

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from .store import ImageRecord, ImageStore

PULL_POLICIES = ("missing", "always", "never")

Progress = Callable[[str], None]


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

    def pull(self, reference: str, platform: str | None = None, progress: Progress | None = None) -> ImageRecord:
        from .pull import pull
        from .reference import parse_reference

        ref = parse_reference(reference)
        record = pull(self.store, ref, self.config, platform=platform, progress=progress)
        self.events.record("image", "pull", str(ref), {"name": str(ref)})
        return record

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


def familiar(reference: str) -> str:
    from .reference import parse_reference

    try:
        return parse_reference(reference).familiar
    except InvalidArgument:
        return reference
