"""Pulling from a hostile registry (tests/fixtures/hostile_registry.py): redirects and token realms that
would carry credentials to other hosts, redirect loops, oversized manifests and configs, blob bodies that
disagree with their descriptor. 127.0.0.1, 127.0.0.2 and ``localhost`` are different hosts to the client
(and all loopback): that is how "another host" is played without leaving the machine.

Every outcome goes into a table printed at the end of the module (as the faults in test_pull_faults.py).
"""

from __future__ import annotations

import os

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    ImageNotFound,
    IntegrityError,
    RegistryError,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.image.auth import auth_file_path, store_credentials
from ansible_collections.pycontainer.engine.plugins.module_utils.image.pull import pull
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import parse_reference
from ansible_collections.pycontainer.engine.plugins.module_utils.image.store import ImageStore

from tests.fixtures.hostile_registry import Auth, Fault, FaultTable, HostileRegistry, store_leftovers
from tests.fixtures.images import File

pytestmark = pytest.mark.integration

USER, PASSWORD = "hostile-user", "s3cret-hostile-pw"
TABLE = FaultTable("hostile registry (tests/integration/test_registry_hostile.py)")


@pytest.fixture(scope="module", autouse=True)
def fault_table(request):
    yield TABLE
    TABLE.print_at_module_end(request)


@pytest.fixture
def servers():
    made: list[HostileRegistry] = []

    def make(images, bind="127.0.0.1", **kw) -> HostileRegistry:
        server = HostileRegistry(images, bind=bind, **kw)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def image(oci_builder):
    """A two-layer image (gzip), as an OCI layout the hostile registry serves."""
    layers = [[File("etc/base", "base\n")], [File("data/blob", os.urandom(400_000))]]
    return oci_builder.build(layers, {"config": {"Cmd": ["true"]}})


def do_pull(engine_config, ref):
    store = ImageStore(engine_config.paths.images)
    return store, pull(store, parse_reference(ref), engine_config)


def assert_nothing_stored(engine_config):
    store = ImageStore(engine_config.paths.images)
    if os.path.isdir(store.root):
        assert store.list() == []
        assert store_leftovers(store.root) == []


def has_auth(requests) -> bool:
    return any("Authorization" in r.headers for r in requests)


@pytest.mark.parametrize("cdn_name", ["127.0.0.2", "localhost"])
def test_blob_redirect_to_another_host_carries_no_credentials(engine_config, servers, image, cdn_name):
    cdn = servers({"ns/img": image}, bind="127.0.0.2" if cdn_name == "127.0.0.2" else "127.0.0.1")
    cdn_host = f"{cdn_name}:{cdn.httpd.server_port}"
    layer = image.images[0].layer_digests[1]
    reg = servers({"ns/img": image}, auth=Auth(basic=(USER, PASSWORD)),
                  faults=[Fault("redirect", match=layer, to=cdn_host)])
    store_credentials(auth_file_path(engine_config), reg.host, USER, PASSWORD)
    store, record = do_pull(engine_config, reg.ref("ns/img"))
    assert record.id == image.images[0].config_digest
    assert has_auth(reg.requests_to("manifests/latest"))  # the registry got the credentials ...
    assert cdn.requests_to(layer) and not has_auth(cdn.log)  # ... the blob host never
    assert store_leftovers(store.root) == []
    TABLE.record(f"blob 307 to {cdn_name} (Basic auth)", "pulled; no Authorization at the other host", "verifies")


def test_bearer_realm_on_another_plain_http_host_gets_no_credentials(engine_config, servers, image):
    realm = servers({}, bind="127.0.0.2")
    reg = servers({"ns/img": image}, auth=Auth(realm=f"http://{realm.host}/token"))
    store_credentials(auth_file_path(engine_config), reg.host, USER, PASSWORD)
    store, record = do_pull(engine_config, reg.ref("ns/img"))
    assert record.id == image.images[0].config_digest
    assert realm.requests_to("/token"), "the token was asked for (anonymously)"
    assert not has_auth(realm.log), "Basic credentials went to a plain-HTTP realm on another host"
    assert store_leftovers(store.root) == []
    TABLE.record("Bearer realm http://127.0.0.2 (creds stored)", "anonymous token; no credentials sent", "verifies")


def test_bearer_realm_on_the_registrys_own_host_gets_credentials(engine_config, servers, image):
    realm = servers({})  # 127.0.0.1, another port: a registry and its token server side by side
    reg = servers({"ns/img": image}, auth=Auth(realm=f"http://{realm.host}/token"))
    store_credentials(auth_file_path(engine_config), reg.host, USER, PASSWORD)
    do_pull(engine_config, reg.ref("ns/img"))
    assert has_auth(realm.requests_to("/token"))


