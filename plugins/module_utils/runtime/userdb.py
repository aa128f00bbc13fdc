"""Resolve Docker's ``--user user[:group]`` against the container's /etc/passwd and /etc/group.

Before a container starts, the files are found in the image's layer directories as overlayfs would show them
(``merged_file``: top layer first, whiteouts and opaque directories honoured) with every symlink resolved by us,
one component at a time, as if the image's root were ``/``: ``/etc -> /tmp/x``, ``/etc -> ../../../x`` and
``/etc/passwd -> /proc/1/root/etc/shadow`` all stay in the image. For an exec in a running container they are
read from the container's own root (users added inside it count, as with Docker), opened with
``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``. No path inside the container is ever followed on the host.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from ..errors import InvalidArgument


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    home: str = "/root"
    additional_gids: list[int] = field(default_factory=list)


def _entries(lines) -> list[list[str]]:
    return [line.rstrip("\n").split(":") for line in lines if line.strip() and not line.startswith("#")]


def _container_file(root_fd: int, relpath: str) -> list[list[str]]:
    from ..linux.safepath import open_in_root

    try:
        fd = open_in_root(root_fd, relpath, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return []
    return _read_regular(fd)


def _read_regular(fd: int) -> list[list[str]]:
    """The entries of the open file ``fd`` (closed here) if it is a regular file: a fifo or device planted as
    /etc/passwd is not read (it could block the engine forever)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return []
    with os.fdopen(fd, errors="replace") as f:
        return _entries(f)


_MAX_LINKS = 40
_OPAQUE_XATTR = "trusted.overlay.opaque"  # image/layers.py marks opaque directories so


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lookup(layers: list[str], parents: list[str], name: str) -> tuple[str, list[str]] | None:
    """``name`` in the merged directory ``parents`` (a real directory in each of ``layers``, top first):
    ("dir", the layers whose directory shows), ("link" | "file", [its layer]) or None (absent, whited out)."""
    dirs: list[str] = []
    for layer in layers:
        path = os.path.join(layer, *parents, name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            break  # a whiteout hides it in every lower layer
        if not stat.S_ISDIR(st.st_mode):
            if not dirs:
                return ("link" if stat.S_ISLNK(st.st_mode) else "file"), [layer]
            break  # a lower non-directory is hidden by the directory above
        dirs.append(layer)
        if _opaque(path):
            break
    return ("dir", dirs) if dirs else None


def merged_file(lower_dirs: list[str], relpath: str) -> str | None:
    """The layer file the image's root shows at ``relpath`` (bottom layer first in ``lower_dirs``), every symlink
    resolved inside the image (``..`` and absolute targets clamped at its root), or None. The path returned
    has only real directories of its layer above it: opening it with O_NOFOLLOW follows nothing."""
    top = list(reversed(lower_dirs))
    pending = [c for c in relpath.split("/") if c not in ("", ".")]
    parents: list[str] = []
    stack = [top]  # the layers of each directory in parents, the root's first
    links = 0
    while pending:
        name = pending.pop(0)
        if name == "..":
            if parents:
                parents.pop()
                stack.pop()
            continue
        found = _lookup(stack[-1], parents, name)
        if found is None:
            return None
        kind, layers = found
        if kind == "dir":
            parents.append(name)
            stack.append(layers)
            continue
        if kind == "link":
            links += 1
            if links > _MAX_LINKS:
                return None
            target = os.readlink(os.path.join(layers[0], *parents, name))
            if target.startswith("/"):
                parents, stack = [], [top]
            pending[:0] = [c for c in target.split("/") if c not in ("", ".")]
            continue
        return os.path.join(layers[0], *parents, name) if not pending else None
    return None  # a directory


def _image_file(lower_dirs: list[str], relpath: str, root_fd: int | None = None) -> list[list[str]]:
    if root_fd is not None:
        return _container_file(root_fd, relpath)
    path = merged_file(lower_dirs, relpath)
    if path is None:
        return []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    return _read_regular(fd)


def resolve_user(lower_dirs: list[str], spec: str, root_fd: int | None = None,
                 group_add: list[str] | None = None) -> User:
    """uid/gid/home/supplementary groups for ``spec`` ("", "name", "uid", "name:group", "uid:gid"), from the
    image's layers or, given ``root_fd`` (a running container's root directory), from the container's files;
    ``group_add`` (HostConfig.GroupAdd) adds groups by name (from the same group file) or number."""
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
    if group_add:
        result.additional_gids = sorted({*result.additional_gids, *_group_ids(groups, group_add)})
    return result


_MAX_ID = 2**31 - 1  # moby/sys/user's maxID


def _group_ids(groups: list[list[str]], wanted: list[str]) -> list[int]:
    """Docker's GetAdditionalGroups: a name found in the group file, else a number taken as it is."""
    ids = []
    for item in wanted:
        entry = next((e for e in groups if len(e) >= 3 and e[0] == item and e[2].isdigit()), None)
        if entry:
            ids.append(int(entry[2]))
        elif item.isdigit():
            if int(item) > _MAX_ID:
                raise InvalidArgument(f"Invalid group id {item}")
            ids.append(int(item))
        else:
            raise InvalidArgument(f"Unable to find group {item}: no matching entries in group file")
    return ids
