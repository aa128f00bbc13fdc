"""userdb.merged_file over whiteouts and opaque directories (mknod, trusted.* xattrs: needs root).

Layer directories are built here in the engine's unpacked form (whiteouts are 0/0 character devices, opaque
directories carry ``trusted.overlay.opaque=y``), next to a "host" directory the image's links aim at.
"""

from __future__ import annotations

import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.userdb import merged_file, resolve_user

from tests.fixtures.layer_dirs import IMAGE_LINE, userdb_box, write


@pytest.fixture
def box(tmp_path):
    return userdb_box(tmp_path)


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
