"""The `pycontainer` module's logic: desired container state -> engine calls, with check and diff mode.

States (as community.docker.docker_container): ``present`` (exists with this configuration; not started
when created), ``started`` (exists and runs; ``detach=false`` runs it to completion and returns its output),
``stopped``, ``restarted``, ``absent``.

Idempotency: only the options the task sets are compared (``container/compare.py``: one normal form per
option, so ``80`` equals ``80/tcp`` and ``busybox`` equals its image ID), against the container's record. A
difference only in memory, memory_swap, cpus, pids_limit or the restart policy is applied in place
(``container/update.py``, like `docker update`); any other recreates the container. Check mode walks the same
plan without acting (the image a pull would give is asked of the registry, manifests only), so its
``changed`` and ``actions`` are the real run's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
from collections.abc import Callable
from typing import Any

from ..container import option_table
from ..container.compare import VIEWS, Settings, option_differences, option_view
from ..container.option_table import create_fields_from_params, host_fields_from_params
from ..container.options import CreateOptions
from ..engine import Engine
from ..errors import ContainerFailed, ContainerNotFound, EngineError, ImageNotFound, InvalidArgument
from ..records.hostconfig import HostConfig, RestartPolicy
from ..system.views import inspect_container
from .network import container_network_fields


def _as_argv(value: Any, option: str) -> list[str] | None:
    """community.docker's rule: a string is split like a shell would, a list is taken as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise InvalidArgument(f"{option}: {exc}") from None
    return [str(v) for v in value]


