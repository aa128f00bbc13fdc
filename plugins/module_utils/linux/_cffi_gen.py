"""Emit an out-of-line ABI-mode cffi module from a cdef (used by the ``*_build.py`` scripts, never at run time).

Parsing a ``cdef()`` at import costs ~56 ms per process; the emitted module holds the pre-parsed type table
and loads in well under a millisecond. Nothing is compiled, so targets need only cffi's backend.
"""

from __future__ import annotations

import os

import cffi


def emit(cdef: str, module_name: str, directory: str) -> str:
    """Write ``<directory>/<module_name>.py`` for ``cdef``; returns its path."""
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(module_name, None)
    target = os.path.join(directory, f"{module_name}.py")
    ffi.emit_python_code(target)
    return target
