"""The `pycontainer` module's logic: desired container state -> engine calls, with check and diff mode.

States (as community.docker.docker_container): ``present`` (exists with this configuration, not started),
``started`` (exists and runs; ``detach=false`` runs it to completion and returns its output), ``stopped``,
``restarted``, ``absent``. A container whose configuration differs from the parameters
(``runtime/compare.py``, the comparison the CLI uses too) is recreated.
"""

from __future__ import annotations

import shlex
from typing import Any

from .ansible_network import container_network_fields
from .engine import Engine
from .errors import ContainerFailed, ContainerNotFound, InvalidArgument
from .runtime.hostconfig import HostConfig, RestartPolicy
from .runtime.service import CreateOptions
from .views import inspect_container


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


def _size(value: Any) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, int):
        return value
    from .cli.container_commands import ram_in_bytes

    return -1 if str(value) == "-1" else ram_in_bytes(str(value))


def host_config(params: dict[str, Any]) -> HostConfig:
    from .runtime.volumes import parse_tmpfs_flag, parse_volume_flag

    restart = params.get("restart_policy") or "no"
    mounts = [parse_volume_flag(v) for v in params.get("volumes") or []]
    mounts += [parse_tmpfs_flag(t) for t in params.get("tmpfs") or []]
    return HostConfig(
        **container_network_fields(params),  # network_mode, published_ports, networks, dns, etc_hosts
        memory=_size(params.get("memory")),
        memory_swap=_size(params.get("memory_swap")),
        nano_cpus=round(float(params["cpus"]) * 1e9) if params.get("cpus") else 0,
        pids_limit=int(params.get("pids_limit") or 0),
        cap_add=list(params.get("capabilities") or []),
        cap_drop=list(params.get("cap_drop") or []),
        privileged=bool(params.get("privileged")),
        read_only=bool(params.get("read_only")),
        init=bool(params.get("init")),
        mounts=mounts,
        restart_policy=RestartPolicy(restart, int(params.get("restart_retries") or 0) if restart == "on-failure"
                                     else 0),
        auto_remove=bool(params.get("auto_remove")),
        log_driver=params.get("log_driver") or "",
        log_options={str(k): str(v) for k, v in (params.get("log_options") or {}).items()},
    )


def create_options(params: dict[str, Any]) -> CreateOptions:
    if not params.get("image"):
        raise InvalidArgument("image is required to create a container")
    env = [f"{k}={'' if v is None else v}" for k, v in (params.get("env") or {}).items()]
    return CreateOptions(
        image=params["image"],
        name=params["name"],
        command=_as_argv(params.get("command"), "command"),
        entrypoint=_as_argv(params.get("entrypoint"), "entrypoint"),
        env=env,
        working_dir=params.get("working_dir"),
        user=params.get("user"),
        hostname=params.get("hostname"),
        labels={str(k): str(v) for k, v in (params.get("labels") or {}).items()},
        host_config=host_config(params),
        pull=params.get("pull") or "missing",
        tty=bool(params.get("tty")),
        open_stdin=bool(params.get("interactive")),
        stop_timeout=params.get("stop_timeout"),
    )


def manage_container(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    state = params.get("state") or "started"
    name = params["name"]
    containers = engine.containers
    try:
        existing = containers.lookup(name)
    except ContainerNotFound:
        existing = None
    before = inspect_container(existing) if existing else {}
    result: dict[str, Any] = {"changed": False, "actions": []}
    actions: list[str] = result["actions"]

    def finish(record) -> dict[str, Any]:
        after = inspect_container(containers.lookup(record.id)) if record is not None and not check_mode else {}
        result["container"] = after
        result["diff"] = {"before": before, "after": after if not check_mode else _planned(before, actions)}
        result["changed"] = bool(actions)
        return result

    if state == "absent":
        if existing:
            actions.append(f"Removed container {name}")
            if not check_mode:
                containers.remove(existing.id, force=True)  # community.docker removes a running one too
        result.update(changed=bool(actions), container={}, diff={"before": before, "after": {}})
        return result

    if state == "stopped" and existing and not params.get("image"):
        return _stop(engine, existing, params, check_mode, actions, finish)

    options = create_options(params)
    if not params.get("detach", True) and state == "started":
        return _run_to_completion(engine, existing, options, params, check_mode, result, before)

    record = existing
    if existing is not None:
        diffs = containers.compare(existing, options)
        if diffs:
            result["differences"] = [d.as_dict() for d in diffs]
            actions.append(f"Removed container {name}")
            if not check_mode:
                containers.remove(existing.id, force=True)
            record = None
    if record is None:
        actions.append(f"Created container {name}")
        if not check_mode:
            record = containers.create(options)
    if state == "started":
        if record is None or not record.state.running:
            actions.append(f"Started container {name}")
            if not check_mode:
                containers.start(record.id)
    elif state == "restarted":
        actions.append(f"Restarted container {name}")
        if not check_mode:
            containers.restart(record.id, params.get("stop_timeout"))
    elif state == "stopped" and record is not None and record.state.running:
        return _stop(engine, record, params, check_mode, actions, finish)
    return finish(record)


def _stop(engine: Engine, record, params, check_mode: bool, actions: list[str], finish) -> dict[str, Any]:
    if record.state.running:
        actions.append(f"Stopped container {record.name}")
        if not check_mode:
            engine.containers.stop(record.id, params.get("stop_timeout"))
    return finish(record)


def _planned(before: dict, actions: list[str]) -> dict:
    return {**before, "Actions": list(actions)} if before else {"Actions": list(actions)}


def _run_to_completion(engine: Engine, existing, options: CreateOptions, params: dict[str, Any], check_mode: bool,
                       result: dict[str, Any], before: dict) -> dict[str, Any]:
    """detach=false: a fresh container run to its end; its output and status are the result."""
    from .runtime.attach import collect

    name = options.name
    if existing:
        result["actions"].append(f"Removed container {name}")
    result["actions"] += [f"Created container {name}", f"Started container {name}"]
    result["changed"] = True
    if check_mode:
        result["diff"] = {"before": before, "after": {"Name": "/" + name, "Config": {"Image": options.image}}}
        return result
    if existing:
        # Running to completion again: a fresh container, so the result never depends on leftovers.
        engine.containers.remove(existing.id, force=True)
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
        engine.containers.remove(record.id, force=True)
        result["actions"].append(f"Removed container {name}")
    container = inspect_container(final)
    container["Output"] = output
    result.update(container=container, output=output, status=status)
    result["diff"] = {"before": before, "after": container}
    if status != 0:
        raise ContainerFailed(f"Container {name} exited with code {status}", details={
            "output": output, "status": status, "container": container, "changed": True})
    return result
