"""User strings that name engine objects, checked in one place per kind before they become path components.

Container IDs, names and references reach ``os.path.join`` under the engine root (``containers/<id>/``): a
reference such as ``/some/dir/<64 chars>`` or ``../x`` must never be joined. Each kind has one validator here;
the container store calls them at its entry points (lookup, load, create, rename), so the CLI, the modules, the
connection plugin and the engine API all go through them. ``re.fullmatch`` on purpose: ``$`` would accept a
trailing newline. Volume names keep their one check in ``runtime/volumes.py`` (``validate_name``, ``_load``);
network names never become paths (one state file).
"""

from __future__ import annotations

import re

from .errors import ContainerNotFound, InvalidArgument

# Docker's RestrictedNamePattern (daemon/names): two characters at least, optional leading "/".
_CONTAINER_NAME_RE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_ID_RE = re.compile(r"[0-9a-f]{64}")
_ID_PREFIX_RE = re.compile(r"[0-9a-f]{1,64}")


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
