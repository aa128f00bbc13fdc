"""The contract between container lifecycle and networking.

The container service calls, for every container it starts:
  1. ``attachment = networking.prepare(record)`` before launching: reserves addresses and host ports (raises
     Conflict with nothing left behind when a port is taken) and writes the container's /etc/hosts and
     /etc/resolv.conf content;
  2. ``launcher.start(..., parent_hooks=[attachment.connect])``: ``connect(pid)`` runs while the container's
     PID 1 waits, after it has entered its own network namespace (for modes that have one), and wires it up
     (veth, addresses, routes, firewall rules);
  3. ``networking.release(record)`` once the container has exited or is removed, and during reconciliation
     after a crash: idempotent, frees whatever ``prepare``/``connect`` took.
"none" and "host" need none of that: ``LocalNetworking`` covers them. Bridge and user-defined networks plug in
their own implementation through ``networking_for``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..container_store import ContainerRecord
    from ..events import EventJournal


@dataclass
class Attachment:
    """What networking reserved for one container (shown by inspect under NetworkSettings)."""

    network_settings: dict = field(default_factory=dict)

    def connect(self, pid: int) -> None:
        """Wire the container whose PID 1 is ``pid`` into its networks (nothing to do for none/host)."""


class Networking(Protocol):
    def prepare(self, record: ContainerRecord) -> Attachment: ...

    def release(self, record: ContainerRecord) -> None: ...


class LocalNetworking:
    """``none`` (a private namespace with only lo, set up by the launcher) and ``host``."""

    def prepare(self, record: ContainerRecord) -> Attachment:
        return Attachment(network_settings={"Networks": {}})

    def release(self, record: ContainerRecord) -> None:
        pass


LOCAL_MODES = ("none", "host")


def networking_for(network_mode: str, config: EngineConfig, events: EventJournal) -> Networking:
    if network_mode in LOCAL_MODES:
        return LocalNetworking()
    from ..errors import InvalidArgument

    raise InvalidArgument(f'network mode "{network_mode}" is not supported yet (supported: none, host)')
