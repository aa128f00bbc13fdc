"""The engine API: the one entry point the CLI and the Ansible modules both call.

``Engine.images`` (image/service.py) and ``Engine.containers`` (container/service.py) hold the operations;
``Engine.events`` is the journal every action records to. Below them: ``image/`` (references, registry,
store, layers), ``container_store`` (records), ``runtime/`` (specs, launcher) over ``linux/`` (syscalls).
Services are built on first use, so a command pays only for what it touches.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .config import EngineConfig, load_config
from .engine_log import EngineLog
from .events import EventJournal

if TYPE_CHECKING:
    from .container.service import ContainerService
    from .image.service import ImageService
    from .runtime.volumes import VolumeService


class Engine:
    def __init__(self, config: EngineConfig, log_level: str | None = None) -> None:
        self.config = config
        self.paths = config.paths
        self.paths.secure()  # root-only state, also for roots an older version made looser
        self.log = EngineLog(config.log_file, log_level or config.log_level, config.log_format)
        # Every recorded event is also one line of the engine's log: the one place actions pass through.
        self.events = EventJournal(os.path.join(config.root, "events"), max_bytes=config.events_max_size,
                                   max_age_s=config.events_max_age, on_record=self._log_event)
        self._images: ImageService | None = None
        self._containers: ContainerService | None = None
        self._volumes: VolumeService | None = None

    @classmethod
    def from_options(cls, root: str | None = None, config_path: str | None = None,
                     log_level: str | None = None) -> Engine:
        return cls(load_config(config_path=config_path, root=root), log_level=log_level)

    def _log_event(self, event: dict) -> None:
        actor = event["Actor"]
        self.log.info(f"{event['Type']} {event['Action']}", id=actor["ID"], **actor["Attributes"])

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

            self._containers = ContainerService(self.config, self.images, self.events)
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
