"""Every container option, declared once (in the spirit of community.docker's ``module_container/base.py``).

One ``Option`` says: the module parameter (type, elements, aliases, default, choices), the CLI flag(s) of
`create`/`run` with their argparse details, how either value becomes the normal form stored in the record
(``stored``: a HostConfig field, ``host.<name>``, or a CreateOptions field, ``create.<name>``), how inspect shows
it, the normal form compared (``view``, read from ``compare.Settings``) and how it compares, and whether
`update` changes it in place (its ``UpdateOptions`` field). The module's argument spec, the CLI parser, the
comparison, the update-in-place decision and inspect are driven from ``OPTIONS``.

Comparisons (community.docker's): ``strict`` (equal normal forms), ``allow_more_present`` (a list: what the
task asks for must be there, more may be; a dict: the keys asked for must match), ``ignore``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgument
from ..records.hostconfig import HostConfig, RestartPolicy, Ulimit
from ..units import ram_in_bytes


@dataclass(frozen=True)
class Option:
    name: str                                       # module parameter; also the name its difference carries
    type: str = "str"                               # Ansible type
    elements: str | None = None
    aliases: tuple[str, ...] = ()
    default: Any = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    suboptions: dict[str, Any] | None = None        # Ansible ``options`` of a list of dicts
    flags: tuple[str, ...] = ()                     # `create`/`run` flags (the first long one names the attribute)
    cli: dict[str, Any] = field(default_factory=dict)  # argparse keywords (action, default, type, help...)
    stored: str | None = None                       # where it lives: "host.<HostConfig field>"
    from_cli: Callable[[Any], Any] | None = None     # a set flag's value -> the field's value
    from_param: Callable[[Any], Any] | None = None   # a set parameter's value -> the field's value
    inspect: str | None = None                      # Docker's inspect path, e.g. "HostConfig.GroupAdd"
    show: Callable[[Any], Any] | None = None         # the field's value as inspect shows it (table-rendered ones)
    raw: Callable[[Any], Any] | None = None          # compare.Settings -> the value `compare` prints (else the
    #                                                  HostConfig field, else the view)
    view: Callable[[Any], Any] | None = None         # compare.Settings -> the normal form compared
    comparison: str = "strict"                      # strict | allow_more_present | ignore
    update: str | None = None                       # the UpdateOptions field `update` changes in place

    @property
    def dest(self) -> str:
        """The argparse attribute of the flags."""
        if "dest" in self.cli:
            return self.cli["dest"]
        long = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return long.lstrip("-").replace("-", "_")

    @property
    def host_field(self) -> str | None:
        return self.stored[5:] if self.stored and self.stored.startswith("host.") else None

    @property
    def create_field(self) -> str | None:
        return self.stored[7:] if self.stored and self.stored.startswith("create.") else None

    def argument_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        for key, value in (("elements", self.elements), ("default", self.default), ("required", self.required)):
            if value:
                spec[key] = value
        if self.default is False:
            spec["default"] = False
        if self.choices:
            spec["choices"] = list(self.choices)
        if self.aliases:
            spec["aliases"] = list(self.aliases)
        if self.suboptions:
            spec["options"] = self.suboptions
        return spec


# -- parsers shared by the CLI and the module ----------------------------------------------------------------

def _size(value: Any) -> int:
    """A size (``64m``, bytes, ``-1``) -> bytes."""
    if value in (None, ""):
        return 0
    if isinstance(value, int):
        return value
    return -1 if str(value) == "-1" else ram_in_bytes(str(value))


def _nano_cpus(text: Any) -> int:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag') from None
    if value < 0:
        raise InvalidArgument("Range of CPUs is from 0.01 to the number of CPUs available")
    return round(value * 1e9)


def cli_restart(text: str) -> RestartPolicy:
    """``--restart name[:retries]``."""
    name, _sep, retries = text.partition(":")
    try:
        return RestartPolicy(name, int(retries) if retries else 0)
    except ValueError:
        raise InvalidArgument(f"invalid restart policy format: {text}") from None


def _cli_ulimits(items: list[str]) -> list[Ulimit]:
    """``--ulimit name=soft[:hard]``."""
    out = []
    for item in items:
        name, sep, values = item.partition("=")
        soft, _sep, hard = values.partition(":")
        try:
            out.append(Ulimit(name, int(soft), int(hard or soft)))
        except ValueError:
            raise InvalidArgument(f"invalid ulimit argument: {item}") from None
        if not sep:
            raise InvalidArgument(f"invalid ulimit argument: {item}")
    return out


def _param_ulimit(text: str) -> Ulimit:
    """community.docker's ``name:soft[:hard]``."""
    name, _sep, values = str(text).partition(":")
    soft, _sep, hard = values.partition(":")
    try:
        return Ulimit(name, int(soft), int(hard or soft))
    except ValueError:
        raise InvalidArgument(f"invalid ulimit {text!r}: expected name:soft[:hard]") from None


