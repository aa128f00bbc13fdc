"""Run a function in a forked child (so namespace and mount changes never touch the test process)."""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from typing import Any


def in_child(fn: Callable[[], Any]) -> Any:
    """fn()'s return value, or its exception re-raised here (as RuntimeError with the child's traceback)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as exc:
                payload = pickle.dumps((False, (exc, traceback.format_exc())))
            os.write(w, payload)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if ok:
        return value
    exc, tb = value
    raise exc from RuntimeError(tb)
