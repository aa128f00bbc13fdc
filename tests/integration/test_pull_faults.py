"""Faults during pull: a registry that drops the connection mid-blob, answers 500, sends a truncated body;
``kill -9`` of the CLI mid-blob and after the download but before the commit; ENOSPC while unpacking.

After each: nothing leaks (work dirs once the next pull swept them, held locks, partial layers), the store
verifies (ImageStore.verify: blobs match digests, layers their diff_ids, images have all they name), what was
committed before is still there, and the next pull succeeds. The registry is the hostile fixture
(tests/fixtures/hostile_registry.py) serving real images built by ``oci_builder``. The outcomes are printed
as a table at the end of the module.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import time

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import EngineError, RegistryError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.pull import pull
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import parse_reference
from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore

from tests.fixtures.hostile_registry import Fault, FaultTable, HostileRegistry, store_leftovers
from tests.fixtures.images import File
from tests.integration.helpers import PYCONTAINER, write_engine_config

pytestmark = pytest.mark.integration

TABLE = FaultTable("faults during pull (tests/integration/test_pull_faults.py)")


@pytest.fixture(scope="module", autouse=True)
def fault_table(request):
    yield TABLE
    TABLE.print_at_module_end(request)


@pytest.fixture
def images(oci_builder):
    """A small image pulled first (what must survive), and a two-layer image the faults hit."""
    base = oci_builder.build([[File("etc/base", "base\n")]], {})
    target = oci_builder.build(
        [[File("etc/first", "first\n")], [File("data/big", os.urandom(3 << 20))]], {}, compression="none")
    return {"faults/base": base, "faults/img": target}


@pytest.fixture
def reg(images):
    server = HostileRegistry(images)
    try:
        yield server
    finally:
        server.close()


def big_layer(images) -> str:
    return images["faults/img"].images[0].layer_digests[1]


def do_pull(engine_config, ref):
    return pull(ImageStore(engine_config.paths.images), parse_reference(ref), engine_config)


def pull_base(engine_config, reg, images) -> str:
    record = do_pull(engine_config, reg.ref("faults/base"))
    assert record.id == images["faults/base"].images[0].config_digest
    return record.id


def assert_sound(engine_config, reg, images, base_id: str, tmp_must_be_empty: bool = True) -> None:
    """Committed content intact, nothing leaked."""
    store = ImageStore(engine_config.paths.images)
    assert store.lookup(reg.ref("faults/base")).id == base_id
    assert store_leftovers(store.root, tmp_must_be_empty) == []


def assert_next_pull_succeeds(engine_config, reg, images, base_id: str) -> None:
    reg.faults.clear()
    record = do_pull(engine_config, reg.ref("faults/img"))
    assert record.id == images["faults/img"].images[0].config_digest
    store = ImageStore(engine_config.paths.images)
    with open(os.path.join(store.layer_dirs(record)[1], "data/big"), "rb") as f:
        assert len(f.read()) == 3 << 20
    assert_sound(engine_config, reg, images, base_id)


# -- the registry misbehaves -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop", "truncate", "status"])
def test_transient_fault_mid_blob_is_retried(engine_config, reg, images, kind):
    """Once: a dropped connection (Content-Length, half the body), a close-delimited body cut in half, a 500.
    The layer is fetched again and the pull completes."""
    base_id = pull_base(engine_config, reg, images)
    reg.faults.append(Fault(kind, match=big_layer(images), times=1))
    record = do_pull(engine_config, reg.ref("faults/img"))
    assert record.id == images["faults/img"].images[0].config_digest
    assert len(reg.requests_to(big_layer(images))) == 2
    assert_sound(engine_config, reg, images, base_id)
    TABLE.record(f"blob: {kind} once", "retried, pull completes", "verifies; base image intact")


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_persistent_fault_mid_blob_fails_cleanly(engine_config, reg, images, kind):
    base_id = pull_base(engine_config, reg, images)
    reg.faults.append(Fault(kind, match=big_layer(images)))
    with pytest.raises(RegistryError):
        do_pull(engine_config, reg.ref("faults/img"))
    store = ImageStore(engine_config.paths.images)
    assert not store.has_layer(images["faults/img"].images[0].diff_ids[1])
    with pytest.raises(EngineError):
        store.lookup(reg.ref("faults/img"))
    assert_sound(engine_config, reg, images, base_id)
    assert_next_pull_succeeds(engine_config, reg, images, base_id)
    TABLE.record(f"blob: {kind} every time", "RegistryError after 3 attempts", "nothing half-stored; next ok")


def test_persistent_500_on_manifest_fails_cleanly(engine_config, reg, images):
    base_id = pull_base(engine_config, reg, images)
    reg.faults.append(Fault("status", match="faults/img/manifests/latest", code=500))
    with pytest.raises(RegistryError, match="injected"):
        do_pull(engine_config, reg.ref("faults/img"))
    assert len(reg.requests_to("faults/img/manifests/latest")) == 5  # the first try and 4 retries
    assert_sound(engine_config, reg, images, base_id)
    assert_next_pull_succeeds(engine_config, reg, images, base_id)
    TABLE.record("manifest: 500 every time", "RegistryError after 5 tries", "nothing stored; next ok")


# -- the puller dies -------------------------------------------------------------------------------------


def _cli_pull(engine_root: str, config: str, ref: str) -> subprocess.Popen:
    return subprocess.Popen([PYCONTAINER, "--root", engine_root, "--config", config, "pull", ref],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_work_file(store: ImageStore, name: str, size: int, proc: subprocess.Popen) -> None:
    """Until the killed-to-be pull has written ``size`` bytes of ``name`` in its work dir."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        for path in glob.glob(os.path.join(store.tmp_dir, "pull-*", name)):
            if os.path.getsize(path) >= size:
                return
        time.sleep(0.01)
    raise AssertionError(f"the pull never wrote {size} bytes of {name} (exit {proc.poll()})")


