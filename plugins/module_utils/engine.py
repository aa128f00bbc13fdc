"""The engine API: the one entry point the CLI and the Ansible modules both call.

``Engine.images`` (image/service.py) and ``Engine.containers`` (container/service.py) hold the operations;
``Engine.events`` is the journal every action records to. Below them: ``image/`` (references, registry,
store, layers), ``container_store`` (records), ``runtime/`` (specs, launcher) over ``linux/`` (syscalls).
Services are built on first use, so a command pays only for what it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import EngineConfig, load_config
from .runtime.journal import open_log_and_journal

if TYPE_CHECKING:
    from .container.service import ContainerService
    from .image.service import ImageService
    from .runtime.volumes import VolumeService


class Engine:
    def __init__(self, config: EngineConfig, log_level: str | None = None) -> None:
        self.config = config
        self.paths = config.paths
        # Every recorded event is also one line of the engine's log: the one place actions pass through.
        self.log, self.events = open_log_and_journal(config, log_level)
        self._images: ImageService | None = None
        self._containers: ContainerService | None = None
        self._volumes: VolumeService | None = None

    @classmethod
    def from_options(cls, root: str | None = None, config_path: str | None = None,
                     log_level: str | None = None) -> Engine:
        return cls(load_config(config_path=config_path, root=root), log_level=log_level)

    @property
    def images(self) -> ImageService:
        if self._images is None:
            from .image.service import ImageService

            self._images = ImageService(self.config, self.events)
        return self._images

    @property
    def containers(self) -> ContainerService:
        if self._containers is None:
            from .container.service import ContainerService
            from .runtime.lifecycle import Lifecycle

            self._containers = ContainerService(self.config, self.images, self.events,
                                                lifecycle=Lifecycle(self.config, self.events, self.log),
                                                stats_row=_stats_row)
        return self._containers

    @property
    def volumes(self) -> VolumeService:
        if self._volumes is None:
            from .runtime.volumes import VolumeService

            self._volumes = VolumeService(self.config, self.events)
        return self._volumes

    @property
    def networks(self):  # -> network.service.NetworkService (not imported here: start-up cost)
        """Bridge networks: create/list/inspect/remove/prune/connect/disconnect, published ports."""
        if getattr(self, "_networks", None) is None:
            from .network.service import NetworkService

            self._networks = NetworkService(self.config, self.events)
        return self._networks


def _stats_row(record, before, after) -> dict:
    """`docker stats` rows are formatted by system/views.py, a layer above the container service."""
    from .system.views import stats_row

    return stats_row(record, before, after)
