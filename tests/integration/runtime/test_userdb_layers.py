"""userdb.merged_file over whiteouts and opaque directories (mknod, trusted.* xattrs: needs root).

Layer directories are built here in the engine's unpacked form (whiteouts are 0/0 character devices, opaque
directories carry ``trusted.overlay.opaque=y``), next to a "host" directory the image's links aim at.
"""

from __future__ import annotations

import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.userdb import merged_file, resolve_user

HOST_LINE = "mallory:x:4242:4242::/host:/bin/sh\n"
IMAGE_LINE = "mallory:x:1111:1111::/inside:/bin/sh\n"


def write(path, text: str = "") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.fixture
def box(tmp_path):
    """(bottom layer, top layer, host dir): the host dir holds a passwd naming mallory 4242."""
    bottom, top, host = (str(tmp_path / name) for name in ("bottom", "top", "host"))
    for d in (bottom, top, host):
        os.mkdir(d)
    write(f"{host}/passwd", HOST_LINE)
    return bottom, top, host


def uid(layers: list[str]) -> int:
    return resolve_user(layers, "mallory").uid


def test_whiteouts_and_opaque_directories(box):
    bottom, top, _host = box
    write(f"{bottom}/etc/passwd", IMAGE_LINE)
    os.makedirs(f"{top}/etc")
    os.mknod(f"{top}/etc/passwd", 0o020000, os.makedev(0, 0))  # whiteout
    assert merged_file([bottom, top], "etc/passwd") is None
    os.unlink(f"{top}/etc/passwd")
    assert uid([bottom, top]) == 1111
    os.setxattr(f"{top}/etc", "trusted.overlay.opaque", b"y")
    assert merged_file([bottom, top], "etc/passwd") is None
