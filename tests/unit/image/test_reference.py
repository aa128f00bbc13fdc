import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.image.reference import (
    is_loopback_host,
    parse_reference,
)

HEX = "a" * 64
D = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "full", "familiar"),
    [
        (
            "busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "busybox:1.36",
            "docker.io",
            "library/busybox",
            "1.36",
            None,
            "docker.io/library/busybox:1.36",
            "busybox:1.36",
        ),
        (
            "library/busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "docker.io/library/busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "index.docker.io/library/busybox",
            "docker.io",
            "library/busybox",
            "latest",
            None,
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        ("user/app:v1", "docker.io", "user/app", "v1", None, "docker.io/user/app:v1", "user/app:v1"),
        (
            "docker.io/library/a/b",
            "docker.io",
            "library/a/b",
            "latest",
            None,
            "docker.io/library/a/b:latest",
            "library/a/b:latest",
        ),
        ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", None, "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("127.0.0.1:5000/x/y:t", "127.0.0.1:5000", "x/y", "t", None, "127.0.0.1:5000/x/y:t", "127.0.0.1:5000/x/y:t"),
        (
            "registry.example.com:443/ns/name:tag",
            "registry.example.com:443",
            "ns/name",
            "tag",
            None,
            "registry.example.com:443/ns/name:tag",
            "registry.example.com:443/ns/name:tag",
        ),
        (
            "quay.io/a_b/c-d.e__f",
            "quay.io",
            "a_b/c-d.e__f",
            "latest",
            None,
            "quay.io/a_b/c-d.e__f:latest",
            "quay.io/a_b/c-d.e__f:latest",
        ),
        (f"busybox@{D}", "docker.io", "library/busybox", None, D, f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (
            f"busybox:1.36@{D}",
            "docker.io",
            "library/busybox",
            "1.36",
            D,
            f"docker.io/library/busybox:1.36@{D}",
            f"busybox:1.36@{D}",
        ),
        (f"h:5000/n@{D}", "h:5000", "n", None, D, f"h:5000/n@{D}", f"h:5000/n@{D}"),
        ("[::1]:5000/img:v", "[::1]:5000", "img", "v", None, "[::1]:5000/img:v", "[::1]:5000/img:v"),
        ("Upper.Host/x", "Upper.Host", "x", "latest", None, "Upper.Host/x:latest", "Upper.Host/x:latest"),
    ],
)
def test_normalisation(text, domain, path, tag, digest, full, familiar):
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert ref.name == full.split("@")[0].rsplit(":", 1)[0] if tag else full.split("@")[0]
    assert parse_reference(str(ref)) == ref  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Busybox",
        "busybox:",
        ":tag",
        "busybox:-bad",
        "busybox:" + "t" * 129,
        "a//b",
        "/busybox",
        "busybox/",
        "bad host!/x",
        "busybox@sha256:abc",
        "busybox@md5:" + "a" * 32,
        "busybox@sha256:" + "A" * 64,
        "@" + D,
        HEX,
        "a" * 256,
        "x..y",
        "-x",
    ],
)
def test_invalid(text):
    with pytest.raises(InvalidArgument):
        parse_reference(text)


def test_uppercase_message():
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        parse_reference("foo/Bar")


def test_loopback():
    assert is_loopback_host("127.0.0.1:5000")
    assert is_loopback_host("127.3.4.5")
    assert is_loopback_host("localhost:1")
    assert is_loopback_host("[::1]:5000")
    assert not is_loopback_host("10.0.0.1:5000")
    assert not is_loopback_host("example.com")