@pytest.mark.parametrize("moment", ["mid-blob", "after-download-before-commit"])
def test_kill_9_during_pull(engine_root, engine_config, registry, reg, images, tmp_path, moment):
    """``kill -9`` of the CLI while a blob stalls half-way, or once the whole blob is in and unpacked but the
    body has not ended (no Content-Length, connection held open): the layer is not committed yet."""
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    base_id = pull_base(engine_config, reg, images)
    layer = big_layer(images)
    if moment == "mid-blob":
        reg.faults.append(Fault("stall", match=layer, at=2 << 20, times=1))
    else:
        reg.faults.append(Fault("stall_end", match=layer, times=1))
    proc = _cli_pull(engine_root, config, reg.ref("faults/img"))
    try:
        reg.wait_event("stalled")
        store = ImageStore(engine_config.paths.images)
        # 2 MiB of tar: some of data/big is written; all of it once the whole blob is in.
        _wait_for_work_file(store, "data/big", (3 << 20) if moment != "mid-blob" else 1, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reg.release()
    assert proc.returncode == -signal.SIGKILL
    store = ImageStore(engine_config.paths.images)
    assert not store.has_layer(images["faults/img"].images[0].diff_ids[1])
    with pytest.raises(EngineError):
        store.lookup(reg.ref("faults/img"))
    # The dead pull's work dir is still there (nobody swept yet) but its lock died with it. A kill that
    # lands inside an atomic write (the small layer's metadata, being fsynced) leaves its temp file too.
    assert glob.glob(os.path.join(store.tmp_dir, "pull-*"))
    stray = [p for p in store_leftovers(store.root, tmp_must_be_empty=False) if p.startswith("stray file")]
    assert [p for p in store_leftovers(store.root, tmp_must_be_empty=False) if p not in stray] == []
    # Such temp files are swept once older than a live write could be: play "a minute later".
    for path in glob.glob(os.path.join(store.layers_dir, ".tmp-*")) + glob.glob(
            os.path.join(store.blobs_dir, "*", ".tmp-*")):
        os.utime(path, (time.time() - 120, time.time() - 120))
    # The next pull (the CLI again) sweeps it all and completes.
    reg.faults.clear()
    done = subprocess.run([PYCONTAINER, "--root", engine_root, "--config", config, "pull", reg.ref("faults/img")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert_sound(engine_config, reg, images, base_id)
    assert store.lookup(reg.ref("faults/img")).id == images["faults/img"].images[0].config_digest
    TABLE.record(f"kill -9 of the CLI {moment}", f"layer not committed, image absent, {len(stray)} temp file(s)",
                 "verifies; next pull sweeps and completes")


# -- the disk fills up -----------------------------------------------------------------------------------


def test_enospc_while_unpacking(engine_root, oci_builder, registry, tmp_path):
    """The engine root is a 20 MiB tmpfs; a 30 MiB layer does not fit."""
    from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig

    base = oci_builder.build([[File("etc/base", "base\n")]], {})
    small = oci_builder.build([[File("etc/small", "small\n")]], {})
    big = oci_builder.build([[File("data/big", os.urandom(30 << 20))]], {}, compression="none")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m,mode=0711", "tmpfs", engine_root], check=True)
    server = HostileRegistry({"enospc/base": base, "enospc/big": big, "enospc/small": small})
    try:
        config = EngineConfig(root=engine_root, blocked_registries=["docker.io"],
                              log_file=str(tmp_path / "engine.log"))
        store = ImageStore(config.paths.images)
        base_id = pull(store, parse_reference(server.ref("enospc/base")), config).id
        with pytest.raises(EngineError, match="no space left") as info:
            pull(store, parse_reference(server.ref("enospc/big")), config)
        assert info.type is EngineError  # a typed engine error, not a raw OSError
        assert store.lookup(server.ref("enospc/base")).id == base_id
        assert store_leftovers(store.root) == []  # the half-unpacked layer went with its work dir
        assert not store.has_layer(big.images[0].diff_ids[0])
        # The CLI says so plainly (exit 125, no traceback).
        cfg = write_engine_config(str(tmp_path / "engine.json"), registry.host)
        proc = subprocess.run([PYCONTAINER, "--root", engine_root, "--config", cfg, "pull", server.ref("enospc/big")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 125 and "no space left" in proc.stderr and "Traceback" not in proc.stderr
        assert store_leftovers(store.root) == []
        # Space is back: the next pull of something that fits succeeds.
        assert pull(store, parse_reference(server.ref("enospc/small")), config).id == small.images[0].config_digest
        assert store.lookup(server.ref("enospc/base")).id == base_id
        assert store_leftovers(store.root) == []
    finally:
        server.close()
        subprocess.run(["umount", engine_root], check=True)
    TABLE.record("ENOSPC unpacking (20 MiB tmpfs root)", "EngineError 'no space left' (CLI: 125)",
                 "work dir gone; base intact; next pull ok")
