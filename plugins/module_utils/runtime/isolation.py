"""HostConfig -> the launcher's spec: namespaces, capabilities, seccomp, no-new-privileges, devices, cgroup
limits, ulimits, init, rootfs options.

Docker's semantics throughout (moby daemon/oci_linux.go): ``--privileged`` gives every capability, no
seccomp filter, no masked or read-only paths, writable /sys and every host device; ``--cap-add``/``--cap-drop``
change Docker's default set (``ALL`` on either side); the default seccomp profile is Docker's
(``linux/seccomp.py``) compiled for the capabilities granted.

Anything the user asked for that this version cannot enforce is refused here, never silently dropped.
``mounts`` become ``spec.mounts`` through VolumeService.mount_specs (runtime/volumes.py), called by the
container service: volumes resolve to paths under the engine root, which this mapping does not know.
"""

from __future__ import annotations

import os
import stat

from ..errors import InvalidArgument, UnsupportedError
from ..linux.cgroups import DEFAULT_DEVICE_RULES, DEFAULT_PARENT, CgroupConfig, parse_device_rule
from ..records.hostconfig import HostConfig
from .spec import DEFAULT_CAPABILITIES, ContainerSpec

NAMESPACE_MODES = ("", "private", "host")
ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")


def apply_host_config(spec: ContainerSpec, host: HostConfig, cgroup_parent: str | None = None) -> None:
    """Fill ``spec`` from ``host``; ``cgroup_parent`` is the engine config's (default: the engine's own)."""
    spec.network_mode = host.network_mode
    spec.readonly_rootfs = host.read_only
    if host.shm_size <= 0:
        raise InvalidArgument("invalid --shm-size: must be positive")
    spec.shm_size = host.shm_size
    for field_name in ("pid_mode", "ipc_mode", "uts_mode"):
        mode = getattr(host, field_name)
        if mode not in NAMESPACE_MODES:
            raise UnsupportedError(f"{field_name.replace('_', ' ')} {mode!r} is not supported (use host or leave "
                                   "it empty)")
        setattr(spec, field_name, "host" if mode == "host" else "")
    if spec.uts_mode == "host":
        spec.hostname = ""  # Docker: --uts host keeps the host's name
    spec.init = host.init
    process = spec.process
    process.capabilities = capabilities_for(host)
    seccomp_profile, no_new_privileges = security_options(host.security_opt, host.privileged)
    process.seccomp = seccomp_profile
    process.no_new_privileges = no_new_privileges
    process.rlimits = rlimits_for(host)
    spec.privileged = host.privileged
    if host.privileged:
        spec.masked_paths = []
        spec.readonly_paths = []
    spec.devices, device_rules = devices_for(host)
    spec.cgroup = cgroup_config(host, cgroup_parent, device_rules)


def capabilities_for(host: HostConfig) -> list[str]:
    """Docker's rules: privileged = all; ALL in --cap-add = all minus drops; ALL in --cap-drop = only adds."""
    from ..linux import capabilities

    def norm(names: list[str]) -> list[str]:
        out = []
        for name in names:
            upper = name.strip().upper()
            if upper in ("ALL", "CAP_ALL"):
                out.append("ALL")
                continue
            key = upper if upper.startswith("CAP_") else "CAP_" + upper
            if key not in capabilities.CAP_NUMBER:
                raise InvalidArgument(f"unknown capability: {name!r}")
            out.append(key)
        return out

    if host.privileged:
        return ["ALL"]
    add, drop = norm(host.cap_add), norm(host.cap_drop)
    if "ALL" in add:
        base = list(capabilities.CAPABILITIES[: capabilities.last_cap() + 1])
        return [c for c in base if c not in drop]
    base = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    return base + [c for c in add if c not in base]


def security_options(options: list[str], privileged: bool) -> tuple[dict | None, bool]:
    """(seccomp profile or None for unconfined, no_new_privileges) from --security-opt values."""
    from ..linux import seccomp

    profile_choice: str | None = None
    no_new_privileges = False
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")  # Docker's old "seccomp:unconfined" spelling
        key = key.strip()
        if key == "no-new-privileges":
            if not sep or value.lower() in ("true", "1"):
                no_new_privileges = True
            elif value.lower() in ("false", "0"):
                no_new_privileges = False
            else:
                raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")
        elif key == "seccomp" and sep and value:
            profile_choice = value
        elif key in ("apparmor", "label") and value in ("unconfined", "disable"):
            continue  # no LSM confinement is applied by this engine anyway
        else:
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")
    if profile_choice == "unconfined" or (privileged and profile_choice is None):
        return None, no_new_privileges
    if profile_choice is None or profile_choice == "builtin":
        return seccomp.docker_default_profile(), no_new_privileges
    return seccomp.load_profile(profile_choice), no_new_privileges


