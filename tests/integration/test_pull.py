"""Pull from a real registry (docker-registry) populated by a real independent client (skopeo)."""

import glob
import json
import os
import subprocess
import sys

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    ImageNotFound,
    IntegrityError,
    UnsupportedError,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.image import pull as pull_mod
from ansible_collections.pycontainer.engine.plugins.module_utils.image.pull import pull
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import parse_reference
from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore

from tests.fixtures.images import Dir, File, Symlink, Whiteout

pytestmark = pytest.mark.integration


def do_pull(engine_config, ref, **kw):
    lines = []
    store = ImageStore(engine_config.paths.images)
    record = pull(store, parse_reference(ref), engine_config, progress=lines.append, **kw)
    return store, record, lines


@pytest.fixture
def blob_gets(monkeypatch):
    """Counts layer downloads (a spy: the real unpacker still runs)."""
    calls = []
    real = pull_mod.unpack_layer

    def spy(stream, dest, **kw):
        calls.append(kw.get("blob_digest"))
        return real(stream, dest, **kw)

    monkeypatch.setattr(pull_mod, "unpack_layer", spy)
    return calls


def test_pull_busybox_full_reference(engine_config, busybox_image, blob_gets):
    store, record, lines = do_pull(engine_config, busybox_image)
    host = busybox_image.split("/")[0]
    assert lines[0] == "latest: Pulling from library/busybox"
    assert lines[1].endswith(": Pull complete")
    assert lines[2].startswith("Digest: sha256:")
    assert lines[3] == f"Status: Downloaded newer image for {host}/library/busybox:latest"
    assert record.repo_tags == [f"{host}/library/busybox:latest"]
    assert record.repo_digests == [f"{host}/library/busybox@{lines[2][8:]}"]
    assert record.config["config"]["Cmd"] == ["sh"]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in record.config["config"]["Env"]
    assert record.id.startswith("sha256:") and len(record.diff_ids) == 1
    (layer,) = store.layer_dirs(record)
    assert os.path.isabs(layer)
    assert os.path.getsize(os.path.join(layer, "bin/busybox")) == os.path.getsize("/bin/busybox")
    assert os.readlink(os.path.join(layer, "bin/sh")) == "busybox"
    assert oct(os.stat(os.path.join(layer, "tmp")).st_mode & 0o7777) == "0o1777"
    assert record.size >= os.path.getsize("/bin/busybox")
    assert store.lookup(busybox_image).id == record.id
    assert store.lookup(record.id).id == record.id
    assert store.lookup(record.id[7:19]).id == record.id
    assert [r.id for r in store.list()] == [record.id]
    # Nothing left behind in the work area, and the layer metadata sits beside the lowerdir.
    assert os.listdir(os.path.join(engine_config.paths.images, "tmp")) == []
    assert os.path.isfile(layer + ".json") and not os.path.exists(os.path.join(layer, ".json"))
    assert len(blob_gets) == 1


def test_pull_via_mirror_and_repull_is_up_to_date(engine_config, busybox_image, blob_gets):
    store, record, lines = do_pull(engine_config, "busybox")
    assert lines[-1] == "Status: Downloaded newer image for busybox:latest"
    assert record.repo_tags == ["busybox:latest"]
    assert record.repo_digests[0].startswith("busybox@sha256:")
    assert store.lookup("busybox").id == record.id
    assert store.lookup("docker.io/library/busybox:latest").id == record.id
    assert len(blob_gets) == 1

    store, again, lines = do_pull(engine_config, "busybox:latest")
    assert again.id == record.id
    assert lines[1].endswith(": Already exists")
    assert lines[-1] == "Status: Image is up to date for busybox:latest"
    assert len(blob_gets) == 1  # no layer downloaded the second time

    # Pull by digest, then the same image under a second name.
    digest = record.repo_digests[0].split("@")[1]
    _s, by_digest, lines = do_pull(engine_config, f"busybox@{digest}")
    assert by_digest.id == record.id
    assert lines[0] == f"{digest}: Pulling from library/busybox"
    assert store.lookup(f"busybox@{digest}").id == record.id


def test_not_found(engine_config, registry):
    # Only the mirror answers (no internet): its "not found" must win over the upstream's unreachability.
    with pytest.raises(ImageNotFound, match="not found"):
        do_pull(engine_config, "does-not-exist:nope")
    with pytest.raises(ImageNotFound):
        do_pull(engine_config, f"{registry.host}/library/busybox:no-such-tag")
    with pytest.raises(ImageNotFound, match="No such image: busybox:latest"):
        ImageStore(engine_config.paths.images).lookup("busybox")


