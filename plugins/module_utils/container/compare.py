"""Desired versus actual container configuration: the one comparison the module and the CLI both use.

Each option's normal form and comparison come from the option table (container/option_table.py).
``option_view``/``option_differences`` compare the options asked for; the module names the differences by
its option names, ``differences(record, options, image_id)`` (`pycontainer compare`, ContainerService.compare)
by Docker's inspect paths, asking what the `run` flags set. Options left unset are not compared, as
community.docker does, so a container keeps defaults it got from its image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..records.hostconfig import HostConfig
from .option_table import BY_NAME, OPTIONS, same, updatable

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


# -- compact views of the options a user set ---------------------------------------------------------------
#
# Only what the task sets is compared (``asked``: option names), each in one normal form, so the classic false
# positives disappear: ``80`` and ``80/tcp``, ``0.0.0.0`` and an empty host address, a tag and the image ID
# (both become the ID), env order and YAML numbers/booleans, ``64m`` and ``67108864``, volumes written two ways,
# capabilities with or without ``CAP_``. The same views are the module's diff.

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


# option name -> its normal form (container/option_table.py); env and labels are compared key by key (only the
# keys the task sets).
VIEWS: dict[str, Any] = {o.name: o.view for o in OPTIONS if o.view is not None}

# Options `update` changes in place (container/update.py): a difference only there needs no new container.
UPDATABLE_OPTIONS = updatable()


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
            if not same(name, actual.get(name), value)]


# -- `pycontainer compare` / ContainerService.compare: the same comparison, named by inspect paths ------------

def asked_of(options: CreateOptions, desired: Settings) -> set[str]:
    """The options ``options`` (CLI flags) set: those whose normal form is not a default container's. The
    image is always asked; -t/-i only when given (as the module compares tty/interactive only when set)."""
    from .options import CreateOptions

    default = Settings.of_options(CreateOptions(image=options.image), desired.image)
    asked = {name for name, view in VIEWS.items() if view(desired) != view(default)} | {"image"}
    asked |= {name for name, value in (("entrypoint", options.entrypoint), ("command", options.command))
              if value is not None}
    asked |= {name for name, value in (("env", options.env), ("labels", options.labels)) if value}
    if asked & {"restart_policy", "restart_retries"}:
        asked |= {"restart_policy", "restart_retries"}  # one inspect field
    return asked


def _shown(name: str, settings: Settings) -> Any:
    """What `compare` prints for option ``name``: the HostConfig field as stored, else the normal form."""
    option = BY_NAME[name]
    if option.raw is not None:
        return option.raw(settings)
    if option.host_field:
        return getattr(settings.host, option.host_field)
    return option.view(settings)


def differences(record: ContainerRecord, options: CreateOptions, image_id: str | None) -> list[Difference]:
    """What differs between ``record`` and ``options`` (``image_id``: what options.image resolves to now,
    None when unknown: not pulled yet, which counts as a difference), by Docker's inspect paths. The module's
    comparison (option_view/option_differences) decides; options ``options`` leaves unset are not compared."""
    actual, desired = Settings.of_record(record), Settings.of_options(options, image_id)
    env_keys, label_keys = list(_env_map(options.env)), list(options.labels)
    asked = asked_of(options, desired)
    found: list[Difference] = []
    shown: set[str] = set()
    diffs = option_differences(option_view(actual, asked, env_keys, label_keys),
                               option_view(desired, asked, env_keys, label_keys))
    for d in diffs:
        path = BY_NAME[d.name].inspect or d.name
        if d.name in ("env", "labels"):  # one line per key
            found += [Difference(f"{path}.{key}", d.actual.get(key), value) for key, value in d.desired.items()
                      if d.actual.get(key) != value]
        elif path not in shown:
            shown.add(path)
            found.append(Difference(path, _shown(d.name, actual), _shown(d.name, desired)))
    return found
