"""`system df` numbers against the bytes really on disk and the bytes the images' layers contain."""

from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.system.disk_usage import measure
from ansible_collections.pycontainer.engine.plugins.module_utils.timefmt import human_size

from tests.fixtures.images import Dir, File


def _bytes_on_disk(directory: str) -> int:
    """Bytes of the files and symlinks under ``directory``, each inode once, as find(1) sees them (Docker
    counts a symlink's own size too)."""
    out = subprocess.run(["find", directory, "(", "-type", "f", "-o", "-type", "l", ")", "-printf", "%i %s\\n"],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(size) for size in {line.split()[0]: line.split()[1] for line in out.splitlines()}.values())


def test_df_counts_shared_layers_once_and_matches_the_disk(cli, busybox_image, oci_builder):
    base = [Dir("data"), File("data/base.bin", os.urandom(300_000))]
    ref_a, _layout = oci_builder.push("df/a:v1", [base, [File("a.bin", os.urandom(50_000))]], {})
    ref_b, _layout = oci_builder.push("df/b:v1", [base, [File("b.bin", os.urandom(20_000))]], {})
    for ref in (busybox_image, ref_a, ref_b):
        cli("pull", "-q", ref, check=True)
    cli("run", "--name", "writer", busybox_image, "sh", "-c", "dd if=/dev/zero of=/blob bs=1000 count=123",
        check=True)

    engine = Engine(EngineConfig(root=cli.root))
    usage = measure(engine)
    by_tag = {image.repo_tags[0].split("/", 1)[1] if "/" in image.repo_tags[0] else image.repo_tags[0]: image
              for image in usage.images}
    a, b = by_tag["df/a:v1"], by_tag["df/b:v1"]
    assert (a.size, a.shared_size, a.unique_size) == (350_000, 300_000, 50_000)
    assert (b.size, b.shared_size, b.unique_size) == (320_000, 300_000, 20_000)
    busybox = next(i for i in usage.images if i.containers)

    layers_dir = os.path.join(cli.root, "images", "layers")
    on_disk = sum(_bytes_on_disk(os.path.join(layers_dir, d)) for d in os.listdir(layers_dir)
                  if os.path.isdir(os.path.join(layers_dir, d)))
    summary = usage.summary()
    assert summary["Images"] == {"TotalCount": 3, "Active": 1, "Size": on_disk,
                                 "Reclaimable": on_disk - busybox.unique_size}
    assert on_disk == 370_000 + busybox.size
    (writer,) = usage.containers
    assert writer.size_rw == 123_000 == _bytes_on_disk(os.path.join(cli.root, "containers", writer.id, "upper"))
    assert summary["Containers"] == {"TotalCount": 1, "Active": 0, "Size": 123_000, "Reclaimable": 123_000}

    rows = [json.loads(line) for line in cli("system", "df", "--format", "json", check=True).stdout.splitlines()]
    assert [r["Type"] for r in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert rows[0]["Size"] == human_size(on_disk) and rows[0]["TotalCount"] == "3" and rows[0]["Active"] == "1"
    assert rows[1]["Reclaimable"] == "123kB (100%)"
    table = cli("system", "df", check=True).stdout.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    verbose = cli("system", "df", "-v", check=True).stdout
    assert "Images space usage:" in verbose and "SHARED SIZE" in verbose and "writer" in verbose
    cli("rm", "writer", check=True)
