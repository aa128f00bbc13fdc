"""The seam itself: the real Syscalls are libc's and os's functions, and the recorder stands in for all of them."""

from __future__ import annotations

import inspect
import os

from ansible_collections.pycontainer.engine.plugins.module_utils.linux import libc, syscalls

from .recording import RecordingSyscalls

NAMES = [n for n in vars(syscalls.Syscalls) if not n.startswith("_")]


def test_real_calls_are_the_libc_and_os_functions():
    for name in NAMES:
        real = getattr(syscalls.REAL, name)
        assert real is getattr(libc, name, None) or real is getattr(os, name), name
    assert syscalls.REAL.mount is libc.mount and syscalls.REAL.open is os.open


def test_recorder_implements_every_call_with_compatible_parameters():
    for name in NAMES:
        fake = getattr(RecordingSyscalls, name, None)
        assert callable(fake), f"RecordingSyscalls lacks {name}"
        real = getattr(syscalls.Syscalls, name)
        try:
            wanted = [p for p in inspect.signature(real).parameters if p not in ("self",)]
        except ValueError:  # a builtin without a signature
            continue
        have = list(inspect.signature(fake).parameters)[1:]
        assert [p for p in wanted if p not in have] == [], name
