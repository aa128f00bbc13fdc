"""What a container is allowed and given on the host: Docker's HostConfig, in Python names.

Stored with the container's record (``ContainerConfig.host_config``); ``runtime/isolation.py`` turns it into
the launcher's spec (namespaces, capabilities, seccomp, cgroup limits, mounts); ``views.inspect_container``
shows it under Docker's names. Every field defaults to Docker's default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgument


@dataclass
class Ulimit:
    name: str           # "nofile", "nproc", ...
    soft: int
    hard: int


@dataclass
class Mount:
    type: str           # "bind" | "volume" | "tmpfs"
    source: str         # host path, volume name ("" for anonymous), or "" for tmpfs
    target: str         # path in the container
    read_only: bool = False
    options: dict[str, str] = field(default_factory=dict)   # tmpfs size/mode, bind propagation...


@dataclass
class RestartPolicy:
    name: str = "no"    # no | on-failure | always | unless-stopped
    maximum_retry_count: int = 0

    def check(self, auto_remove: bool, auto_remove_conflict: str) -> None:
        """Docker's checks (create and update word the conflict with --rm differently)."""
        if self.name not in ("no", "always", "unless-stopped", "on-failure"):
            raise InvalidArgument(f"invalid restart policy '{self.name}'")
        if self.maximum_retry_count and self.name != "on-failure":
            raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{self.name}'")
        if self.maximum_retry_count < 0:
            raise InvalidArgument("maximum retry count cannot be negative")
        if auto_remove and self.name != "no":
            raise InvalidArgument(auto_remove_conflict)


_FIELDS: dict[type, frozenset[str]] = {}


@dataclass
class HostConfig:
    # namespaces
    network_mode: str = "bridge"      # Docker's default: the engine's default bridge network
    pid_mode: str = ""          # "" (private) | "host"
    ipc_mode: str = ""          # "" (private) | "host"
    uts_mode: str = ""          # "" (private) | "host"
    # security
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)   # seccomp=unconfined|<file>, no-new-privileges
    devices: list[str] = field(default_factory=list)        # /dev/host[:/dev/ctr[:rwm]]
    device_cgroup_rules: list[str] = field(default_factory=list)
    read_only: bool = False
    # resources (0 / "" = unlimited, as Docker)
    memory: int = 0                 # bytes
    memory_swap: int = 0            # bytes; -1 unlimited swap
    nano_cpus: int = 0              # --cpus 1.5 -> 1_500_000_000
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    pids_limit: int = 0             # 0 or -1: unlimited
    ulimits: list[Ulimit] = field(default_factory=list)
    shm_size: int = 64 * 1024 * 1024  # DEFAULT_SHM_SIZE
    # process
    init: bool = False
    group_add: list[str] = field(default_factory=list)      # --group-add: names (container's /etc/group) or gids
    # storage
    mounts: list[Mount] = field(default_factory=list)       # -v, --mount, --tmpfs, image VOLUMEs
    # lifecycle
    auto_remove: bool = False
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    log_driver: str = "json-file"
    log_options: dict[str, str] = field(default_factory=dict)
    # networking (network/ports.py parses -p into Docker's PortBindings: {"80/tcp": [{"HostIp", "HostPort"}]})
    port_bindings: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    publish_all_ports: bool = False                           # -P: the image's EXPOSE ports (and --expose)
    expose: list[str] = field(default_factory=list)           # --expose "80/tcp"
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)      # --add-host "name:ip" (ip may be host-gateway)
    # per network (Docker's EndpointsConfig): {"aliases": [...], "ipv4_address": "", "mac_address": ""}
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> HostConfig:
        known = _FIELDS.get(cls)
        if known is None:  # once per class: `ps` reads a HostConfig per container
            known = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
        data = {k: v for k, v in (data or {}).items() if k in known}  # records written by newer versions
        data["ulimits"] = [Ulimit(**u) for u in data.get("ulimits", [])]
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        data["restart_policy"] = RestartPolicy(**data.get("restart_policy", {}))
        return cls(**data)