def _text(value: Any) -> str:
    """A YAML scalar as the text a container sees: ``true``/``false`` (not Python's True), numbers as written."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def argument_spec() -> dict[str, dict[str, Any]]:
    """The module's options: every one is declared once, in the engine's option table."""
    return option_table.argument_spec()


def _mount(item: dict[str, Any]):
    """community.docker's ``mounts`` entry -> the engine's Mount (through the --mount parser)."""
    from ..runtime.volumes import parse_mount_flag

    fields = [f"type={item.get('type') or 'volume'}", f"target={item['target']}"]
    if item.get("source"):
        fields.append(f"source={item['source']}")
    if item.get("read_only"):
        fields.append("readonly")
    if item.get("propagation"):
        fields.append(f"bind-propagation={item['propagation']}")
    if item.get("no_copy"):
        fields.append("volume-nocopy")
    for key, value in (item.get("labels") or {}).items():
        fields.append(f"volume-label={key}={_text(value)}")
    if item.get("tmpfs_size"):
        fields.append(f"tmpfs-size={item['tmpfs_size']}")
    if item.get("tmpfs_mode"):
        fields.append(f"tmpfs-mode={item['tmpfs_mode']}")
    return parse_mount_flag(",".join(fields))


def host_config(params: dict[str, Any]) -> HostConfig:
    from ..runtime.volumes import parse_tmpfs_flag, parse_volume_flag

    restart = params.get("restart_policy") or "no"
    mounts = [parse_volume_flag(v) for v in params.get("volumes") or []]
    mounts += [parse_tmpfs_flag(t) for t in params.get("tmpfs") or []]
    mounts += [_mount(m) for m in params.get("mounts") or []]
    host = HostConfig(
        **container_network_fields(params),  # network_mode, published_ports, networks, dns, etc_hosts
        **host_fields_from_params(params),   # the option table's (container/option_table.py)
        mounts=mounts,
        restart_policy=RestartPolicy(restart, int(params.get("restart_retries") or 0) if restart == "on-failure"
                                     else 0),
        auto_remove=bool(params.get("auto_remove")),
        log_driver=params.get("log_driver") or "",
        log_options={str(k): _text(v) for k, v in (params.get("log_options") or {}).items()},
    )
    return host


def create_options(params: dict[str, Any]) -> CreateOptions:
    if not params.get("image"):
        raise InvalidArgument("image is required to create a container")
    env = [f"{k}={_text(v)}" for k, v in (params.get("env") or {}).items()]
    return CreateOptions(
        image=params["image"],
        name=params["name"],
        command=_as_argv(params.get("command"), "command"),
        entrypoint=_as_argv(params.get("entrypoint"), "entrypoint"),
        env=env,
        labels={str(k): _text(v) for k, v in (params.get("labels") or {}).items()},
        host_config=host_config(params),
        **create_fields_from_params(params),  # the option table's: working_dir, user, hostname, pull, tty...
    )


def asked_options(params: dict[str, Any]) -> set[str]:
    """The options this task sets (the only ones compared)."""
    asked = {name for name in (*VIEWS, "env", "labels") if params.get(name) is not None}
    if params.get("networks") is not None:
        asked.add("network_mode")  # it defaults to the first network
    if "restart_policy" in asked:
        asked.add("restart_retries")  # a policy other than on-failure has none
    return asked


def _status(record) -> str:
    return record.state.status if record is not None else "absent"


class ContainerTask:
    """One run of the module: the plan, acted on unless in check mode."""

    def __init__(self, engine: Engine, params: dict[str, Any], check_mode: bool) -> None:
        self.engine = engine
        self.containers = engine.containers
        self.params = params
        self.check_mode = check_mode
        self.name: str = params["name"]
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"changed": False, "actions": self.actions}
        try:
            self.record = self.containers.lookup(self.name)
        except ContainerNotFound:
            self.record = None
        self.asked = asked_options(params)
        self.env_keys = [str(k) for k in params.get("env") or {}]
        self.label_keys = [str(k) for k in params.get("labels") or {}]
        self.before = self._view(self.record)
        self.planned_status = _status(self.record)  # what check mode predicts the status becomes
        self.desired: dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------------------------------------
    def act(self, action: str, status: str, call: Callable[[], Any]) -> Any:
        self.actions.append(action)
        self.planned_status = status
        return None if self.check_mode else call()

    def _view(self, record) -> dict[str, Any]:
        if record is None:
            return {"state": "absent"}
        view = option_view(Settings.of_record(record), self.asked, self.env_keys, self.label_keys)
        return {**view, "state": _status(record)}

    def _refresh(self) -> None:
        if self.record is not None and not self.check_mode:
            try:
                self.record = self.containers.lookup(self.record.id)
            except ContainerNotFound:  # auto_remove: the monitor removed it on exit
                self.record = None

    def _stop(self, record) -> None:
        if self.params.get("force_kill"):
            self.containers.kill(record.id)
            self.containers.wait(record.id)
        else:
            self.containers.stop(record.id, self.params.get("stop_timeout"))

    def _remove(self) -> None:
        record = self.record

        def remove() -> None:
            if record.state.running and not self.params.get("force_kill"):
                self.containers.stop(record.id, self.params.get("stop_timeout"))  # gracefully, then remove
            with contextlib.suppress(ContainerNotFound):  # auto_remove: gone once stopped
                self.containers.remove(record.id, force=True, volumes=not self.params.get("keep_volumes", True))

        self.act(f"Removed container {self.name}", "absent", remove)
        self.record = None

    # -- the image ----------------------------------------------------------------------------------------
    def image_id(self, options: CreateOptions) -> str:
        """The ID of the image the container would run, pulled first as ``pull`` says (in check mode: what
        the registry would give, asked without downloading layers)."""
        images = self.engine.images
        ref, pull = options.image, options.pull
        local = None
        with contextlib.suppress(ImageNotFound):
            local = images.inspect(ref).id
        if pull == "never" or (local and (pull == "missing" or _is_image_id(ref))):
            return local or images.ensure(ref, "never").id  # never: "No such image" when missing
        if self.check_mode:
            wanted = images.resolve_remote(ref).image_id
        else:
            wanted = images.pull(ref).id
            options.pull = "never"  # pulled once: create uses it
        if wanted != local:
            self.actions.append(f"Pulled image {ref}")
        return wanted

    def desired_view(self, options: CreateOptions, image_id: str) -> dict[str, Any]:
        """The compact form of what the task asks for, normalised as create would store it."""
        host = dataclasses.replace(options.host_config)
        if host.network_mode.startswith("container:"):  # stored as container:<full id> (Docker)
            with contextlib.suppress(EngineError):
                host.network_mode = "container:" + self.containers.lookup(host.network_mode[10:]).id
        if not host.log_driver:  # unset: the engine's default, as create fills it in
            config = self.engine.config
            host.log_driver = config.log_driver or "json-file"
            host.log_options = {**config.log_opts, **host.log_options}
        settings = Settings.of_options(dataclasses.replace(options, host_config=host), image_id)
        return option_view(settings, self.asked, self.env_keys, self.label_keys)

    # -- states -------------------------------------------------------------------------------------------
    def absent(self) -> dict[str, Any]:
        if self.record is not None:
            self._remove()
        return self.finish()

    def converge(self, state: str) -> dict[str, Any]:
        options = create_options(self.params)
        image_id = self.image_id(options)
        self.desired = self.desired_view(options, image_id)
        was_running = self.record is not None and self.record.state.running
        if self.record is not None:
            self._reconcile(options)
        if self.record is None:
            created = self.act(f"Created container {self.name}", "created", lambda: self.containers.create(options))
            self.record = created if created is not None else self.record
            fresh = True
        else:
            fresh = False
        running = self.planned_status in ("running", "paused", "restarting")
        if state == "started":
            if fresh or not running:
                self.act(f"Started container {self.name}", "running", lambda: self.containers.start(self.record.id))
            elif self.params.get("restart"):
                self.act(f"Restarted container {self.name}", "running", self._restart)
        elif state == "present":
            if fresh and was_running:  # a recreated container keeps running
                self.act(f"Started container {self.name}", "running", lambda: self.containers.start(self.record.id))
        elif state == "stopped":
            if running:
                verb = "Killed" if self.params.get("force_kill") else "Stopped"
                self.act(f"{verb} container {self.name}", "exited", lambda: self._stop(self.record))
        elif state == "restarted":
            if fresh or not running:
                self.act(f"Started container {self.name}", "running", lambda: self.containers.start(self.record.id))
            else:
                self.act(f"Restarted container {self.name}", "running", self._restart)
        return self.finish()

    def _restart(self) -> None:
        self._stop(self.record)
        self.containers.start(self.record.id)

    def _reconcile(self, options: CreateOptions) -> None:
        """Recreate, update in place, or leave the existing container, from the differences."""
        from ..container.update import in_place_changes

        actual = option_view(Settings.of_record(self.record), self.asked, self.env_keys, self.label_keys)
        diffs = option_differences(actual, self.desired)
        if diffs:
            self.result["differences"] = [d.as_dict() for d in diffs]
        names = {d.name for d in diffs}
        kept = {name: value for name, value in actual.items() if name in self.desired and name not in names}
        if not names and not self.params.get("recreate"):
            self.desired.update(kept)  # a kept container keeps what it has (allow_more_present: more groups)
            return
        changes = None if self.params.get("recreate") else in_place_changes(
            names, options.host_config, self.record.config.host_config)
        if changes is not None:
            self.desired.update(kept)
            record_id = self.record.id
            self.act(f"Updated container {self.name}", self.planned_status,
                     lambda: self.containers.update(record_id, changes))
            return
        self._remove()

    def finish(self) -> dict[str, Any]:
        self._refresh()
        result = self.result
        result["changed"] = bool(self.actions)
        if self.check_mode:
            after = {**self.desired, "state": self.planned_status} if self.planned_status != "absent" else {
                "state": "absent"}
            result["container"] = inspect_container(self.record) if self.record is not None else {}
        else:
            after = self._view(self.record)
            result["container"] = inspect_container(self.record) if self.record is not None else {}
        result["diff"] = {"before": self.before, "after": after}
        return result


def _is_image_id(ref: str) -> bool:
    text = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def manage_container(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    state = params.get("state") or "started"
    task = ContainerTask(engine, params, check_mode)
    if state == "absent":
        return task.absent()
    if state == "stopped" and task.record is not None and not params.get("image"):
        if task.record.state.running:  # no image given: stop what is there, compare nothing
            verb = "Killed" if params.get("force_kill") else "Stopped"
            record = task.record
            task.act(f"{verb} container {task.name}", "exited", lambda: task._stop(record))
        return task.finish()
    if not params.get("detach", True) and state == "started":
        options = create_options(params)
        return _run_to_completion(engine, task.record, options, params, check_mode, task.result, task.before)
    return task.converge(state)


def _run_to_completion(engine: Engine, existing, options: CreateOptions, params: dict[str, Any], check_mode: bool,
                       result: dict[str, Any], before: dict) -> dict[str, Any]:
    """detach=false: a fresh container run to its end; its output and status are the result."""
    from ..supervision.attach import collect

    name = options.name
    if existing:
        result["actions"].append(f"Removed container {name}")
    result["actions"] += [f"Created container {name}", f"Started container {name}"]
    result["changed"] = True
    if check_mode:
        result["diff"] = {"before": before, "after": {"state": "exited"}}
        return result
    if existing:
        # Running to completion again: a fresh container, so the result never depends on leftovers.
        engine.containers.remove(existing.id, force=True, volumes=not params.get("keep_volumes", True))
    record = engine.containers.create(options)
    session = engine.containers.start_attached(record)
    try:
        status, raw = collect(session)
    finally:
        session.close()
    output = raw.decode("utf-8", errors="replace")
    try:
        final = engine.containers.lookup(record.id)
    except ContainerNotFound:  # auto_remove: the monitor removed it on exit
        final = record
        final.state.status, final.state.exit_code = "exited", status
    if params.get("cleanup") and engine.containers.store.exists(record.id):
        engine.containers.remove(record.id, force=True, volumes=not params.get("keep_volumes", True))
        result["actions"].append(f"Removed container {name}")
    container = inspect_container(final)
    container["Output"] = output
    result.update(container=container, output=output, status=status)
    result["diff"] = {"before": before, "after": {"state": "exited", "status": status}}
    if status != 0:
        raise ContainerFailed(f"Container {name} exited with code {status}", details={
            "output": output, "status": status, "container": container, "changed": True})
    return result
