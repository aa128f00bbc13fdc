"""Fault injection for the fault suite (tests/faults/README.md): die or fail at a named step.

``PYCONTAINER_FAULT="<step>[:<action>][,...]"`` is read once, at import. At ``fault_point(<step>)`` the
process SIGKILLs itself (action ``kill``, the default) or raises ``OSError(ENOSPC)`` (action ``enospc``).
A step fires each time it is reached. Processes the engine starts (the monitor, a container's PID 1 before
it execs) inherit the variable, so the same knob reaches them. Unset, a call costs one dict lookup.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "PYCONTAINER_FAULT"


def _parse(text: str) -> dict[str, str]:
    faults = {}
    for item in text.split(","):
        step, _sep, action = item.strip().partition(":")
        if step:
            faults[step] = action or "kill"
    return faults


_FAULTS: dict[str, str] = _parse(os.environ.get(ENV, ""))


def fault_point(step: str) -> None:
    """A place a fault can be injected at; does nothing unless ``step`` is named in PYCONTAINER_FAULT."""
    if not _FAULTS:
        return
    action = _FAULTS.get(step)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected at {step})")
