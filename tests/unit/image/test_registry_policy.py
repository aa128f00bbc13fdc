"""Where a hostile registry may send the client: redirects and token realms (registry.check_redirect,
check_realm), and a redirect host whose name resolves to a local address (checked on the connected peer).

The remote registries here are names only: the policy functions decide without any network traffic; the
one connection made goes to a listener on 127.0.0.1.
"""

import socket

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import RegistryError
from ansible_collections.pycontainer.engine.plugins.module_utils.image.registry import RegistryClient
from ansible_collections.pycontainer.engine.plugins.module_utils.image.transport import (
    Endpoint,
    check_realm,
    check_redirect,
)

REMOTE = Endpoint("https", "registry.example")
REMOTE_HTTP = Endpoint("http", "registry.example:5000", verify_tls=False)  # an insecure registry
LOCAL = Endpoint("http", "127.0.0.1:5000", verify_tls=False)


@pytest.mark.parametrize("target, why", [
    ("http://registry.example/v2/x", "HTTPS to plain HTTP"),
    ("http://cdn.example/blob", "HTTPS to plain HTTP"),
    ("https://127.0.0.1/blob", "local address"),
    ("https://127.0.0.2:8443/blob", "local address"),
    ("https://localhost/blob", "local address"),
    ("https://foo.localhost/blob", "local address"),
    ("https://[::1]:443/blob", "local address"),
    ("https://[::ffff:127.0.0.1]/blob", "local address"),
    ("https://169.254.169.254/latest/meta-data/", "local address"),
    ("https://[fe80::1]/blob", "local address"),
    ("https://0.0.0.0/blob", "local address"),
    ("ftp://cdn.example/blob", "not an http"),
    ("file:///etc/shadow", "not an http"),
    ("https://user:pw@cdn.example/blob", "credentials in the URL"),
])
def test_redirects_a_remote_registry_may_not_make(target, why):
    with pytest.raises(RegistryError, match=why):
        check_redirect("https://registry.example/v2/ns/img/blobs/sha256:aa", target, REMOTE)


def test_redirects_that_are_followed():
    check_redirect("https://registry.example/v2/x", "https://cdn.example/blob?sig=1", REMOTE)
    check_redirect("http://registry.example:5000/v2/x", "https://cdn.example/blob", REMOTE_HTTP)  # upgrade
    check_redirect("http://registry.example:5000/v2/x", "http://registry.example:5000/other", REMOTE_HTTP)
    # Loopback to loopback (a test registry and its blob store), plain HTTP included.
    for target in ("http://127.0.0.2:9000/blob", "http://localhost:9000/blob", "http://[::1]:9000/blob"):
        check_redirect("http://127.0.0.1:5000/v2/x", target, LOCAL)


def test_plain_http_to_another_remote_host_refused():
    with pytest.raises(RegistryError, match="plain HTTP on another host"):
        check_redirect("http://registry.example:5000/v2/x", "http://cdn.example/blob", REMOTE_HTTP)
    with pytest.raises(RegistryError, match="plain HTTP on another host"):
        check_redirect("http://127.0.0.1:5000/v2/x", "http://cdn.example/blob", LOCAL)


def test_token_realms():
    # HTTPS realm on another host (Docker Hub's auth.docker.io): credentials go.
    assert check_realm("https://auth.example/token", REMOTE) is True
    # The registry's own plain-HTTP host, another port (a registry and its token server): they go too.
    assert check_realm("http://registry.example:5001/token", REMOTE_HTTP) is True
    assert check_realm("http://127.0.0.1:5001/token", LOCAL) is True
    # Plain HTTP realm on another loopback "host": reachable, but no credentials.
    assert check_realm("http://127.0.0.2:5001/token", LOCAL) is False
    assert check_realm("http://localhost:5001/token", LOCAL) is False
    # An HTTPS registry never sends anyone to a plain-HTTP realm; a remote one never to a local realm.
    for realm, why in [("http://registry.example/token", "HTTPS to plain HTTP"),
                       ("https://127.0.0.1/token", "local address"),
                       ("https://169.254.169.254/token", "local address"),
                       ("gopher://auth.example/token", "not an http")]:
        with pytest.raises(RegistryError, match=why):
            check_realm(realm, REMOTE)
    with pytest.raises(RegistryError, match="plain HTTP on another host"):
        check_realm("http://auth.example/token", REMOTE_HTTP)


def test_redirect_host_resolving_to_loopback_is_refused_before_a_byte_is_sent(monkeypatch):
    """A CDN name that passes the name check but resolves to 127.0.0.1 (DNS or /etc/hosts): refused on the
    connected peer's address, before TLS or any request bytes go out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # the system resolver's answer for a hostile DNS name
        return real("127.0.0.1" if host == "cdn.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    try:
        with RegistryClient(REMOTE, timeout=5, retries=0) as client, pytest.raises(
                RegistryError, match=r"resolves to the local address 127\.0\.0\.1"):
            client.request_url("GET", f"https://cdn.example:{port}/blob")
        conn, _addr = listener.accept()  # it did connect (the check needs the peer address) ...
        conn.settimeout(2)
        assert conn.recv(1024) == b""  # ... and hung up without sending a byte (no TLS hello)
        conn.close()
    finally:
        listener.close()
