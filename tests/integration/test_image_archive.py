"""docker-archive save/load round trips with skopeo (both directions), push (skip, mount, upload) and
the CLI's image verbs against the real registry."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine

from tests.fixtures.images import Dir, File, Hardlink, Symlink, Whiteout, _skopeo_policy_args

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(engine_config):
    return Engine(engine_config)


def skopeo(*args: str) -> None:
    cmd = ["skopeo", *_skopeo_policy_args(), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"


LAYERS = [
    [Dir("etc"), File("etc/a", "a" * 3000), Hardlink("etc/a2", "etc/a"), Symlink("etc/s", "a"),
     Dir("var"), File("var/x", "x")],
    [Whiteout("var/x"), File("etc/b", "b", 0o600, uid=5, gid=6)],
]


def test_save_then_skopeo_reads_it_and_load_round_trips(engine, oci_builder, tmp_path, registry):
    ref, built = oci_builder.push("arch/img:v1", LAYERS, {"config": {"Cmd": ["sh"]}})
    record = engine.images.pull(ref)
    engine.images.tag(ref, "arch-local:v2")
    archive = str(tmp_path / "out.tar")
    engine.images.save_to_file([ref, "arch-local:v2"], archive)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [ref, "arch-local:v2"]
    assert manifest[0]["Config"] == record.id[7:] + ".json"
    # skopeo reads our archive and pushes it; pulled back, it is the very same image.
    skopeo("copy", "--quiet", "--dest-tls-verify=false", f"docker-archive:{archive}:arch-local:v2",
           f"docker://{registry.host}/arch/from-skopeo:v1")
    copy = engine.images.pull(f"{registry.host}/arch/from-skopeo:v1")
    assert copy.id == record.id and copy.diff_ids == built.images[0].diff_ids
    # Load into an empty store: same ID, same tags, same layer contents.
    other = Engine(type(engine.config)(root=str(tmp_path / "root2")))
    loaded = other.images.load(path=archive)
    assert [(item.image_id, item.tags) for item in loaded] == [(record.id, [ref, "arch-local:v2"])]
    low, up = other.images.store.layer_dirs(other.images.inspect("arch-local:v2"))
    assert os.stat(f"{low}/etc/a").st_ino == os.stat(f"{low}/etc/a2").st_ino
    assert os.stat(f"{up}/var/x").st_rdev == 0 and os.stat(f"{up}/etc/b").st_uid == 5
    assert ("load", f"{ref},arch-local:v2") in [(e["Action"], e["Actor"]["Attributes"]["name"])
                                                for e in other.events.read()]
    assert any(e["Action"] == "save" for e in engine.events.read())
    # Loading again changes nothing.
    assert [item.changed for item in other.images.load(path=archive)] == [False]


def test_load_an_archive_written_by_skopeo(engine, oci_builder, tmp_path):
    ref, built = oci_builder.push("arch/sk:v1", LAYERS, {}, fmt="v2s2")
    archive = str(tmp_path / "skopeo.tar")
    skopeo("copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"docker-archive:{archive}:sk:v1")
    loaded = engine.images.load(path=archive)
    assert loaded[0].image_id == built.images[0].config_digest and loaded[0].tags == ["sk:v1"]
    record = engine.images.inspect("sk:v1")
    assert record.diff_ids == built.images[0].diff_ids
    # gzip'd archive through a stream (stdin)
    import gzip
    import io

    with open(archive, "rb") as f:
        data = gzip.compress(f.read(), 1)
    engine.images.remove("sk:v1")
    loaded = engine.images.load(stream=io.BytesIO(data))
    assert loaded[0].image_id == record.id


def test_load_rejects_a_tampered_layer(engine, oci_builder, tmp_path):
    ref, _layout = oci_builder.push("arch/bad:v1", [[File("f", "0123456789" * 100)]], {})
    engine.images.pull(ref)
    archive = str(tmp_path / "a.tar")
    engine.images.save_to_file([ref], archive)
    with open(archive, "rb") as f:
        data = bytearray(f.read())
    pos = data.find(b"0123456789")
    data[pos] = ord("X")
    with open(archive, "wb") as f:
        f.write(data)
    other = Engine(type(engine.config)(root=str(tmp_path / "root2")))
    from ansible_collections.pycontainer.engine.plugins.module_utils.errors import IntegrityError

    with pytest.raises(IntegrityError):
        other.images.load(path=archive)
    assert other.images.list() == []
    assert [n for n in os.listdir(other.images.store.layers_dir) if "." not in n] == []


def test_push_skips_mounts_and_uploads(engine, oci_builder, registry, tmp_path):
    ref, built = oci_builder.push("push/src:v1", LAYERS, {})
    record = engine.images.pull(ref)
    lines: list[str] = []
    # Same registry, another repository: blobs are mounted; same manifest bytes, so the same digest.
    target = f"{registry.host}/push/dst:v1"
    engine.images.tag(ref, target)
    digest = engine.images.push(target, progress=lines.append)
    assert lines[0] == f"The push refers to repository [{registry.host}/push/dst]"
    assert sum("Mounted from push/src" in line for line in lines) == 2
    assert digest == built.top_digest and lines[-1].startswith(f"v1: digest: {digest} size: ")
    lines.clear()
    engine.images.push(target, progress=lines.append)
    assert sum("Layer already exists" in line for line in lines) == 2
    # A loaded image has no registry blobs: its layers are rebuilt, compressed and uploaded.
    archive = str(tmp_path / "a.tar")
    engine.images.save_to_file([ref], archive)
    fresh = Engine(type(engine.config)(root=str(tmp_path / "root2")))
    fresh.images.load(path=archive)
    fresh.images.tag(ref, f"{registry.host}/push/uploaded:v1")
    lines.clear()
    fresh.images.push(f"{registry.host}/push/uploaded:v1", progress=lines.append)
    assert sum(line.endswith(": Pushed") for line in lines) == 2
    # Pulled into a third store, it is the same image.
    third = Engine(type(engine.config)(root=str(tmp_path / "root3")))
    again = third.images.pull(f"{registry.host}/push/uploaded:v1")
    assert again.id == record.id
    assert any(e["Action"] == "push" for e in fresh.events.read())


def test_cli_image_verbs(cli, busybox_image, oci_builder, tmp_path):
    ref, _layout = oci_builder.push("cli/img:v1", [[File("x", "x")]], {"config": {"Labels": {"team": "a"}}})
    proc = cli("pull", "-q", "busybox", check=True)  # via the mirror
    assert proc.stdout == "docker.io/library/busybox:latest\n"
    proc = cli("pull", ref, check=True)
    assert "v1: Pulling from cli/img" in proc.stdout and "\x1b[" not in proc.stdout  # not a TTY: plain lines
    cli("tag", "busybox", "bb:mine", check=True)
    table = cli("images", check=True).stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert len(table) == 4
    rows = [json.loads(line) for line in cli("images", "--format", "json", check=True).stdout.splitlines()]
    assert {(r["Repository"], r["Tag"]) for r in rows} == {("busybox", "latest"), ("bb", "mine"),
                                                           (ref.rsplit(":", 1)[0], "v1")}
    assert cli("images", "--filter", "label=team=a", "--format", "{{.Repository}}").stdout.strip() == \
        ref.rsplit(":", 1)[0]
    assert cli("images", "--filter", "reference=bb*", "--format", "{{.Repository}}:{{.Tag}}").stdout == "bb:mine\n"
    assert cli("images", "--filter", "dangling=true", "-q").stdout == ""
    assert cli("images", "bb", "--format", "{{.Tag}}").stdout.strip() == "mine"
    assert "DIGEST" in cli("images", "--digests").stdout.splitlines()[0]
    hist = cli("history", "bb:mine", check=True).stdout.splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and len(hist) == 2
    doc = json.loads(cli("image", "inspect", "bb:mine", check=True).stdout)[0]
    assert {"Id", "RepoTags", "RepoDigests", "Created", "Architecture", "Os", "Size", "Config", "RootFS",
            "History"} <= set(doc)
    out = cli("rmi", "bb:mine", check=True).stdout
    assert out == "Untagged: bb:mine\n"
    proc = cli("rmi", "nope:1")
    assert proc.returncode == 1 and "No such image: nope:1" in proc.stderr
    proc = cli("image", "prune", input="n\n")
    assert proc.returncode == 0 and "Are you sure" in proc.stdout and "Total" not in proc.stdout
    archive = str(tmp_path / "bb.tar")
    cli("save", "-o", archive, "busybox", check=True)
    assert cli("rmi", "busybox", check=True).stdout.startswith("Untagged: busybox:latest\n")
    assert cli("load", "-i", archive, check=True).stdout == "Loaded image: busybox:latest\n"
    proc = cli("image", "prune", "-a", "-f", check=True)
    assert proc.stdout.startswith("Deleted Images:\n") and "Total reclaimed space: " in proc.stdout
    assert cli("images", "-q").stdout == ""
    proc = cli("import", "-", "imp:1", input="")  # not a tar
    assert proc.returncode == 125 and "Traceback" not in proc.stderr
    assert cli("pull", "Bad//Ref").returncode == 125
