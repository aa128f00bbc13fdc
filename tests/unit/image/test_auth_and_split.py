"""Auth file handling, tar-split records (exact layer rebuild), the TTY progress display, views."""

from __future__ import annotations

import base64
import io
import json
import os
import stat

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.image import auth
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer

from tests.fixtures.images import File, build_tar


def test_auth_file_round_trip(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.AUTH_FILE_ENV, raising=False)
    config = EngineConfig(root=str(tmp_path / "root"))
    path = auth.auth_file_path(config)
    assert path == str(tmp_path / "root" / "auth.json")
    auth.store_credentials(path, "https://reg.example:5000/v2/", "bob", "pw:with:colons")
    auth.store_credentials(path, "docker.io", "hub", "hubpw")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        data = json.load(f)
    assert set(data["auths"]) == {"reg.example:5000", auth.DOCKER_HUB_KEY}
    assert base64.b64decode(data["auths"]["reg.example:5000"]["auth"]) == b"bob:pw:with:colons"
    creds = auth.credentials_for(config)
    assert creds("reg.example:5000") == ("bob", "pw:with:colons")
    assert creds("registry-1.docker.io") == ("hub", "hubpw")
    assert creds("other:1") is None
    assert auth.remove_credentials(path, "reg.example:5000")
    assert not auth.remove_credentials(path, "reg.example:5000")
    # Other keys in the file (Docker's credHelpers, ...) survive our rewrites.
    with open(path) as f:
        data = json.load(f)
    data["credHelpers"] = {"x": "y"}
    with open(path, "w") as f:
        json.dump(data, f)
    auth.store_credentials(path, "a:1", "u", "p")
    with open(path) as f:
        assert json.load(f)["credHelpers"] == {"x": "y"}
    monkeypatch.setenv(auth.AUTH_FILE_ENV, str(tmp_path / "elsewhere.json"))
    assert auth.auth_file_path(config) == str(tmp_path / "elsewhere.json")
    with open(path, "w") as f:
        f.write("{not json")
    with pytest.raises(InvalidArgument):
        auth.lookup(path, "a:1")


def test_unpack_without_diff_id_computes_it(tmp_path):
    raw = build_tar([File("f", "data")])
    (tmp_path / "l").mkdir()
    stats = unpack_layer(io.BytesIO(raw), str(tmp_path / "l"))
    import hashlib

    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_tty_progress_redraws_in_place():
    from ansible_collections.pycontainer.engine.plugins.module_utils.cli.image_commands import TtyProgress

    buf = io.StringIO()
    tty = TtyProgress(buf)
    tty.line("latest: Pulling from library/busybox")
    tty.layer("aaaaaaaaaaaa", "Pulling fs layer", 0, 100)
    tty.layer("bbbbbbbbbbbb", "Already exists", 0, None)
    tty.layer("aaaaaaaaaaaa", "Pull complete", 0, None)
    tty.line("aaaaaaaaaaaa: Pull complete")  # the plain line is not repeated
    text = buf.getvalue()
    assert text.startswith("latest: Pulling from library/busybox\n")
    assert "\x1b[2A" in text and text.count("aaaaaaaaaaaa: Pull complete") == 1
    tty.last = 0
    tty.layer("aaaaaaaaaaaa", "Downloading", 50, 100)
    assert "[========================>" in buf.getvalue() and "50B/100B" in buf.getvalue()


def test_image_rows_for_digest_only_and_dangling():
    from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageRecord
    from ansible_collections.pycontainer.engine.plugins.module_utils.system.views import history_row, image_rows

    rec = ImageRecord(id="sha256:" + "a" * 64, repo_tags=[], repo_digests=["busybox@sha256:" + "b" * 64],
                      created="2024-01-01T00:00:00Z", size=1000, config={}, diff_ids=[])
    (row,) = image_rows(rec)
    assert (row["Repository"], row["Tag"], row["Digest"]) == ("busybox", "<none>", "sha256:" + "b" * 64)
    rec.repo_digests = []
    (row,) = image_rows(rec)
    assert (row["Repository"], row["Tag"], row["Digest"]) == ("<none>", "<none>", "<none>")
    row = history_row({"id": rec.id, "created": "2024-01-01T00:00:00Z", "created_by": "x" * 60, "size": 2048,
                       "comment": ""})
    assert row["ID"] == "a" * 12 and row["CreatedBy"].endswith("…") and len(row["CreatedBy"]) == 45
    assert row["Size"] == "2.05kB"


def test_docker_archive_helpers(tmp_path):
    from ansible_collections.pycontainer.engine.plugins.module_utils.image.archive import apply_changes

    config = apply_changes({}, ["CMD echo hi", 'ENTRYPOINT ["/x"]', "ENV A=1", "ENV A=2", "WORKDIR /w",
                                "USER 1:1", "LABEL a=b", "EXPOSE 80 53/udp", "VOLUME /data"])
    assert config == {"Cmd": ["/bin/sh", "-c", "echo hi"], "Entrypoint": ["/x"], "Env": ["A=2"],
                      "WorkingDir": "/w", "User": "1:1", "Labels": {"a": "b"},
                      "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}}}
    with pytest.raises(InvalidArgument):
        apply_changes({}, ["RUN rm -rf /"])
