"""Fault injection for the fault suite (tests/faults/README.md): die or fail at a named step.

``PYCONTAINER_FAULT="<step>[:<action>][,...]"`` is read once, at import. At ``fault_point(<step>)`` the
process SIGKILLs itself (action ``kill``, the default), raises ``OSError(ENOSPC)`` (action ``enospc``) or
sleeps ``STALL_SECONDS`` (action ``stall``: holds a race window open for a test that waits for the claim file).
A step fires each time it is reached; with ``PYCONTAINER_FAULT_ONCE=<path>`` only the first time any
process reaches one (it creates that file, holding the step's name, to claim the fault). Processes the
engine starts (the monitor, a container's PID 1 before it execs) inherit the variables, so the same knob
reaches them. Unset, a call costs one test of an empty dict.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "PYCONTAINER_FAULT"
STALL_SECONDS = 2.0


def _parse(text: str) -> dict[str, str]:
    faults = {}
    for item in text.split(","):
        step, _sep, action = item.strip().partition(":")
        if step:
            faults[step] = action or "kill"
    return faults


_FAULTS: dict[str, str] = _parse(os.environ.get(ENV, ""))
_ONCE = os.environ.get("PYCONTAINER_FAULT_ONCE", "") if _FAULTS else ""
# Opened now: a container's init reaches its fault point after its pivot, where the path means nothing.
_ONCE_DIR = os.open(os.path.dirname(_ONCE) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if _ONCE else -1


def fault_point(step: str) -> None:
    """A place a fault can be injected at; does nothing unless ``step`` is named in PYCONTAINER_FAULT."""
    if not _FAULTS:
        return
    action = _FAULTS.get(step)
    if action is None or (_ONCE and not _claim(step)):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected at {step})")
    elif action == "stall":
        import time

        time.sleep(STALL_SECONDS)


def _claim(step: str) -> bool:
    try:
        fd = os.open(os.path.basename(_ONCE), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600,
                     dir_fd=_ONCE_DIR)
    except FileExistsError:
        return False
    os.write(fd, step.encode())
    os.close(fd)
    return True
