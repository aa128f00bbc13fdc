"""The bytes a directory tree holds on disk (``system df``, volume prune): a basics helper, so runtime/ and
system/ both measure the same way without one importing the other.
"""

from __future__ import annotations

import os


def tree_size(path: str) -> int:
    """Bytes of the regular files (and symlink targets' names) under ``path``, hardlinks counted once."""
    total, seen = 0, set()
    stack = [path]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
