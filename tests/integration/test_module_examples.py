"""The EXAMPLES of the engine's first modules, run as written (placeholders such as a registry name or a file
path replaced by what the test has), against the real registry fixture and a test engine root."""

from __future__ import annotations

import io
import tarfile

from tests.fixtures.images import File, build_tar, manifest_exists
from tests.integration.helpers import run_module_examples


def _ok(proc) -> str:
    assert proc.returncode == 0 and "failed=0" in proc.stdout, proc.stdout + proc.stderr
    return proc.stdout


def test_image_examples(cli, registry, oci_builder, tmp_path):
    private = f"{registry.host}/team/app"
    oci_builder.push("team/app:v2", layers=[[File("app.txt", "v2\n")]])
    cli("pull", "-q", f"{private}:v2", check=True)
    saved = tmp_path / "app-v2.tar"
    cli("tag", f"{private}:v2", "app:v2", check=True)
    cli("save", "-o", str(saved), "app:v2", check=True)
    cli("rmi", "app:v2", f"{private}:v2", check=True)
    rootfs = tmp_path / "rootfs.tar.gz"
    with tarfile.open(rootfs, "w:gz") as archive:
        data = build_tar([File("etc/motd", "made by import\n")])
        with tarfile.open(fileobj=io.BytesIO(data)) as layer:
            for member in layer:
                archive.addfile(member, layer.extractfile(member))
    _ok(run_module_examples("pycontainer_image", cli, tmp_path, {
        "registry.example.com:5000": registry.host, "/srv/images/app-v2.tar": str(saved),
        "/srv/rootfs.tar.gz": str(rootfs)}))
    images = cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.split()
    # busybox pulled then removed; the private tag pulled again; app:v2 loaded; the rootfs imported and pushed
    assert sorted(images) == sorted([f"{private}:v2", "app:v2", f"{registry.host}/team/rootfs:1"]), images
    assert manifest_exists(registry.host, "team/rootfs", "1")


def test_info_prune_volume_and_events_examples(cli, busybox_image, tmp_path):
    cli("run", "-d", "--name", "front", "--network", "none", "--label", "tier=web", busybox_image, "sleep", "300",
        check=True)
    cli("run", "--name", "died", "--network", "none", busybox_image, "false")
    try:
        info = _ok(run_module_examples("pycontainer_info", cli, tmp_path, {}, "-v"))
        from ansible_collections.pycontainer.engine.plugins.module_utils.version import ENGINE_VERSION

        assert f'"msg": "{ENGINE_VERSION}: 1"' in info, info  # the debug task: version and running containers
        listed = [line for line in info.splitlines() if '"containers": [' in line]
        assert len(listed) == 1 and listed[0].count('"Names": ') == 1 and '"Names": "front"' in listed[0], info
        events = _ok(run_module_examples("pycontainer_events", cli, tmp_path))
        assert '"died"' in events, events
        _ok(run_module_examples("pycontainer_prune", cli, tmp_path))
        names = cli("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
        assert names == ["front"], names  # the exited one is pruned, the running one kept
        _ok(run_module_examples("pycontainer_volume", cli, tmp_path))
        assert cli("volume", "ls", "-q", check=True).stdout.split() == []
    finally:
        cli("rm", "-f", "front", "died")


def test_network_examples(cli, busybox_image, tmp_path):
    try:
        out = _ok(run_module_examples("pycontainer_network", cli, tmp_path))
        assert "changed=3" in out, out
        assert "appnet" not in cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()
    finally:
        cli("rm", "-f", "db")
        cli("network", "rm", "appnet")