def rlimits_for(host: HostConfig) -> list[tuple[str, int, int]]:
    out = []
    for u in host.ulimits:
        name = u.name.lower()
        if name not in ULIMIT_NAMES:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        if u.hard >= 0 and u.soft > u.hard:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {u.soft} > {u.hard}")
        out.append((name, u.soft, u.hard))
    return out


def parse_device(value: str) -> tuple[str, str, str]:
    """--device /dev/host[:/dev/ctr][:rwm] -> (host, container, permissions), Docker's parsing."""
    parts = value.split(":")
    host = parts[0]
    container, perms = host, "rwm"
    if len(parts) == 2:
        if parts[1] and not set(parts[1]) - set("rwm"):
            perms = parts[1]
        else:
            container = parts[1]
    elif len(parts) == 3:
        container, perms = parts[1], parts[2]
    elif len(parts) > 3:
        raise InvalidArgument(f"invalid device specification: {value}")
    if not perms or set(perms) - set("rwm"):
        raise InvalidArgument(f"invalid device mode: {perms}")
    if not os.path.isabs(host) or not os.path.isabs(container):
        raise InvalidArgument(f"invalid device specification: {value} (paths must be absolute)")
    return host, container, perms


def devices_for(host: HostConfig) -> tuple[list[tuple[str, str, str]], list[str] | None]:
    """Device nodes to create and the device cgroup rules (None: all allowed, for --privileged)."""
    nodes: list[tuple[str, str, str]] = []
    rules: list[str] = list(DEFAULT_DEVICE_RULES)
    for value in host.devices:
        host_path, container_path, perms = parse_device(value)
        real = os.path.realpath(host_path)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise InvalidArgument(f"error gathering device information while adding custom device "
                                  f"{host_path!r}: {exc.strerror.lower() if exc.strerror else exc}") from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise InvalidArgument(f"{host_path} is not a device node")
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
        nodes.append((real, container_path, perms))
        rules.append(f"{kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {perms}")
    for rule in host.device_cgroup_rules:
        try:
            parse_device_rule(rule)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        rules.append(rule)
    return nodes, (None if host.privileged else rules)


def cgroup_config(host: HostConfig, parent: str | None, device_rules: list[str] | None) -> CgroupConfig:
    if host.memory < 0 or host.nano_cpus < 0 or host.cpu_shares < 0:
        raise InvalidArgument("memory, cpus and cpu-shares must not be negative")
    if 0 < host.memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if host.memory_swap > 0 and host.memory and host.memory_swap < host.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if host.memory_swap > 0 and not host.memory:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if host.nano_cpus:
        ncpu = os.cpu_count() or 1
        if host.nano_cpus > ncpu * 1_000_000_000:
            raise InvalidArgument(f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs "
                                  "available")
    if host.cpuset_cpus:
        _check_cpuset(host.cpuset_cpus)
    return CgroupConfig(
        parent=(parent or DEFAULT_PARENT).strip("/") or DEFAULT_PARENT,
        memory=host.memory, memory_swap=host.memory_swap, nano_cpus=host.nano_cpus, cpu_shares=host.cpu_shares,
        cpuset_cpus=host.cpuset_cpus, pids_limit=host.pids_limit if host.pids_limit > 0 else 0,
        device_rules=device_rules,
    )


def _check_cpuset(value: str) -> None:
    ncpu = os.cpu_count() or 1
    try:
        for part in value.split(","):
            lo, _sep, hi = part.partition("-")
            first, last = int(lo), int(hi or lo)
            if first > last or last >= ncpu or first < 0:
                raise ValueError
    except ValueError:
        raise InvalidArgument(f"invalid --cpuset-cpus value {value!r}: this host has cpus 0-{ncpu - 1}") from None
