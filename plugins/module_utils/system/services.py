"""What system/ (df, facts, prune) takes from the engine, as a protocol: system/ sits below the facade
(``engine.Engine`` satisfies it), so it names the services it uses instead of importing ``engine.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..container.service import ContainerService
    from ..events import EventJournal
    from ..image.service import ImageService
    from ..network.service import NetworkService
    from ..runtime.volumes import VolumeService


class EngineServices(Protocol):
    config: EngineConfig
    events: EventJournal

    @property
    def images(self) -> ImageService: ...

    @property
    def containers(self) -> ContainerService: ...

    @property
    def volumes(self) -> VolumeService: ...

    @property
    def networks(self) -> NetworkService: ...