def test_shared_layer_unpacked_once(engine_config, oci_builder, blob_gets):
    base = [Dir("etc"), File("etc/os-release", "ID=test\n"), Dir("bin"), File("bin/tool", b"\x7fELF", 0o755)]
    ref_a, built_a = oci_builder.push("shared/a:v1", [base, [File("a.txt", "a")]], {})
    ref_b, built_b = oci_builder.push("shared/b:v1", [base, [File("b.txt", "b"), Whiteout("etc/os-release")]], {})
    assert built_a.images[0].diff_ids[0] == built_b.images[0].diff_ids[0]
    store, rec_a, _progress = do_pull(engine_config, ref_a)
    store, rec_b, lines = do_pull(engine_config, ref_b)
    assert lines[1].endswith(": Already exists") and lines[2].endswith(": Pull complete")
    dirs_a, dirs_b = store.layer_dirs(rec_a), store.layer_dirs(rec_b)
    assert dirs_a[0] == dirs_b[0] and dirs_a[1] != dirs_b[1]
    assert len(blob_gets) == 3
    assert sorted(d for d in os.listdir(store.layers_dir) if "." not in d) == sorted(
        {os.path.basename(d) for d in dirs_a + dirs_b}
    )
    assert os.stat(os.path.join(dirs_b[1], "etc/os-release")).st_rdev == 0  # a whiteout
    assert rec_a.size == sum(store.layer_info(d)["size"] for d in rec_a.diff_ids)


@pytest.mark.parametrize("fmt", [None, "v2s2"])
def test_multi_arch_index_picks_host_platform(engine_config, oci_builder, fmt):
    def spec(arch, variant=None):
        config = {"architecture": arch, "os": "linux", "config": {"Cmd": [arch]}}
        if variant:
            config["variant"] = variant
        return {"layers": [[File("arch", arch)]], "config": config}

    specs = [spec("arm64", "v8"), spec("amd64"), spec("arm", "v7"), spec("s390x")]
    ref, _built = oci_builder.push(f"multi/{fmt or 'oci'}:v1", index_of_platforms=specs, fmt=fmt)
    store, record, lines = do_pull(engine_config, ref)
    (layer,) = store.layer_dirs(record)
    with open(os.path.join(layer, "arch")) as f:
        assert f.read() == "amd64"  # the test VM is x86_64
    assert record.config["architecture"] == "amd64"
    # The recorded digest is the index's, as with Docker.
    assert record.repo_digests[0].endswith(lines[-2].split(" ")[1])
    store, arm, _progress = do_pull(engine_config, ref, platform="linux/arm64")
    assert arm.config["architecture"] == "arm64"
    _s, arm7, _progress = do_pull(engine_config, ref, platform="linux/arm/v7")
    assert arm7.config.get("variant") == "v7"
    with pytest.raises(UnsupportedError, match=r"linux/riscv64.*offered: linux/arm64/v8, linux/amd64"):
        do_pull(engine_config, ref, platform="linux/riscv64")


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_compressions(engine_config, oci_builder, compression):
    ref, _layout = oci_builder.push(
        f"comp/{compression}:v1", [[File("hello", "world"), Symlink("s", "hello")]], {}, compression=compression
    )
    store, record, _progress = do_pull(engine_config, ref)
    (layer,) = store.layer_dirs(record)
    with open(os.path.join(layer, "hello")) as f:
        assert f.read() == "world"


def test_docker_schema2_format(engine_config, oci_builder):
    ref, _layout = oci_builder.push("fmt/v2s2:v1", [[File("x", "y")]], {"config": {"Cmd": ["x"]}}, fmt="v2s2")
    _store, record, _progress = do_pull(engine_config, ref)
    assert record.config["config"]["Cmd"] == ["x"]


def test_corrupt_blob_is_rejected_and_nothing_stored(engine_config, oci_builder, registry):
    ref, built = oci_builder.push("corrupt/img:v1", [[File("good", "x" * 5000)], [File("bad", "y" * 5000)]], {})
    bad_digest = built.images[0].layer_digests[1]
    path = os.path.join(
        registry.storage_dir, "docker/registry/v2/blobs/sha256", bad_digest[7:9], bad_digest[7:], "data"
    )
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0x55  # same size, different content
    with open(path, "wb") as f:
        f.write(data)
    store = ImageStore(engine_config.paths.images)
    with pytest.raises(IntegrityError):
        pull(store, parse_reference(ref), engine_config)
    assert store.list() == []
    with pytest.raises(ImageNotFound):
        store.lookup(ref)
    assert not store.has_layer(built.images[0].diff_ids[1])
    assert os.listdir(store.tmp_dir) == []
    if os.path.exists(store.index_path):
        with open(store.index_path) as f:
            assert json.load(f)["images"] == {}


