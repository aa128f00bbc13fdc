"""User strings that name engine objects, checked in one place per kind before they become path components.

Container IDs, names and references, volume and network names reach ``os.path.join`` under the engine root
(``containers/<id>/``, ``volumes/<name>/``): a reference such as ``/some/dir/<64 chars>`` or ``../x`` must
never be joined. Each kind has one validator here; the stores call it at their lookup entry points, so the
CLI, the modules, the connection plugin and the engine API all go through it. ``re.fullmatch`` on purpose:
``$`` would accept a trailing newline.
"""

from __future__ import annotations

import re

from .errors import ContainerNotFound, InvalidArgument

# Docker's RestrictedNamePattern (daemon/names): two characters at least, optional leading "/".
_CONTAINER_NAME_RE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# Docker's local volume driver (volume/local): one character is enough.
_VOLUME_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_ID_RE = re.compile(r"[0-9a-f]{64}")
_ID_PREFIX_RE = re.compile(r"[0-9a-f]{1,64}")
# Network names become bridge/state keys, never paths; still no "/", NUL or newline (Docker's own check
# is only "not empty" plus the restricted pattern for the name used as an interface label).
_NETWORK_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def is_container_id(value: str) -> bool:
    """A full container ID: 64 lowercase hex characters, nothing else."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def is_id_prefix(value: str) -> bool:
    """Hex characters only: may be a (short) ID."""
    return isinstance(value, str) and _ID_PREFIX_RE.fullmatch(value) is not None


def container_id(value: str) -> str:
    """A full container ID about to become ``containers/<id>``; anything else is no container at all."""
    if not is_container_id(value):
        raise ContainerNotFound(f"No such container: {value}")
    return value


def container_name(value: str) -> str:
    """A name for ``create --name`` / ``rename``, without its leading "/" (Docker's rule and wording)."""
    if not isinstance(value, str) or not _CONTAINER_NAME_RE.fullmatch(value):
        raise InvalidArgument(f"Invalid container name ({value}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return value.lstrip("/")


def container_ref(value: str) -> str:
    """A reference given to any container verb: a name (optional leading "/") or a hex ID / unique prefix.

    Anything else cannot name a container, so it is Docker's "No such container" before any path is built.
    """
    if isinstance(value, str) and (_CONTAINER_NAME_RE.fullmatch(value) or is_id_prefix(value)):
        return value
    raise ContainerNotFound(f"No such container: {value}")


def volume_name(value: str) -> str:
    """A local volume name (Docker's pattern and wording)."""
    if not isinstance(value, str) or not _VOLUME_NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f'create {value}: "{value}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')
    return value


def network_name(value: str) -> str:
    """A network name or ID given by a user."""
    if not isinstance(value, str) or not _NETWORK_NAME_RE.fullmatch(value):
        raise InvalidArgument(f"invalid network name: {value!r}")
    return value
