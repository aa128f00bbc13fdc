"""Resolve Docker's ``--user user[:group]`` against the container's /etc/passwd and /etc/group.

Before a container starts, the files are read from the image's layer directories (top layer first); for an exec
in a running container, from the container's own root (users added inside it count, as with Docker), opened with
every symlink resolved inside that root. No path inside the container is ever followed on the host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import InvalidArgument


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    home: str = "/root"
    additional_gids: list[int] = field(default_factory=list)


def _entries(lines) -> list[list[str]]:
    return [line.rstrip("\n").split(":") for line in lines if line.strip() and not line.startswith("#")]


def _container_file(root_fd: int, relpath: str) -> list[list[str]]:
    from .image._safepath import open_in_root

    try:
        fd = open_in_root(root_fd, relpath, os.O_RDONLY)
    except OSError:
        return []
    with os.fdopen(fd, errors="replace") as f:
        return _entries(f)


def _image_file(lower_dirs: list[str], relpath: str, root_fd: int | None = None) -> list[list[str]]:
    if root_fd is not None:
        return _container_file(root_fd, relpath)
    for directory in reversed(lower_dirs):
        path = os.path.join(directory, relpath)
        # Refuse symlinks: a hostile image could point /etc/passwd at a host file.
        if os.path.islink(path):
            return []
        if os.path.isfile(path):
            with open(path, errors="replace") as f:
                return _entries(f)
    return []


def resolve_user(lower_dirs: list[str], spec: str, root_fd: int | None = None) -> User:
    """uid/gid/home/supplementary groups for ``spec`` ("", "name", "uid", "name:group", "uid:gid"), from the
    image's layers or, given ``root_fd`` (a running container's root directory), from the container's files."""
    user_part, _sep, group_part = (spec or "").partition(":")
    passwd = _image_file(lower_dirs, "etc/passwd", root_fd)
    groups = _image_file(lower_dirs, "etc/group", root_fd)
    result = User(home="/root" if not user_part or user_part in ("0", "root") else "/")

    if user_part:
        entry = next((e for e in passwd if len(e) >= 7 and (e[0] == user_part or e[2] == user_part)), None)
        if entry:
            result.uid, result.gid, result.home = int(entry[2]), int(entry[3]), entry[5] or "/"
        elif user_part.isdigit():
            result.uid = int(user_part)
        else:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
    if group_part:
        entry = next((e for e in groups if len(e) >= 3 and (e[0] == group_part or e[2] == group_part)), None)
        if entry:
            result.gid = int(entry[2])
        elif group_part.isdigit():
            result.gid = int(group_part)
        else:
            raise InvalidArgument(f"unable to find group {group_part}: no matching entries in group file")
    user_name = next((e[0] for e in passwd if len(e) >= 3 and e[2] == str(result.uid)), None)
    if user_name and not group_part:
        result.additional_gids = sorted(
            {int(e[2]) for e in groups if len(e) >= 4 and user_name in e[3].split(",") and e[2].isdigit()}
            - {result.gid})
    return result
