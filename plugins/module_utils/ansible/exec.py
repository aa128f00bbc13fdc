"""The `pycontainer_exec` module's logic: one `docker exec` with its output returned, as
community.docker.docker_container_exec does it (a non-zero exit is a result in `rc`, not a module error)."""

from __future__ import annotations

import shlex
from typing import Any

from ..engine import Engine
from ..errors import Conflict, InvalidArgument


def exec_argv(params: dict[str, Any]) -> list[str]:
    """The command as a list: ``argv`` as given, or ``command`` split like a shell would."""
    if params.get("argv"):
        return [str(arg) for arg in params["argv"]]
    try:
        argv = shlex.split(params.get("command") or "")
    except ValueError as exc:
        raise InvalidArgument(f"cannot split command: {exc}") from None
    if not argv:
        raise InvalidArgument("one of argv and command must name a command")
    return argv


def _text(data: bytes, strip: bool) -> str:
    text = data.decode("utf-8", errors="replace")
    # docker_container_exec strips only line ends at the end (empty lines), not other whitespace.
    return text.rstrip("\r\n") if strip else text


def run_exec(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    argv = exec_argv(params)
    container = params["container"]
    env = [f"{key}={'' if value is None else value}" for key, value in (params.get("env") or {}).items()]
    if check_mode:
        # Nothing runs; the container must still be there and running for the real run to work.
        record = engine.containers.lookup(container)
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        return {"changed": True}
    if params.get("detach"):
        engine.containers.exec(container, argv, detach=True, tty=bool(params.get("tty")), user=params.get("user"),
                               env=env, workdir=params.get("chdir"), privileged=bool(params.get("privileged")))
        return {"changed": True}
    stdin = params.get("stdin")
    data = None
    if stdin is not None:
        data = (stdin + ("\n" if params.get("stdin_add_newline", True) else "")).encode()
    result = engine.containers.exec_capture(container, argv, stdin=data, user=params.get("user"), env=env,
                                            workdir=params.get("chdir"),
                                            privileged=bool(params.get("privileged")), tty=bool(params.get("tty")))
    strip = params.get("strip_empty_ends", True)
    stdout, stderr = _text(result.stdout, strip), _text(result.stderr, strip)
    outcome = {"changed": True, "rc": result.exit_code, "stdout": stdout, "stderr": stderr,
               "stdout_lines": stdout.splitlines(), "stderr_lines": stderr.splitlines()}
    if result.exit_code:
        # Not fail_json: the result carries rc (Ansible marks a non-zero rc failed unless failed_when says
        # otherwise, as with docker_container_exec); the message says why, as the command module's does.
        outcome["msg"] = "non-zero return code"
    return outcome