# -- normal forms compared (the module's views; the same are its diff) -----------------------------------------

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
    return posixpath.normpath(value) if value else value


def _same(value: Any) -> Any:
    return value


def _or_none(value: Any) -> Any:
    """Docker shows an empty list (and a 0 pids limit) as null."""
    return value or None


def _ulimits(ulimits: list[Ulimit]) -> list[dict[str, Any]] | None:
    return [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in ulimits] or None


def _restart(s: Any) -> list[Any]:
    return [s.host.restart_policy.name, s.host.restart_policy.maximum_retry_count]


def _host(name: str) -> Callable[[Any], Any]:
    return lambda s: getattr(s.host, name)


def _strings(items: list[Any]) -> list[str]:
    return [str(i) for i in items]


_LIST = {"type": "list", "elements": "str"}
_APPEND = {"action": "append", "default": []}

# The module's parameters and the CLI's `create`/`run` option flags, in the order the CLI adds the flags.
OPTIONS: tuple[Option, ...] = (
    # The compared options in the order differences are listed (the CLI adds its flags in this order too);
    # volumes/tmpfs/mounts are parsed by runtime/volumes.py, the networking ones by ansible/network.py and
    # cli/network_commands.py. env and labels are compared key by key (compare.option_view).
    Option("name", required=True),
    Option("image", inspect="Image", view=lambda s: s.image),
    Option("pull", default="missing", choices=("missing", "always", "never"), flags=("--pull",),
           cli={"default": "missing", "choices": ["missing", "always", "never"]}, stored="create.pull"),
    Option("command", type="raw", inspect="Config.Cmd", view=lambda s: list(s.cmd) if s.cmd else None),
    Option("entrypoint", **_LIST, inspect="Config.Entrypoint",
           view=lambda s: list(s.entrypoint) if s.entrypoint else None),
    Option("env", type="dict", inspect="Config.Env"),
    Option("labels", type="dict", inspect="Config.Labels"),
    Option("working_dir", flags=("-w", "--workdir"), stored="create.working_dir", inspect="Config.WorkingDir",
           view=lambda s: _path(s.working_dir)),
    Option("user", flags=("-u", "--user"), stored="create.user", inspect="Config.User", view=lambda s: s.user),
    Option("hostname", flags=("-h", "--hostname"), stored="create.hostname", inspect="Config.Hostname",
           view=lambda s: s.hostname),
    Option("tty", type="bool", flags=("-t", "--tty"), cli={"action": "store_true"}, stored="create.tty",
           inspect="Config.Tty", view=lambda s: s.tty),
    Option("interactive", type="bool", flags=("-i", "--interactive"), cli={"action": "store_true"},
           stored="create.open_stdin", inspect="Config.OpenStdin", view=lambda s: s.open_stdin),
    Option("kill_signal", aliases=("stop_signal",), flags=("--stop-signal",), stored="create.stop_signal",
           inspect="Config.StopSignal",
           view=lambda s: _signal(s.stop_signal)),
    Option("stop_timeout", type="int", flags=("--stop-timeout",), cli={"type": int}, stored="create.stop_timeout",
           inspect="Config.StopTimeout", view=lambda s: s.stop_timeout),
    Option("memory", flags=("-m", "--memory"), stored="host.memory", from_cli=ram_in_bytes, from_param=_size,
           inspect="HostConfig.Memory", show=_same, view=_host("memory"), update="memory"),
    Option("memory_swap", flags=("--memory-swap",), stored="host.memory_swap",
           from_cli=lambda text: -1 if text == "-1" else ram_in_bytes(text), from_param=_size,
           inspect="HostConfig.MemorySwap", show=_same, view=_host("memory_swap"), update="memory_swap"),
    Option("cpus", type="float", flags=("--cpus",), stored="host.nano_cpus", from_cli=_nano_cpus,
           from_param=lambda v: round(float(v) * 1e9), inspect="HostConfig.NanoCpus", show=_same,
           view=lambda s: s.host.nano_cpus / 1e9, update="nano_cpus"),
    Option("pids_limit", type="int", flags=("--pids-limit",), cli={"type": int}, stored="host.pids_limit",
           from_param=int, inspect="HostConfig.PidsLimit", show=_or_none,
           view=lambda s: max(s.host.pids_limit, 0),  # 0 and -1 both mean unlimited
           update="pids_limit"),
    Option("cpu_shares", type="int", flags=("-c", "--cpu-shares"), cli={"type": int}, stored="host.cpu_shares",
           from_param=int, inspect="HostConfig.CpuShares", show=_same, view=_host("cpu_shares")),
    Option("cpuset_cpus", flags=("--cpuset-cpus",), stored="host.cpuset_cpus", inspect="HostConfig.CpusetCpus",
           show=_same, view=_host("cpuset_cpus")),
    Option("shm_size", flags=("--shm-size",), stored="host.shm_size", from_cli=ram_in_bytes, from_param=_size,
           inspect="HostConfig.ShmSize", show=_same, view=_host("shm_size")),
    Option("restart_policy", choices=("no", "on-failure", "always", "unless-stopped"),
           flags=("--restart",), cli={"default": "no"}, from_cli=cli_restart, inspect="HostConfig.RestartPolicy",
           raw=_restart, view=lambda s: s.host.restart_policy.name, update="restart_policy"),
    Option("restart_retries", type="int", inspect="HostConfig.RestartPolicy", raw=_restart,
           view=lambda s: s.host.restart_policy.maximum_retry_count, update="restart_policy"),
    Option("privileged", type="bool", flags=("--privileged",), cli={"action": "store_true"},
           stored="host.privileged", from_param=bool, inspect="HostConfig.Privileged", show=_same,
           view=_host("privileged")),
    Option("read_only", type="bool", flags=("--read-only",), cli={"action": "store_true"}, stored="host.read_only",
           from_param=bool, inspect="HostConfig.ReadonlyRootfs", show=_same, view=_host("read_only")),
    Option("init", type="bool", flags=("--init",), cli={"action": "store_true"}, stored="host.init",
           from_param=bool, inspect="HostConfig.Init", show=_same, view=_host("init")),
    Option("auto_remove", type="bool", inspect="HostConfig.AutoRemove", view=_host("auto_remove")),
    Option("capabilities", **_LIST, flags=("--cap-add",), cli=_APPEND, stored="host.cap_add", from_param=list,
           inspect="HostConfig.CapAdd", show=_or_none,
           view=lambda s: sorted({_capability(c) for c in s.host.cap_add})),
    Option("cap_drop", **_LIST, flags=("--cap-drop",), cli=_APPEND, stored="host.cap_drop", from_param=list,
           inspect="HostConfig.CapDrop", show=_or_none,
           view=lambda s: sorted({_capability(c) for c in s.host.cap_drop})),
    Option("security_opts", **_LIST, flags=("--security-opt",), cli=_APPEND, stored="host.security_opt",
           from_param=list, inspect="HostConfig.SecurityOpt", show=_or_none,
           view=lambda s: sorted(s.host.security_opt)),
    Option("devices", **_LIST, flags=("--device",), cli=_APPEND, stored="host.devices", from_param=list,
           inspect="HostConfig.Devices", view=lambda s: sorted(_device(d) for d in s.host.devices)),
    Option("device_cgroup_rules", **_LIST, flags=("--device-cgroup-rule",), cli=_APPEND,
           stored="host.device_cgroup_rules", from_param=list, inspect="HostConfig.DeviceCgroupRules",
           view=lambda s: sorted(s.host.device_cgroup_rules)),
    Option("pid_mode", flags=("--pid",), cli={"default": ""}, stored="host.pid_mode", inspect="HostConfig.PidMode",
           show=_same, view=_host("pid_mode")),
    Option("ipc_mode", flags=("--ipc",), cli={"default": ""}, stored="host.ipc_mode", inspect="HostConfig.IpcMode",
           show=lambda mode: mode or "private", view=_host("ipc_mode")),
    Option("uts", flags=("--uts",), cli={"default": ""}, stored="host.uts_mode", inspect="HostConfig.UTSMode",
           show=_same, view=_host("uts_mode")),
    Option("ulimits", **_LIST, flags=("--ulimit",), cli=_APPEND, stored="host.ulimits", from_cli=_cli_ulimits,
           from_param=lambda items: [_param_ulimit(u) for u in items], inspect="HostConfig.Ulimits", show=_ulimits,
           view=lambda s: sorted(f"{u.name}:{u.soft}:{u.hard}" for u in s.host.ulimits)),
    Option("groups", **_LIST, flags=("--group-add",), cli={**_APPEND, "help": "add additional groups to join"},
           stored="host.group_add", from_param=_strings, from_cli=list, inspect="HostConfig.GroupAdd",
           show=lambda groups: list(groups) or None, view=lambda s: sorted(s.host.group_add),
           comparison="allow_more_present"),
    Option("log_driver", choices=("json-file", "none"), inspect="HostConfig.LogConfig", view=_host("log_driver")),
    Option("log_options", type="dict", inspect="HostConfig.LogConfig",
           view=lambda s: dict(sorted(s.host.log_options.items()))),
    Option("volumes", **_LIST, inspect="HostConfig.Binds", view=lambda s: _mounts(s.host, "volume-flag")),
    Option("tmpfs", **_LIST, inspect="HostConfig.Tmpfs", view=lambda s: _mounts(s.host, "tmpfs-flag")),
    Option("mounts", type="list", elements="dict", inspect="HostConfig.Mounts",
           view=lambda s: _mounts(s.host, "mount-flag"), suboptions={
               "target": {"type": "str", "required": True},
               "source": {"type": "str"},
               "type": {"type": "str", "default": "volume", "choices": ["bind", "volume", "tmpfs"]},
               "read_only": {"type": "bool"},
               "propagation": {"type": "str",
                               "choices": ["private", "rprivate", "shared", "rshared", "slave", "rslave"]},
               "no_copy": {"type": "bool"},
               "labels": {"type": "dict"},
               "tmpfs_size": {"type": "str"},
               "tmpfs_mode": {"type": "str"},
           }),
    Option("published_ports", **_LIST, aliases=("ports",), inspect="HostConfig.PortBindings",
           view=lambda s: _ports(s.host)),
    Option("publish_all_ports", type="bool", inspect="HostConfig.PublishAllPorts",
           view=_host("publish_all_ports")),
    Option("exposed_ports", **_LIST, aliases=("exposed", "expose"), inspect="Config.ExposedPorts",
           view=lambda s: sorted(s.host.expose)),
    Option("dns_servers", **_LIST, inspect="HostConfig.Dns",
           view=lambda s: list(s.host.dns)),  # order matters to the resolver
    Option("dns_search_domains", **_LIST, inspect="HostConfig.DnsSearch", view=lambda s: list(s.host.dns_search)),
    Option("dns_opts", **_LIST, inspect="HostConfig.DnsOptions", view=lambda s: sorted(s.host.dns_options)),
    Option("etc_hosts", type="dict", inspect="HostConfig.ExtraHosts",
           view=lambda s: dict(sorted(i.split(":", 1) for i in s.host.extra_hosts))),
    Option("network_mode", inspect="HostConfig.NetworkMode", view=_host("network_mode")),
    Option("networks", type="list", elements="dict", inspect="NetworkingConfig.EndpointsConfig",
           view=lambda s: _networks(s.host), suboptions={
               "name": {"type": "str", "required": True},
               "ipv4_address": {"type": "str"},
               "aliases": {"type": "list", "elements": "str"},
           }),
    # -- what the module does (not container options: never compared) ----------------------------------------
    Option("detach", type="bool", default=True),
    Option("cleanup", type="bool", default=False),
    Option("recreate", type="bool", default=False),
    Option("restart", type="bool", default=False),
    Option("force_kill", type="bool", default=False, aliases=("forcekill",)),
    Option("keep_volumes", type="bool", default=True),
    Option("state", default="started", choices=("present", "started", "stopped", "restarted", "absent")),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def argument_spec() -> dict[str, dict[str, Any]]:
    """The pycontainer module's argument spec (the engine's own parameters are added by ansible/glue.py)."""
    return {o.name: o.argument_spec() for o in OPTIONS}


def flag_options() -> tuple[Option, ...]:
    """The HostConfig options whose `create`/`run` flags the table adds and parses, in table order (the CLI adds
    the other flags where its help lists them, with ``add_flag``)."""
    return tuple(o for o in OPTIONS if o.flags and o.host_field)


def update_flag_options() -> tuple[Option, ...]:
    """The options `update` has flags for: the updatable ones with flags."""
    return tuple(o for o in OPTIONS if o.flags and o.update)


def add_flag(parser: Any, option: Option, **overrides: Any) -> None:
    parser.add_argument(*option.flags, **{**option.cli, **overrides})


def updatable() -> frozenset[str]:
    return frozenset(o.name for o in OPTIONS if o.update)


def host_fields_from_cli(args: Any) -> dict[str, Any]:
    """HostConfig keyword arguments from the table's flags that were given (unset ones keep the default)."""
    fields = {}
    for o in flag_options():
        value = getattr(args, o.dest)
        if value and o.host_field:
            fields[o.host_field] = o.from_cli(value) if o.from_cli else value
    return fields


def create_fields_from_cli(args: Any) -> dict[str, Any]:
    """CreateOptions keyword arguments from the table's flags that were given."""
    return {o.create_field: getattr(args, o.dest) for o in OPTIONS
            if o.flags and o.create_field and getattr(args, o.dest) is not None}


def create_fields_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """CreateOptions keyword arguments from the table's module parameters that were set."""
    return {o.create_field: params[o.name] for o in OPTIONS if o.create_field and params.get(o.name) is not None}


def host_fields_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """HostConfig keyword arguments from the table's module parameters that were set."""
    fields = {}
    for o in OPTIONS:
        value = params.get(o.name)
        if value is not None and o.host_field:
            fields[o.host_field] = o.from_param(value) if o.from_param else value
    return fields


def inspect_fields(section: str, values: Any) -> dict[str, Any]:
    """The table-rendered fields of inspect's ``section`` ("HostConfig"), from the HostConfig ``values``."""
    out = {}
    for o in OPTIONS:
        if o.show and o.inspect and o.inspect.startswith(section + ".") and o.host_field:
            out[o.inspect[len(section) + 1:]] = o.show(getattr(values, o.host_field))
    return out


def same(option: str, actual: Any, desired: Any) -> bool:
    """Whether ``actual`` satisfies ``desired`` under the option's comparison (unknown names: strict)."""
    o = BY_NAME.get(option)
    comparison = o.comparison if o else "strict"
    if comparison == "ignore":
        return True
    if comparison == "allow_more_present":
        if isinstance(desired, list) and isinstance(actual, list):
            return set(map(str, desired)) <= set(map(str, actual))
        if isinstance(desired, dict) and isinstance(actual, dict):
            return all(actual.get(k) == v for k, v in desired.items())
    return actual == desired