_CONCURRENT = """
import sys
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.image.pull import pull
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import parse_reference
from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore
cfg = EngineConfig(root=sys.argv[1])
rec = pull(ImageStore(cfg.paths.images), parse_reference(sys.argv[2]), cfg)
print(rec.id)
"""


def test_concurrent_pulls_are_consistent(engine_root, oci_builder, busybox_image):
    layers = [[File(f"l{i}/data", os.urandom(300_000))] for i in range(4)]
    ref, built = oci_builder.push("concurrent/img:v1", layers, {})
    refs = [ref, busybox_image] * 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT, engine_root, r],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=os.getcwd(),
        )
        for r in refs
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _out, err in results]
    ids = {out.strip() for out, _err in results}
    assert len(ids) == 2
    store = ImageStore(EngineConfig(root=engine_root).paths.images)
    assert {r.id for r in store.list()} == ids
    assert store.lookup(ref).id == built.images[0].config_digest
    assert os.listdir(store.tmp_dir) == []
    assert len(glob.glob(os.path.join(store.layers_dir, "*.json"))) == 5
    for diff_id in built.images[0].diff_ids:
        assert store.has_layer(diff_id)


def test_killed_pull_leaves_nothing_visible(engine_root, oci_builder):
    import signal
    import time

    big = [[File("big1", os.urandom(24 << 20))], [File("big2", os.urandom(24 << 20))]]
    ref, built = oci_builder.push("killed/img:v1", big, {}, compression="none")
    store = ImageStore(EngineConfig(root=engine_root).paths.images)
    proc = subprocess.Popen([sys.executable, "-c", _CONCURRENT, engine_root, ref], cwd=os.getcwd())
    deadline = time.monotonic() + 30
    # Kill it while it is writing the second layer.
    while time.monotonic() < deadline and proc.poll() is None:
        work = glob.glob(os.path.join(store.tmp_dir, "pull-*", "big2"))
        if work and os.path.getsize(work[0]) > 0:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not work:
        pytest.skip("the pull finished before it could be killed")
    assert store.list() == []
    # Layers download in parallel: the first may or may not be committed; the second was mid-write.
    assert not store.has_layer(built.images[0].diff_ids[1])
    # The next pull sweeps the dead one's work dir and completes.
    record = pull(store, parse_reference(ref), EngineConfig(root=engine_root))
    assert record.id == built.images[0].config_digest
    assert os.listdir(store.tmp_dir) == []


def test_layers_stack_as_overlay_lowerdirs(engine_config, oci_builder, tmp_path):
    """Whiteouts and opaque dirs produced by the unpacker mean what they should to overlayfs."""
    from tests.fixtures.images import Opaque

    base = [Dir("etc"), File("etc/a", "a"), File("etc/b", "b"), Dir("opt"), File("opt/old", "old")]
    top = [Whiteout("etc/a"), Opaque("opt"), Dir("opt"), File("opt/new", "new")]
    ref, _layout = oci_builder.push("overlay/img:v1", [base, top], {})
    store, record, _progress = do_pull(engine_config, ref)
    lower = ":".join(reversed(store.layer_dirs(record)))  # overlayfs wants the top layer first
    merged, upper, work = (tmp_path / n for n in ("m", "u", "w"))
    for d in (merged, upper, work):
        d.mkdir()
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["b"]
        assert sorted(os.listdir(merged / "opt")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_ctrl_c_stops_parallel_downloads_and_cleans_up(engine_root, oci_builder, registry, tmp_path):
    import signal
    import time

    from tests.integration.helpers import PYCONTAINER, write_engine_config

    big = [[File(f"big{i}", os.urandom(16 << 20))] for i in range(3)]
    ref, built = oci_builder.push("sigint/img:v1", big, {}, compression="none")
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    store = ImageStore(EngineConfig(root=engine_root).paths.images)
    proc = subprocess.Popen([PYCONTAINER, "--root", engine_root, "--config", config, "pull", ref],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    started = False
    while time.monotonic() < deadline and proc.poll() is None:
        files = glob.glob(os.path.join(store.tmp_dir, "pull-*", "big*"))
        if files and any(os.path.getsize(f) > 0 for f in files):
            started = True
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    if not started or proc.returncode == 0:
        pytest.skip("the pull finished before it could be interrupted")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert store.list() == []
    assert os.listdir(store.tmp_dir) == []
    # The next pull completes.
    assert pull(store, parse_reference(ref), EngineConfig(root=engine_root)).id == built.images[0].config_digest
