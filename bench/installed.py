"""Measure the engine as a user runs it: with bytecode.

A fresh clone has no ``__pycache__``, and this machine's shells (and CI) set ``PYTHONDONTWRITEBYTECODE=1``, so
without this every timed CLI run would compile the sources of each engine module it imports (10-20 ms per
command, and more for modules added since the last warm run) — a cost no installed engine pays, and one that
made an earlier before/after comparison wrong. Benchmarks call ``as_installed()`` before timing anything.
"""

from __future__ import annotations

import compileall
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def as_installed() -> None:
    """Write the engine's bytecode now, and let the commands the benchmark times write theirs too."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(os.path.join(REPO, "plugins"), quiet=1)
