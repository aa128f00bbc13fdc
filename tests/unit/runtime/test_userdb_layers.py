"""userdb.merged_file: the image's /etc/passwd as overlayfs shows it, every symlink resolved inside the image.

Layer directories are built here in the engine's unpacked form (whiteouts are 0/0 character devices, opaque
directories carry ``trusted.overlay.opaque=y``), next to a "host" directory the image's links aim at.
"""

from __future__ import annotations

import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.runtime.userdb import merged_file, resolve_user

from tests.fixtures.layer_dirs import IMAGE_LINE, userdb_box, write


@pytest.fixture
def box(tmp_path):
    return userdb_box(tmp_path)


def uid(layers: list[str]) -> int:
    return resolve_user(layers, "mallory").uid


def test_plain_file_and_top_layer_wins(box):
    bottom, top, _host = box
    write(f"{bottom}/etc/passwd", "mallory:x:1:1::/:/bin/sh\n")
    assert uid([bottom]) == 1
    write(f"{top}/etc/passwd", IMAGE_LINE)
    assert merged_file([bottom, top], "etc/passwd") == f"{top}/etc/passwd"
    assert uid([bottom, top]) == 1111


@pytest.mark.parametrize("link", ["{host}", "../../../../../../../..{host}", "/proc/1/root{host}"])
def test_symlinked_etc_is_resolved_inside_the_image(box, link):
    bottom, _top, host = box
    os.symlink(link.format(host=host), f"{bottom}/etc")
    with pytest.raises(InvalidArgument, match="unable to find user mallory"):
        uid([bottom])  # the host's file is never read
    if not link.startswith("/proc"):
        write(f"{bottom}{host}/passwd", IMAGE_LINE)  # the image's own copy of that path counts
        assert uid([bottom]) == 1111


def test_symlinked_passwd_and_a_chain_of_links(box):
    bottom, top, host = box
    write(f"{bottom}{host}/passwd", IMAGE_LINE)
    os.makedirs(f"{top}/etc")
    os.symlink("../a/b", f"{top}/etc/passwd")
    os.makedirs(f"{top}/a")
    os.symlink(f"/../../..{host}/passwd", f"{top}/a/b")
    assert merged_file([bottom, top], "etc/passwd") == f"{bottom}{host}/passwd"
    assert uid([bottom, top]) == 1111


def test_a_loop_and_a_directory_are_not_files(box):
    bottom, _top, _host = box
    os.makedirs(f"{bottom}/etc")
    os.symlink("passwd", f"{bottom}/etc/passwd")
    assert merged_file([bottom], "etc/passwd") is None
    assert merged_file([bottom], "etc") is None


def test_a_symlink_in_an_upper_layer_hides_a_lower_directory(box):
    bottom, top, host = box
    write(f"{bottom}/etc/passwd", "mallory:x:1:1::/:/bin/sh\n")
    os.symlink(host, f"{top}/etc")  # FROM an image with /etc, then `ln -s <host dir> /etc`
    write(f"{top}{host}/passwd", IMAGE_LINE)
    assert uid([bottom, top]) == 1111


def test_a_fifo_is_not_read(box):
    bottom, _top, _host = box
    os.makedirs(f"{bottom}/etc")
    os.mkfifo(f"{bottom}/etc/passwd")
    assert resolve_user([bottom], "1000").uid == 1000  # no hang, no entries
