"""What a layer may expand to: sparse members, gzip/zstd bombs, hard links (LayerBudget in streams.py).

The hostile tars are real: GNU tar writes the sparse ones from a sparse file (a few KB of tar for a file of
any size), the bombs are real gzip/zstd streams of zeros.
"""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.image.layers import unpack_layer
from ansible_collections.pycontainer.engine.plugins.module_utils.image.streams import LayerBudget, LayerTooLarge

from tests.fixtures.images import File, Hardlink, build_tar

MiB = 1 << 20


def sparse_tar(tmp_path, size: int, fmt: str, payload: bytes = b"payload", at: int = 50_000) -> bytes:
    """A tar holding one sparse file of ``size`` bytes (``payload`` at ``at``), as GNU tar writes it."""
    src = tmp_path / f"src-{fmt}-{size}"
    src.mkdir()
    with open(src / "big", "wb") as f:
        f.truncate(size)
        f.seek(at)
        f.write(payload)
    out = tmp_path / f"sparse-{fmt}-{size}.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", str(out), "big"], check=True)
    return out.read_bytes()


def unpack(tmp_path, blob: bytes, name: str = "dest", **kw):
    dest = tmp_path / name
    dest.mkdir()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    return dest, unpack_layer(io.BytesIO(blob), str(dest), blob_digest=digest, blob_size=len(blob), **kw)


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_sparse_member_claiming_100_gib_is_refused_before_writing(tmp_path, fmt):
    tar = sparse_tar(tmp_path, 100 << 30, fmt)
    assert len(tar) <= 20_000  # a few KB of tar for 100 GiB of file
    with pytest.raises(LayerTooLarge, match="allowed"):
        unpack(tmp_path, tar)  # the defaults: 64 GiB, and 1100:1 past 1 GiB
    # Refused on the member's announced size: nothing of it was written.
    assert not os.path.exists(tmp_path / "dest" / "big")


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_sparse_member_within_bounds_unpacks_dense_and_counts(tmp_path, fmt):
    tar = sparse_tar(tmp_path, 3 * MiB, fmt, b"hello", at=2 * MiB)
    dest, stats = unpack(tmp_path, tar, budget=LayerBudget(4 * MiB))
    with open(dest / "big", "rb") as f:
        data = f.read()
    assert len(data) == 3 * MiB and data[2 * MiB : 2 * MiB + 5] == b"hello" and data.count(0) == 3 * MiB - 5
    assert stats.size == 3 * MiB and stats.files == 1
    # The same file under a smaller bound: its holes count (it is written dense).
    with pytest.raises(LayerTooLarge):
        unpack(tmp_path, tar, "small", budget=LayerBudget(2 * MiB))


def test_bound_counted_as_written_across_files(tmp_path):
    tar = build_tar([File(f"f{i}", os.urandom(MiB)) for i in range(5)])
    with pytest.raises(LayerTooLarge, match="allowed"):
        unpack(tmp_path, tar, budget=LayerBudget(3 * MiB + 4096))
    written = sum(os.path.getsize(tmp_path / "dest" / n) for n in os.listdir(tmp_path / "dest"))
    assert written <= 3 * MiB + 4096  # stopped at the bound, not after the layer


def test_hard_links_do_not_count_twice(tmp_path):
    entries = [File("data", os.urandom(2 * MiB))] + [Hardlink(f"link{i}", "data") for i in range(8)]
    dest, stats = unpack(tmp_path, build_tar(entries), budget=LayerBudget(3 * MiB))
    assert os.stat(dest / "link7").st_ino == os.stat(dest / "data").st_ino
    assert stats.size == 2 * MiB


def _zeros_tar(size: int, files: int = 1) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            info = tarfile.TarInfo(f"zeros{i}")
            info.size = size // files
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    return buf.getvalue()


def test_gzip_bomb_bounded_by_max_layer_size(tmp_path):
    blob = gzip.compress(_zeros_tar(64 * MiB, files=16), 9)
    assert len(blob) < 100_000
    budget = LayerBudget.for_blob(8 * MiB, len(blob))
    with pytest.raises(LayerTooLarge, match="max_layer_size"):
        unpack(tmp_path, blob, budget=budget)
    assert budget.tar_bytes <= 8 * MiB + MiB and budget.written <= 8 * MiB
    assert sum(os.path.getsize(tmp_path / "dest" / n) for n in os.listdir(tmp_path / "dest")) <= 8 * MiB


def test_single_member_bomb_refused_on_its_header(tmp_path):
    blob = gzip.compress(_zeros_tar(64 * MiB), 9)
    with pytest.raises(LayerTooLarge, match="zeros0"):
        unpack(tmp_path, blob, budget=LayerBudget.for_blob(8 * MiB, len(blob)))
    assert os.listdir(tmp_path / "dest") == []


def test_zstd_bomb_bounded_by_ratio(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    blob = zstandard.ZstdCompressor(level=19).compress(_zeros_tar(64 * MiB))
    assert len(blob) * 1100 < 16 * MiB  # far past what gzip could do
    budget = LayerBudget.for_blob(64 << 30, len(blob), floor=MiB)
    with pytest.raises(LayerTooLarge, match="1100:1"):
        unpack(tmp_path, blob, budget=budget)
    assert budget.tar_bytes <= budget.limit + MiB  # stopped within a chunk of the bound


def test_ratio_floor_keeps_small_honest_layers(tmp_path):
    # A few MB of zeros is a ratio far past 1100:1 in zstd, but under the floor: accepted.
    zstandard = pytest.importorskip("zstandard")
    blob = zstandard.ZstdCompressor(level=19).compress(_zeros_tar(4 * MiB))
    dest, _stats = unpack(tmp_path, blob, budget=LayerBudget.for_blob(64 << 30, len(blob), floor=8 * MiB))
    assert os.path.getsize(dest / "zeros0") == 4 * MiB


def test_default_budget_from_blob_size():
    assert LayerBudget.for_blob(None, None).limit == 64 << 30
    assert LayerBudget.for_blob(None, 10_000).limit == 1 << 30  # the floor
    assert LayerBudget.for_blob(None, 10 << 20).limit == 1100 * (10 << 20)
    assert LayerBudget.for_blob(None, 100 << 20).limit == 64 << 30  # max_layer_size wins when smaller
    assert LayerBudget.for_blob(1 << 30, 10 << 20).limit == 1 << 30
