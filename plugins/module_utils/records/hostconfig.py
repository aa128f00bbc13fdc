"""What a container is allowed and given on the host: Docker's HostConfig, in Python names.

Stored with the container's record (``ContainerConfig.host_config``); ``runtime/isolation.py`` turns it into
the launcher's spec (namespaces, capabilities, seccomp, cgroup limits, mounts); ``views.inspect_container``
shows it under Docker's names. Every field defaults to Docker's default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
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


DEFAULT_SHM_SIZE = 64 * 1024 * 1024
MIN_MEMORY = 6 * 1024 * 1024


def check_host_config(host: HostConfig, user: str | None = None) -> None:
    """What Docker refuses at create (exit 125, Docker's wording), one check per option, before any record
    exists: CLI and modules both create through ``ContainerService.create``. Start maps the same values
    (``isolation.apply_host_config``), so a container that passes here is never unstartable for them. The user
    name is resolved at start, in the container's own /etc/passwd (as Docker); only its form is checked here.
    """
    from ..runtime import isolation

    _check_memory(host)
    _check_cpus(host)
    if host.shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if host.shm_size == 0:
        host.shm_size = DEFAULT_SHM_SIZE  # Docker: 0 means the default
    for name in (*host.cap_add, *host.cap_drop):
        _check_capability(name)
    isolation.capabilities_for(host)
    isolation.security_options(host.security_opt, host.privileged)  # a seccomp profile file is read now
    for limit in host.ulimits:
        if limit.soft < -1 or limit.hard < -1:
            raise InvalidArgument(f"invalid ulimit argument: {limit.name}={limit.soft}:{limit.hard}")
    isolation.rlimits_for(host)
    isolation.devices_for(host)  # the host path exists and is a device node
    for kind, mode in (("PID", host.pid_mode), ("IPC", host.ipc_mode), ("UTS", host.uts_mode)):
        if mode not in isolation.NAMESPACE_MODES:
            raise InvalidArgument(f"invalid {kind} mode: {mode}")
    isolation.cgroup_config(host, None, None)
    _check_ports(host.port_bindings)
    for mount in host.mounts:
        _check_mount(mount)
    if user is not None:
        _check_user(user)


def _check_memory(host: HostConfig) -> None:
    if host.memory < 0:
        raise InvalidArgument("invalid memory limit: must not be negative")
    if 0 < host.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if host.memory_swap < -1:
        raise InvalidArgument("invalid memory-swap limit: must be -1 (unlimited) or positive")
    if host.memory_swap > 0 and not host.memory:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if host.memory_swap > 0 and host.memory_swap < host.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")


def online_cpus() -> set[int]:
    """The CPUs the kernel has online (/sys/devices/system/cpu/online), as Docker's cpuset check reads."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            return parse_cpuset(f.read().strip())
    except (OSError, ValueError):
        return set(range(os.cpu_count() or 1))


def parse_cpuset(value: str) -> set[int]:
    """"0-2,5" -> {0, 1, 2, 5}; ValueError when malformed."""
    cpus: set[int] = set()
    for part in value.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise ValueError(value)
        first, last = int(lo), int(hi) if sep else int(lo)
        if first > last:
            raise ValueError(value)
        cpus.update(range(first, last + 1))
    return cpus


def _check_cpus(host: HostConfig) -> None:
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if host.nano_cpus < 0 or 0 < host.nano_cpus < 10_000_000 or host.nano_cpus > ncpu * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if host.cpu_shares < 0:
        raise InvalidArgument("invalid CPU shares: must not be negative")
    if host.cpuset_cpus:
        try:
            wanted = parse_cpuset(host.cpuset_cpus)
        except ValueError:
            raise InvalidArgument(f"Invalid value {host.cpuset_cpus} for cpuset cpus") from None
        online = online_cpus()
        if not wanted <= online:
            raise InvalidArgument(f"Requested CPUs are not available - requested {host.cpuset_cpus}, available: "
                                  f"{_cpuset_text(online)}")


def _cpuset_text(cpus: set[int]) -> str:
    ranges: list[str] = []
    for cpu in sorted(cpus):
        if ranges and cpu - 1 in cpus:
            ranges[-1] = ranges[-1].split("-")[0] + f"-{cpu}"
        else:
            ranges.append(str(cpu))
    return ",".join(ranges)


def _check_capability(name: str) -> None:
    from ..linux import capabilities

    upper = name.strip().upper()
    if upper in ("ALL", "CAP_ALL"):
        return
    key = upper if upper.startswith("CAP_") else "CAP_" + upper
    if key not in capabilities.CAP_NUMBER:
        raise InvalidArgument(f'unknown capability: "{key}"')


def _check_ports(bindings: dict[str, list[dict[str, str]]]) -> None:
    for key, entries in bindings.items():
        port, _sep, proto = key.partition("/")
        if proto not in ("", "tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid proto: {proto}")
        if not _port_range_ok(port):
            raise InvalidArgument(f"invalid containerPort: {port}")
        for entry in entries or []:
            host_ip = (entry.get("HostIp") or "").strip("[]")
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip)
                except ValueError:
                    raise InvalidArgument(f"invalid IP address: {host_ip}") from None
            host_port = str(entry.get("HostPort") or "")
            if host_port and host_port != "0" and not _port_range_ok(host_port):
                raise InvalidArgument(f"invalid hostPort: {host_port}")


def _port_range_ok(text: str) -> bool:
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        return False
    first, last = int(lo), int(hi) if sep else int(lo)
    return 1 <= first <= last <= 65535


def _check_mount(mount: Mount) -> None:
    if mount.type not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"invalid mount config for type \"{mount.type}\": mount type unknown")
    if not mount.target.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"{mount.type}\": invalid mount path: "
                              f"'{mount.target}' mount path must be absolute")
    if mount.target == "/":
        raise InvalidArgument(f"invalid mount config for type \"{mount.type}\": invalid specification: "
                              "destination can't be '/'")
    if mount.type == "bind" and not mount.source.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount path: '{mount.source}' "
                              "mount path must be absolute")


def _check_user(user: str) -> None:
    """Docker's form: name|uid[:group|gid]; numeric IDs within uint32, nothing that could break passwd parsing."""
    if any(c in user for c in "\0\n\r\t ") or user.count(":") > 1:
        raise InvalidArgument(f"invalid user: {user!r}")
    for part in user.split(":"):
        if part.isdigit() and int(part) > 0xFFFFFFFE:
            raise InvalidArgument(f"invalid user: {user!r}: id out of range")
