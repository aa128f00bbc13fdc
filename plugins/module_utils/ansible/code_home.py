"""Where the engine's code lives on a target, and who may own it (see engine_code.py for the whole scheme).
Shared by engine_code.py, which every module payload carries, and code_bundle.py, which installs the code:
standard library only, and small.
"""

from __future__ import annotations

import contextlib
import os
import stat

PACKAGE = "ansible_collections.pycontainer.engine.plugins.module_utils"


class CodeError(Exception):
    """The engine's code cannot be used on this target (the message says why)."""


def default_code_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/pycontainer-code"
    return os.path.join(os.path.expanduser("~"), ".local", "share", "pycontainer", "code")


def installed(code_dir: str, digest: str) -> str | None:
    """``<code_dir>/<digest>`` when it is there; None when not. Raises CodeError when the code dir or the
    tree is not the user's own (code from it would run with the user's rights)."""
    check_own_dir(code_dir, create=True)
    tree = os.path.join(code_dir, digest)
    try:
        check_own_dir(tree, create=False)
    except FileNotFoundError:
        return None
    return tree


def check_own_dir(path: str, create: bool) -> None:
    if create:
        with contextlib.suppress(FileExistsError):
            os.makedirs(path, mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise CodeError(f"refusing to run the engine's code from {path}: it must be a directory owned by uid "
                        f"{os.geteuid()} that no one else can write")
