"""Desired versus actual container configuration: the one comparison the module and the CLI both use.

``differences(record, options, image_id)`` lists what an existing container would need to be recreated for,
given the options someone asks for now (the module's parameters, or `pycontainer run` flags). Options left
unset (None / empty where "empty" means "not asked for") are not compared, as community.docker does, so a
container keeps defaults it got from its image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..records.hostconfig import HostConfig

if TYPE_CHECKING:
    from ..records.containers import ContainerRecord
    from .options import CreateOptions


@dataclass
class Difference:
    name: str       # Docker's inspect path, e.g. "HostConfig.Memory"
    actual: Any
    desired: Any

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "actual": self.actual, "desired": self.desired}


def _env_map(items: list[str]) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in items)


def differences(record: ContainerRecord, options: CreateOptions, image_id: str | None) -> list[Difference]:
    """What differs between ``record`` and ``options`` (``image_id``: what options.image resolves to now,
    None when unknown: not pulled yet, which counts as a difference)."""
    c, h, want = record.config, record.config.host_config, options.host_config
    found: list[Difference] = []

    def check(name: str, actual: Any, desired: Any, asked: bool = True) -> None:
        if asked and actual != desired:
            found.append(Difference(name, actual, desired))

    check("Image", c.image, image_id)
    if options.entrypoint is not None:
        check("Config.Entrypoint", c.entrypoint, [a for a in options.entrypoint if a] or None)
    if options.command is not None:
        check("Config.Cmd", c.cmd, list(options.command) or None)
    actual_env = _env_map(c.env)
    for key, value in _env_map(options.env).items():
        check(f"Config.Env.{key}", actual_env.get(key), value)
    check("Config.WorkingDir", c.working_dir, options.working_dir, options.working_dir is not None)
    check("Config.User", c.user, options.user, options.user is not None)
    check("Config.Hostname", c.hostname, options.hostname, bool(options.hostname))
    for key, value in options.labels.items():
        check(f"Config.Labels.{key}", c.labels.get(key), value)
    check("Config.Tty", c.tty, options.tty)
    check("Config.OpenStdin", c.open_stdin, options.open_stdin)
    check("Config.StopTimeout", c.stop_timeout, options.stop_timeout, options.stop_timeout is not None)
    check("Config.StopSignal", c.stop_signal, options.stop_signal, bool(options.stop_signal))
    host_fields = {
        "NetworkMode": "network_mode", "Privileged": "privileged", "ReadonlyRootfs": "read_only",
        "Memory": "memory", "MemorySwap": "memory_swap", "NanoCpus": "nano_cpus", "CpuShares": "cpu_shares",
        "CpusetCpus": "cpuset_cpus", "PidsLimit": "pids_limit", "Init": "init", "AutoRemove": "auto_remove",
        "ShmSize": "shm_size", "PidMode": "pid_mode", "IpcMode": "ipc_mode", "UTSMode": "uts_mode",
    }
    for docker_name, field_name in host_fields.items():
        check(f"HostConfig.{docker_name}", getattr(h, field_name), getattr(want, field_name))
    for docker_name, field_name in (("CapAdd", "cap_add"), ("CapDrop", "cap_drop"), ("SecurityOpt", "security_opt"),
                                    ("Devices", "devices")):
        check(f"HostConfig.{docker_name}", sorted(getattr(h, field_name)), sorted(getattr(want, field_name)))
    check("HostConfig.RestartPolicy",
          (h.restart_policy.name, h.restart_policy.maximum_retry_count),
          (want.restart_policy.name, want.restart_policy.maximum_retry_count))
    if want.log_driver:
        check("HostConfig.LogConfig", (h.log_driver, h.log_options), (want.log_driver, want.log_options))
    check("HostConfig.Mounts", sorted(_mount_key(m) for m in h.mounts), sorted(_mount_key(m) for m in want.mounts))
    check("HostConfig.Ulimits", sorted((u.name, u.soft, u.hard) for u in h.ulimits),
          sorted((u.name, u.soft, u.hard) for u in want.ulimits))
    # networking (issue 5): what -p/-P/--expose/--dns*/--add-host/--network-alias/--ip set
    check("HostConfig.PortBindings", h.port_bindings, want.port_bindings)
    check("HostConfig.PublishAllPorts", h.publish_all_ports, want.publish_all_ports)
    check("Config.ExposedPorts", sorted(h.expose), sorted(want.expose))
    for docker_name, field_name in (("Dns", "dns"), ("DnsSearch", "dns_search"), ("DnsOptions", "dns_options"),
                                    ("ExtraHosts", "extra_hosts")):
        check(f"HostConfig.{docker_name}", sorted(getattr(h, field_name)), sorted(getattr(want, field_name)))
    check("NetworkingConfig.EndpointsConfig", h.networks, want.networks)
    return found


def _mount_key(mount: Any) -> tuple:
    return (mount.type, mount.source, mount.target, mount.read_only, tuple(sorted(mount.options.items())))


# -- the pycontainer module: compact views of the options a user set ----------------------------------------
#
# The module compares only what its task sets (``asked``: option names), each in one normal form, so the
# classic false positives disappear: ``80`` and ``80/tcp``, ``0.0.0.0`` and an empty host address, a tag and
# the image ID (both become the ID), env order and YAML numbers/booleans, ``64m`` and ``67108864``, volumes
# written two ways, capabilities with or without ``CAP_``. The same views are the module's diff.

@dataclass
class Settings:
    """What a container has (from its record) or would get (from CreateOptions), as the views read it."""

    image: str | None
    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str | None
    user: str | None
    hostname: str | None
    labels: dict[str, str]
    host: HostConfig
    tty: bool
    open_stdin: bool
    stop_signal: str
    stop_timeout: int | None

    @classmethod
    def of_record(cls, record: ContainerRecord) -> Settings:
        c = record.config
        return cls(c.image, c.entrypoint, c.cmd, c.env, c.working_dir, c.user, c.hostname, c.labels,
                   c.host_config, c.tty, c.open_stdin, c.stop_signal, c.stop_timeout)

    @classmethod
    def of_options(cls, options: CreateOptions, image_id: str | None) -> Settings:
        entrypoint = [a for a in options.entrypoint if a] or None if options.entrypoint is not None else None
        return cls(image_id, entrypoint, list(options.command or []) or None, options.env, options.working_dir,
                   options.user, options.hostname, options.labels, options.host_config, options.tty,
                   options.open_stdin, options.stop_signal, options.stop_timeout)


def _signal(value: str) -> int | None:
    from .signals import parse_signal

    return parse_signal(value) if value else None


def _capability(name: str) -> str:
    name = name.upper()
    return name if name == "ALL" or name.startswith("CAP_") else "CAP_" + name


def _device(text: str) -> str:
    parts = text.split(":")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    return f"{host}:{container}:{perms}"


def _mounts(host: HostConfig, origin: str) -> list[str]:
    """The mounts one option made, as normal text (``-v`` text for volumes; type,source,target,options else)."""
    from ..runtime.volumes import volume_flag_text

    out = []
    for m in host.mounts:
        if m.options.get("origin") != origin:
            continue
        if origin == "volume-flag":
            out.append(volume_flag_text(m))
        else:
            extra = [f"{k}={v}" for k, v in sorted(m.options.items()) if k != "origin"]
            out.append(",".join([f"type={m.type}", *([f"source={m.source}"] if m.source else []),
                                 f"target={m.target}", *(["readonly"] if m.read_only else []), *extra]))
    return sorted(out)


def _ports(host: HostConfig) -> list[str]:
    from ..network.ports import display_host_ip

    return sorted(f"{display_host_ip(b.get('HostIp', ''))}:{b.get('HostPort', '')}:{key}"
                  for key, bindings in host.port_bindings.items() for b in bindings)


def _networks(host: HostConfig) -> dict[str, dict[str, Any]]:
    return {name: {k: sorted(v) if isinstance(v, list) else v for k, v in sorted((settings or {}).items()) if v}
            for name, settings in sorted(host.networks.items())}


def _path(value: str | None) -> str | None:
    import posixpath

    return posixpath.normpath(value) if value else value


def _ulimit_text(u: Any) -> str:
    return f"{u.name}:{u.soft}:{u.hard}"


# option name -> its normal form; env and labels are compared key by key (only the keys the task sets).
VIEWS: dict[str, Any] = {
    "image": lambda s: s.image,
    "command": lambda s: list(s.cmd) if s.cmd else None,
    "entrypoint": lambda s: list(s.entrypoint) if s.entrypoint else None,
    "working_dir": lambda s: _path(s.working_dir),
    "user": lambda s: s.user,
    "hostname": lambda s: s.hostname,
    "tty": lambda s: s.tty,
    "interactive": lambda s: s.open_stdin,
    "kill_signal": lambda s: _signal(s.stop_signal),
    "stop_timeout": lambda s: s.stop_timeout,
    "memory": lambda s: s.host.memory,
    "memory_swap": lambda s: s.host.memory_swap,
    "cpus": lambda s: s.host.nano_cpus / 1e9,
    "pids_limit": lambda s: max(s.host.pids_limit, 0),  # 0 and -1 both mean unlimited
    "cpu_shares": lambda s: s.host.cpu_shares,
    "cpuset_cpus": lambda s: s.host.cpuset_cpus,
    "shm_size": lambda s: s.host.shm_size,
    "restart_policy": lambda s: s.host.restart_policy.name,
    "restart_retries": lambda s: s.host.restart_policy.maximum_retry_count,
    "privileged": lambda s: s.host.privileged,
    "read_only": lambda s: s.host.read_only,
    "init": lambda s: s.host.init,
    "auto_remove": lambda s: s.host.auto_remove,
    "capabilities": lambda s: sorted({_capability(c) for c in s.host.cap_add}),
    "cap_drop": lambda s: sorted({_capability(c) for c in s.host.cap_drop}),
    "security_opts": lambda s: sorted(s.host.security_opt),
    "devices": lambda s: sorted(_device(d) for d in s.host.devices),
    "device_cgroup_rules": lambda s: sorted(s.host.device_cgroup_rules),
    "pid_mode": lambda s: s.host.pid_mode,
    "ipc_mode": lambda s: s.host.ipc_mode,
    "uts": lambda s: s.host.uts_mode,
    "ulimits": lambda s: sorted(_ulimit_text(u) for u in s.host.ulimits),
    "log_driver": lambda s: s.host.log_driver,
    "log_options": lambda s: dict(sorted(s.host.log_options.items())),
    "volumes": lambda s: _mounts(s.host, "volume-flag"),
    "tmpfs": lambda s: _mounts(s.host, "tmpfs-flag"),
    "mounts": lambda s: _mounts(s.host, "mount-flag"),
    "published_ports": lambda s: _ports(s.host),
    "publish_all_ports": lambda s: s.host.publish_all_ports,
    "exposed_ports": lambda s: sorted(s.host.expose),
    "dns_servers": lambda s: list(s.host.dns),  # order matters to the resolver
    "dns_search_domains": lambda s: list(s.host.dns_search),
    "dns_opts": lambda s: sorted(s.host.dns_options),
    "etc_hosts": lambda s: dict(sorted(item.split(":", 1) for item in s.host.extra_hosts)),
    "network_mode": lambda s: s.host.network_mode,
    "networks": lambda s: _networks(s.host),
}

# Options `update` changes in place (container/update.py): a difference only there needs no new container.
UPDATABLE_OPTIONS = frozenset({"memory", "memory_swap", "cpus", "pids_limit", "restart_policy", "restart_retries"})


def option_view(settings: Settings, asked: set[str] | frozenset[str], env_keys: list[str],
                label_keys: list[str]) -> dict[str, Any]:
    """The compact form of the ``asked`` options (and of the env/label keys asked) of ``settings``."""
    view: dict[str, Any] = {name: VIEWS[name](settings) for name in VIEWS if name in asked}
    if "env" in asked:
        env = _env_map(settings.env)
        view["env"] = {k: env.get(k) for k in env_keys}
    if "labels" in asked:
        view["labels"] = {k: settings.labels.get(k) for k in label_keys}
    return view


def option_differences(actual: dict[str, Any], desired: dict[str, Any]) -> list[Difference]:
    return [Difference(name, actual.get(name), value) for name, value in desired.items()
            if actual.get(name) != value]
