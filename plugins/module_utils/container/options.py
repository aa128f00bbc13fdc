"""The options a user sets when creating a container (Docker's `create`/`run` options this engine supports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..records.hostconfig import HostConfig


@dataclass
class CreateOptions:
    """What a user may set when creating a container (Docker's `create`/`run` options we support)."""

    image: str
    name: str | None = None
    command: list[str] | None = None        # replaces the image's Cmd
    entrypoint: list[str] | None = None     # replaces the image's Entrypoint (and drops its Cmd)
    env: list[str] = field(default_factory=list)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    host_config: HostConfig = field(default_factory=HostConfig)
    pull: str = "missing"
    tty: bool = False                       # -t
    open_stdin: bool = False                # -i
    stop_signal: str = ""                   # --stop-signal ("" = the image's StopSignal, else SIGTERM)
    stop_timeout: int | None = None         # --stop-timeout (None = 10 s)