def test_redirect_loop_is_bounded(engine_config, servers, image):
    reg = servers({"ns/img": image}, faults=[Fault("loop", match="manifests/latest")])
    with pytest.raises(RegistryError, match="too many redirects"):
        do_pull(engine_config, reg.ref("ns/img"))
    assert 1 < len(reg.requests_to("manifests/latest")) <= 6
    assert_nothing_stored(engine_config)
    TABLE.record("manifest 302 to itself forever", "RegistryError after 6 requests", "nothing stored")


def test_huge_manifest_is_refused(engine_config, servers, image):
    reg = servers({"ns/img": image}, faults=[Fault("huge", match="manifests/latest", size=5 << 20)])
    with pytest.raises(RegistryError, match="larger than 4194304 bytes"):
        do_pull(engine_config, reg.ref("ns/img"))
    assert_nothing_stored(engine_config)
    TABLE.record("5 MiB manifest", "RegistryError (4 MiB bound)", "nothing stored")


def test_config_descriptor_too_large_is_refused_before_download(engine_config, servers, oci_builder):
    built = oci_builder.build([[File("x", "y")]], {"config": {"Env": ["PAD=" + "x" * (5 << 20)]}})
    reg = servers({"ns/big": built})
    with pytest.raises(IntegrityError, match="more than the 4194304 allowed"):
        do_pull(engine_config, reg.ref("ns/big"))
    assert not reg.requests_to(built.images[0].config_digest)
    assert_nothing_stored(engine_config)
    TABLE.record("5 MiB image config", "IntegrityError before download", "nothing stored")


def test_endless_blob_body_is_bounded_by_its_descriptor(engine_config, servers, image):
    layer = image.images[0].layer_digests[1]
    size = image.images[0].manifest["layers"][1]["size"]
    reg = servers({"ns/img": image}, faults=[Fault("endless", match=layer)])
    with pytest.raises(IntegrityError, match="more than the"):
        do_pull(engine_config, reg.ref("ns/img"))
    # What the server managed to push before the client hung up: the blob, plus at most socket buffers.
    assert reg.bytes_sent < size + (32 << 20)
    assert_nothing_stored(engine_config)
    TABLE.record("blob without Content-Length, endless", "IntegrityError at descriptor size + 1", "nothing stored")


def test_content_length_disagreeing_with_descriptor_is_refused(engine_config, servers, image):
    layer = image.images[0].layer_digests[1]
    size = image.images[0].manifest["layers"][1]["size"]
    reg = servers({"ns/img": image}, faults=[Fault("length", match=layer, size=size + 4096)])
    with pytest.raises(IntegrityError, match="announces"):
        do_pull(engine_config, reg.ref("ns/img"))
    assert_nothing_stored(engine_config)
    TABLE.record("blob Content-Length != descriptor size", "IntegrityError up front", "nothing stored")


def test_wrong_digest_blob_is_refused_before_commit(engine_config, servers, image):
    layer = image.images[0].layer_digests[1]
    reg = servers({"ns/img": image}, faults=[Fault("corrupt", match=layer)])
    with pytest.raises(IntegrityError):
        do_pull(engine_config, reg.ref("ns/img"))
    store = ImageStore(engine_config.paths.images)
    assert not store.has_layer(image.images[0].diff_ids[1])
    assert_nothing_stored(engine_config)
    # A well-behaved registry afterwards: the pull completes.
    reg.faults.clear()
    assert do_pull(engine_config, reg.ref("ns/img"))[1].id == image.images[0].config_digest
    assert store_leftovers(store.root) == []
    TABLE.record("blob with one byte flipped", "IntegrityError, layer not committed", "next pull ok; verifies")


def test_unknown_repo_is_not_found(engine_config, servers, image):
    reg = servers({"ns/img": image})
    with pytest.raises(ImageNotFound):
        do_pull(engine_config, reg.ref("ns/other"))


def test_sparse_bomb_layer_refused_by_max_layer_size(engine_config, servers, oci_builder, tmp_path):
    """A layer of a few KB of tar holding a 256 MiB sparse file, against max_layer_size = 64 MiB: refused while
    unpacking, and nothing of the half-unpacked layer is left."""
    import subprocess

    src = tmp_path / "sparse-src"
    src.mkdir()
    with open(src / "big", "wb") as f:
        f.truncate(256 << 20)
        f.write(b"head")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=pax", "-C", str(src), "-cf", str(tar), "big"], check=True)
    built = oci_builder.build([[File("etc/ok", "ok")], tar.read_bytes()], {})
    reg = servers({"ns/sparse": built})
    engine_config.max_layer_size = 64 << 20
    with pytest.raises(IntegrityError, match="max_layer_size"):
        do_pull(engine_config, reg.ref("ns/sparse"))
    store = ImageStore(engine_config.paths.images)
    assert not store.has_layer(built.images[0].diff_ids[1])
    assert_nothing_stored(engine_config)
    TABLE.record("layer: 256 MiB sparse file in a few KB of tar", "IntegrityError (max_layer_size 64 MiB)",
                 "work dir gone; nothing stored")
