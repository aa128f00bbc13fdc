"""Which networking a container's mode gets: local modes (none, host) and ``container:<id>`` from
``attachment.py``, bridge and user-defined networks from ``service.py``, loaded only for those modes (a
``--network none`` start never imports the bridge driver, nftables or netlink code)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidArgument, NetworkNotFound
from .attachment import LOCAL_MODES, ContainerNetworking, LocalNetworking, Networking

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..events import EventJournal
    from ..records.containers import ContainerRecord


def networking_for(network_mode: str, config: EngineConfig, events: EventJournal | None) -> Networking:
    """The networking of a mode; refuses unknown networks (Docker: "network X not found", exit 125)."""
    if network_mode in LOCAL_MODES:
        return LocalNetworking(network_mode)
    if network_mode.startswith("container:"):
        if not network_mode.partition(":")[2]:
            raise InvalidArgument(f"invalid network mode: {network_mode}")
        return ContainerNetworking(network_mode, config)
    from .service import NetworkService

    service = NetworkService(config, events)
    service.check_network(network_mode)
    return service


def release_networking(record: ContainerRecord, config: EngineConfig, events: EventJournal | None) -> None:
    """``release`` for exit, rm and reconciliation: never refused because the container's network is gone.

    A network that only stopped containers name may be removed (Docker too); what such a container still holds
    in the network state (nothing, or entries of a crash) is dropped by the bridge service all the same.
    """
    try:
        networking = networking_for(record.config.host_config.network_mode, config, events)
    except NetworkNotFound:
        from .service import NetworkService

        networking = NetworkService(config, events)
    networking.release(record)
