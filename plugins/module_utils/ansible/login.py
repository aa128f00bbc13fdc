"""The `pycontainer_login` module's logic: registry credentials in the engine's auth file, as the `login` and
`logout` CLI verbs keep them, with community.docker.docker_login's options and idempotency.

The password never appears in a result or a message: only the registry's key in the auth file does.
"""

from __future__ import annotations

import os
from typing import Any

from ..engine import Engine
from ..image.auth import auth_file_path, lookup, server_key


def manage_login(engine: Engine, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    key = server_key(params.get("registry_url"))
    path = auth_file_path(engine.config)
    stored = lookup(path, key) if os.path.exists(path) else None
    result: dict[str, Any] = {"changed": False, "actions": [], "registry": key}

    if (params.get("state") or "present") == "absent":
        if stored is not None:
            result["actions"].append(f"Removed credentials for {key}")
            if not check_mode:
                engine.images.logout(key)
        result["changed"] = stored is not None
        return result

    username, password = params.get("username"), params.get("password")
    wanted = (username, password)
    # Like docker login's local cache: the same credentials already stored are not checked again unless
    # reauthorize asks for it (docker_login's reauthorize).
    if stored == wanted and not params.get("reauthorize"):
        return result
    # The registry checks them even in check mode: a read-only request, and a wrong password then fails
    # the check run as it would fail the real one.
    engine.images.login(key, username, password, store=not check_mode and stored != wanted)
    result["login_result"] = {"Status": "Login Succeeded"}
    if stored != wanted:
        result["changed"] = True
        result["actions"].append(f"Logged into {key}")
    return result
