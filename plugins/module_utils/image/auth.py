"""Registry credentials: a Docker-compatible auth file (``{"auths": {host: {"auth": base64}}}``, 0600).

``login`` stores, ``logout`` removes, and ``credentials_for`` gives the registry client's Authenticator a
``host -> (user, password)`` lookup. Secrets are never put in messages, events or logs: only host names.
"""

from __future__ import annotations

import base64
import binascii
import os

from ..errors import InvalidArgument
from ..fsutil import atomic_write_json, ensure_dir, locked, read_json
from .reference import DEFAULT_DOMAIN

AUTH_FILE_ENV = "REGISTRY_AUTH_FILE"
# Docker keys Docker Hub's credentials by its legacy v1 URL; keep that so the file is interchangeable.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {DEFAULT_DOMAIN, "index.docker.io", "registry-1.docker.io", DOCKER_HUB_KEY.rstrip("/"), DOCKER_HUB_KEY}


def auth_file_path(config) -> str:
    return os.environ.get(AUTH_FILE_ENV) or getattr(config, "auth_file", "") or os.path.join(config.root, "auth.json")


def server_key(server: str | None) -> str:
    """Normalise what the user typed (``https://host:5000/``, ``docker.io``) to the file's key."""
    server = (server or "").strip()
    if not server or server in _HUB_ALIASES or server.rstrip("/") in _HUB_ALIASES:
        return DOCKER_HUB_KEY
    for prefix in ("https://", "http://"):
        if server.startswith(prefix):
            server = server[len(prefix):]
    host = server.split("/", 1)[0]
    if not host:
        raise InvalidArgument(f"invalid registry address {server!r}")
    return DOCKER_HUB_KEY if host in _HUB_ALIASES else host


def registry_host(key: str) -> str:
    """The host to talk to for a key of the file."""
    return "registry-1.docker.io" if key == DOCKER_HUB_KEY else key


def _load(path: str) -> dict:
    try:
        data = read_json(path, default=None)
    except ValueError:
        raise InvalidArgument(f"auth file {path} is not valid JSON") from None
    if data is None:
        return {"auths": {}}
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise InvalidArgument(f"auth file {path}: expected an object with an \"auths\" object")
    data.setdefault("auths", {})
    return data


def store_credentials(path: str, server: str, username: str, password: str) -> None:
    ensure_dir(os.path.dirname(os.path.abspath(path)), 0o700)
    with locked(path + ".lock"):
        data = _load(path)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        data["auths"][server_key(server)] = {"auth": token}
        atomic_write_json(path, data, 0o600)


def remove_credentials(path: str, server: str) -> bool:
    if not os.path.exists(path):
        return False
    with locked(path + ".lock"):
        data = _load(path)
        key = server_key(server)
        if data["auths"].pop(key, None) is None:
            return False
        atomic_write_json(path, data, 0o600)
    return True


def lookup(path: str, host: str) -> tuple[str, str] | None:
    """Credentials for a registry host (or None). Docker Hub's hosts all map to its one key."""
    data = _load(path)
    auths = data["auths"]
    key = server_key(host)
    entry = auths.get(key)
    if entry is None:
        # Tolerate keys written with a scheme or a trailing path, as some tools do.
        for k, v in auths.items():
            if server_key(k) == key:
                entry = v
                break
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidArgument(f"auth file {path}: invalid credentials for {key}") from None
        return (user, password) if sep else None
    if entry.get("username") and entry.get("password"):
        return str(entry["username"]), str(entry["password"])
    return None


def credentials_for(config):
    """The Authenticator's credentials callable for this engine config (reads the file lazily)."""
    path = auth_file_path(config)

    def get(host: str) -> tuple[str, str] | None:
        return lookup(path, host) if os.path.exists(path) else None

    return get
