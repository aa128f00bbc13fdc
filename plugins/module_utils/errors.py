"""Typed engine errors.

Every failure the engine reports is one of these. The CLI maps them to an exit code in one place
(``cli.main``) and the Ansible modules map them to ``fail_json`` in one place (``module_glue``); nothing
else catches them to translate.
"""

from __future__ import annotations


class EngineError(Exception):
    """An error of the engine itself (Docker's exit code 125)."""

    exit_code = 125


class InvalidArgument(EngineError):
    """The user asked for something malformed (bad reference, bad option value)."""


class NotFound(EngineError):
    """A named object (image, container, network, volume) does not exist."""


class ImageNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class Conflict(EngineError):
    """The request clashes with existing state (a name in use, an image in use)."""


class NetworkNotFound(NotFound):
    pass


class PortConflict(Conflict):
    """A host port is already published by another container or bound by a host process (`run` then
    removes the container it created: nothing is left behind)."""


class RegistryError(EngineError):
    """A registry answered with an error, or could not be reached."""


class IntegrityError(EngineError):
    """Downloaded or stored content does not match its digest."""


class UnsupportedError(EngineError):
    """Valid input this engine does not support (schema 1 manifests, ...)."""


class MissingLibrary(EngineError):
    """A Python library this operation needs is not installed on the host (modules: missing_required_lib)."""

    def __init__(self, message: str, library: str = "", purpose: str = "") -> None:
        super().__init__(message)
        self.library = library
        self.purpose = purpose  # what needs it, as "for <purpose>" reads


class ContainerCommandError(EngineError):
    """The container's process could not be started (Docker: 126 cannot invoke, 127 not found)."""


class CommandNotFound(ContainerCommandError):
    exit_code = 127


class CommandNotExecutable(ContainerCommandError):
    exit_code = 126


class ContainerFailed(EngineError):
    """A container run to completion for a caller (Ansible's detach=false) exited non-zero.

    ``details`` carries what the caller reports besides the message (output, status, container).
    """

    def __init__(self, message: str, details: dict) -> None:
        super().__init__(message)
        self.details = details
