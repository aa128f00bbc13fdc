"""The `pycontainer` module's logic: desired container state -> engine calls, with check and diff mode."""

from __future__ import annotations

import os
import shlex
import threading
from typing import Any

from .engine import Engine
from .errors import ContainerFailed, ContainerNotFound, InvalidArgument, UnsupportedError
from .runtime.hostconfig import HostConfig
from .runtime.service import CreateOptions, Stdio
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
        host_config=HostConfig(network_mode=params.get("network_mode") or "none"),
        pull=params.get("pull") or "missing",
    )


def _capture(engine: Engine, record) -> tuple[int, str]:
    """Start ``record`` with stdout and stderr on one pipe; return its exit code and combined output."""
    read_fd, write_fd = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            while data := pipe.read(65536):
                chunks.append(data)

    # Read while the container runs: a full pipe would otherwise block it forever.
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        status = engine.containers.start_attached(record, Stdio(stdin=None, stdout=write_fd, stderr=write_fd))
    finally:
        os.close(write_fd)
        reader.join()
    return status, b"".join(chunks).decode("utf-8", errors="replace")


def manage_container(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    state = params.get("state") or "started"
    name = params["name"]
    try:
        existing = engine.containers.lookup(name)
    except ContainerNotFound:
        existing = None
    before = inspect_container(existing) if existing else {}
    result: dict[str, Any] = {"changed": False, "actions": []}

    if state == "absent":
        if existing:
            result.update(changed=True, actions=[f"Removed container {name}"])
            if not check_mode:
                engine.containers.remove(existing.id, force=True)  # community.docker removes a running one too
        result["diff"] = {"before": before, "after": {}}
        result["container"] = {}
        return result

    if state != "started" or params.get("detach", True):
        raise UnsupportedError(
            "only detach=false (run to completion) and state=absent are supported in this version")

    options = create_options(params)
    if existing and existing.state.status == "running":
        raise UnsupportedError(f"container {name} is running; stopping running containers is not supported yet")
    result["changed"] = True
    if existing:
        result["actions"].append(f"Removed container {name}")
    result["actions"] += [f"Created container {name}", f"Started container {name}"]
    if check_mode:
        result["diff"] = {"before": before, "after": {"Name": "/" + name, "Config": {"Image": options.image}}}
        return result
    if existing:
        # Running to completion again: a fresh container, so the result never depends on leftovers.
        engine.containers.remove(existing.id)
    record = engine.containers.create(options)
    status, output = _capture(engine, record)
    removed = False
    if params.get("cleanup"):
        engine.containers.remove(record.id)
        removed = True
        result["actions"].append(f"Removed container {name}")
    container = inspect_container(record) if removed else inspect_container(engine.containers.lookup(record.id))
    container["Output"] = output
    result.update(container=container, output=output, status=status)
    result["diff"] = {"before": before, "after": container}
    if status != 0:
        raise ContainerFailed(f"Container {name} exited with code {status}", details={
            "output": output, "status": status, "container": container, "changed": True})
    return result
