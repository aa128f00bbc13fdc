"""`system prune` and `container prune`: what goes, what stays, and the bytes really freed."""

from __future__ import annotations

import os
import subprocess

from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.events import EventJournal
from ansible_collections.pycontainer.engine.plugins.module_utils.system.prune import prune_lock
from ansible_collections.pycontainer.engine.plugins.module_utils.timefmt import human_size

from tests.fixtures.images import File


def _stored_bytes(root: str) -> int:
    """Bytes of image layers, containers' writable layers and volume data, each inode once (find(1))."""
    layers = os.path.join(root, "images", "layers")
    dirs = [os.path.join(layers, d) for d in os.listdir(layers)]  # the layer trees, not their sidecar records
    containers = os.path.join(root, "containers")
    dirs += [os.path.join(containers, c, "upper") for c in os.listdir(containers) if len(c) == 64]
    volumes = os.path.join(root, "volumes")
    if os.path.isdir(volumes):
        dirs += [os.path.join(volumes, v, "_data") for v in os.listdir(volumes)]
    sizes: dict[str, str] = {}
    for directory in filter(os.path.isdir, dirs):
        out = subprocess.run(["find", directory, "(", "-type", "f", "-o", "-type", "l", ")", "-printf", "%i %s\\n"],
                             capture_output=True, text=True, check=True).stdout
        sizes.update(line.split() for line in out.splitlines())
    return sum(int(size) for size in sizes.values())


def test_system_prune_removes_only_unused_things_and_reports_the_bytes_freed(cli, busybox_image, oci_builder):
    old_ref, _layout = oci_builder.push("prune/app:v1", [[File("old.bin", os.urandom(70_000))]], {})
    cli("pull", "-q", old_ref, check=True)
    oci_builder.push("prune/app:v1", [[File("new.bin", os.urandom(30_000))]], {})
    cli("pull", "-q", old_ref, check=True)  # the first image is now dangling
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--name", "stopped", "-v", "/data", busybox_image, "sh", "-c",
        "dd if=/dev/zero of=/blob bs=1000 count=40 && dd if=/dev/zero of=/data/v bs=1000 count=5", check=True)
    cli("run", "-d", "--name", "running", "--network", "none", busybox_image, "sleep", "60", check=True)
    cli("network", "create", "unusednet", check=True)
    try:
        before = _stored_bytes(cli.root)
        proc = cli("system", "prune", "-f", "--volumes", check=True)
        after = _stored_bytes(cli.root)
        lines = proc.stdout.splitlines()
        assert "Deleted Containers:" in lines and "Deleted Networks:" in lines and "unusednet" in lines
        assert "Deleted Volumes:" in lines and "Deleted Images:" in lines
        assert any(line.startswith("deleted: sha256:") for line in lines)
        assert lines[-1] == f"Total reclaimed space: {human_size(before - after)}"
        assert before - after >= 70_000 + 40_000 + 5_000

        ps = cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
        assert ps == ["running"]
        images = cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.split()
        assert sorted(i.split("/", 1)[-1] for i in images) == ["library/busybox:latest", "prune/app:v1"]

        events = list(EventJournal(os.path.join(cli.root, "events")).read())
        prunes = {e["Type"]: e["Actor"]["Attributes"]["reclaimed"] for e in events if e["Action"] == "prune"}
        assert set(prunes) == {"container", "network", "volume", "image"}
        assert int(prunes["container"]) == 40_000
    finally:
        cli("rm", "-f", "running")


def test_a_second_prune_at_the_same_time_is_refused(cli):
    engine = Engine(EngineConfig(root=cli.root, log_file=""))
    with prune_lock(engine):
        proc = cli("system", "prune", "-f")
    assert proc.returncode == 125
    assert proc.stderr.strip() == "pycontainer: a prune operation is already running"
    assert cli("system", "prune", "-f", check=True).stdout.strip() == "Total reclaimed space: 0B"


def test_container_prune_filters_and_prompt(cli, busybox_image):
    cli("pull", "-q", busybox_image, check=True)
    cli("run", "--name", "keep", "--label", "tier=db", busybox_image, "true", check=True)
    cli("run", "--name", "drop", "--label", "tier=web", busybox_image, "true", check=True)
    declined = cli("container", "prune", input="n\n")
    assert "WARNING! This will remove all stopped containers." in declined.stdout
    assert len(cli("ps", "-aq").stdout.split()) == 2
    proc = cli("container", "prune", "-f", "--filter", "label=tier=web", check=True)
    assert proc.stdout.splitlines()[0] == "Deleted Containers:"
    assert cli("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["keep"]
    bad = cli("container", "prune", "-f", "--filter", "colour=red")
    assert bad.returncode == 125 and "invalid filter" in bad.stderr
