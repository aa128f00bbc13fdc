"""The registry client's HTTP behaviour against small in-process servers (auth, redirects, retries).

The happy path against a real registry is covered by tests/integration/test_pull.py; these servers
play the parts docker-registry without a token server cannot: Bearer challenges, redirects to a
blob store on another host, flaky 5xx answers and dropped connections.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.config import EngineConfig
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import (
    ImageNotFound,
    InvalidArgument,
    RegistryError,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.image.challenge import (
    Authenticator,
    parse_www_authenticate,
)
from ansible_collections.pycontainer.engine.plugins.module_utils.image.registry import RegistryClient
from ansible_collections.pycontainer.engine.plugins.module_utils.image.transport import Endpoint, endpoints_for


class Server:
    def __init__(self, routes):
        self.routes = routes
        self.log = []  # (path, headers, client port)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.log.append((self.path, dict(self.headers), self.client_address[1]))
                route = server.routes.get(urlsplit(self.path).path)
                if route is None:
                    return self.reply(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
                route(self)

            def reply(self, status, body=b"", headers=None):
                if isinstance(body, dict):
                    body = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    made = []

    def make(routes):
        s = Server(routes)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_bearer_flow_token_cache_and_redirect_without_auth(servers):
    blobstore = servers({"/blob": lambda h: h.reply(200, b"BLOBDATA")})
    tokens = []
    reg = None

    def token(h):
        q = parse_qs(urlsplit(h.path).query)
        tokens.append((q.get("scope", [""])[0], q.get("service", [""])[0], h.headers.get("Authorization")))
        h.reply(200, {"token": "tok-" + q["scope"][0], "expires_in": 300})

    def challenge(h, scope):
        h.reply(
            401,
            {"errors": [{"code": "UNAUTHORIZED"}]},
            {"WWW-Authenticate": f'Bearer realm="http://{reg.host}/token",service="stub",scope="{scope}"'},
        )

    def manifest(h):
        if h.headers.get("Authorization") != "Bearer tok-repository:ns/img:pull":
            return challenge(h, "repository:ns/img:pull")
        h.reply(200, b"{}", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

    def blob(h):
        if h.headers.get("Authorization") != "Bearer tok-repository:ns/img:pull":
            return challenge(h, "repository:ns/img:pull")
        h.reply(307, b"", {"Location": f"http://{blobstore.host}/blob?sig=1"})

    reg = servers({"/token": token, "/v2/ns/img/manifests/v1": manifest, "/v2/ns/img/blobs/sha256:abc": blob})

    def creds(host):
        return ("user", "pw") if host == reg.host else None

    with RegistryClient(Endpoint("http", reg.host), auth=Authenticator(credentials=creds)) as client:
        body, media, _digest = client.get_manifest("ns/img", "v1")
        assert (body, media) == (b"{}", "application/vnd.oci.image.manifest.v1+json")
        client.get_manifest("ns/img", "v1")
        assert client.fetch_blob("ns/img", "sha256:abc") == b"BLOBDATA"
    # One token for the scope, fetched with the user's Basic credentials, then reused.
    assert len(tokens) == 1
    assert tokens[0][:2] == ("repository:ns/img:pull", "stub")
    assert tokens[0][2] == "Basic " + base64.b64encode(b"user:pw").decode()
    # Authorization never reaches the blob store on another host.
    assert blobstore.log and all("Authorization" not in hdrs for _p, hdrs, _port in blobstore.log)
    # Keep-alive: after the first challenge, the registry saw few distinct connections.
    ports = {port for path, _h, port in reg.log if path.startswith("/v2/")}
    assert len(ports) <= 2, ports


def test_basic_auth(servers):
    want = "Basic " + base64.b64encode(b"u:p").decode()

    def manifest(h):
        if h.headers.get("Authorization") != want:
            return h.reply(401, b"", {"WWW-Authenticate": 'Basic realm="r"'})
        h.reply(200, b"{}", {"Content-Type": "application/json"})

    reg = servers({"/v2/a/manifests/t": manifest})
    with RegistryClient(Endpoint("http", reg.host), auth=Authenticator(lambda host: ("u", "p"))) as client:
        assert client.get_manifest("a", "t")[0] == b"{}"
    with RegistryClient(Endpoint("http", reg.host)) as client, pytest.raises(RegistryError, match="credentials"):
        client.get_manifest("a", "t")


def test_wrong_credentials_is_an_error_not_a_loop(servers):
    reg = servers({"/v2/a/manifests/t": lambda h: h.reply(401, b"", {"WWW-Authenticate": 'Basic realm="r"'})})
    client = RegistryClient(Endpoint("http", reg.host), auth=Authenticator(lambda host: ("u", "bad")))
    with client, pytest.raises(RegistryError, match="pull access denied"):
        client.get_manifest("a", "t")
    assert len(reg.log) == 2


def test_retries_on_5xx_and_dropped_connections(servers):
    state = {"n": 0, "m": 0}

    def flaky(h):
        state["n"] += 1
        if state["n"] <= 2:
            return h.reply(503, b"busy")
        h.reply(200, b"{}", {"Content-Type": "application/json"})

    def dropper(h):
        state["m"] += 1
        if state["m"] == 1:
            h.close_connection = True
            h.connection.shutdown(2)  # reset mid-request: no status line at all
            return
        h.reply(200, b"{}", {"Content-Type": "application/json"})

    reg = servers({"/v2/a/manifests/flaky": flaky, "/v2/a/manifests/drop": dropper})
    with RegistryClient(Endpoint("http", reg.host), backoff=0.01) as client:
        assert client.get_manifest("a", "flaky")[0] == b"{}"
        assert client.get_manifest("a", "drop")[0] == b"{}"
    assert state == {"n": 3, "m": 2}


def test_not_found_and_unreachable(servers):
    reg = servers({})
    with RegistryClient(Endpoint("http", reg.host)) as client, pytest.raises(ImageNotFound, match="not found"):
        client.get_manifest("a", "t")
    reg.close()
    client = RegistryClient(Endpoint("http", reg.host), backoff=0.01)
    with client, pytest.raises(RegistryError, match="cannot reach"):
        client.get_manifest("a", "t")


def test_endpoints_policy():
    cfg = EngineConfig(root="/x", registry_mirrors=["http://127.0.0.1:5000", "https://mirror.example/v"])
    eps = endpoints_for("docker.io", cfg)
    assert [e.url for e in eps] == ["http://127.0.0.1:5000", "https://mirror.example/v", "https://registry-1.docker.io"]
    assert eps[0].mirror and not eps[2].mirror and eps[2].verify_tls
    assert [e.url for e in endpoints_for("quay.io", cfg)] == ["https://quay.io"]
    assert [e.url for e in endpoints_for("localhost:5000", cfg)] == ["http://localhost:5000"]
    insecure = EngineConfig(root="/x", insecure_registries=["10.0.0.0/8", "reg.lan:5000"])
    assert [(e.url, e.verify_tls) for e in endpoints_for("reg.lan:5000", insecure)] == [
        ("https://reg.lan:5000", False),
        ("http://reg.lan:5000", False),
    ]
    assert [e.scheme for e in endpoints_for("10.1.2.3:5000", insecure)] == ["https", "http"]
    assert [(e.url, e.verify_tls) for e in endpoints_for("11.1.2.3:5000", insecure)] == [
        ("https://11.1.2.3:5000", True)
    ]
    with pytest.raises(InvalidArgument, match="plain HTTP"):
        endpoints_for("docker.io", EngineConfig(root="/x", registry_mirrors=["http://mirror.example"]))


def test_parse_www_authenticate():
    scheme, params = parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:a/b:pull,push",
    }


def test_blocked_docker_io_keeps_mirrors_and_never_adds_the_upstream():
    cfg = EngineConfig(root="/x", registry_mirrors=["http://127.0.0.1:5000"], blocked_registries=["docker.io"])
    assert [e.host for e in endpoints_for("docker.io", cfg)] == ["127.0.0.1:5000"]
    with pytest.raises(RegistryError, match="blocked by the engine config and no mirror"):
        endpoints_for("docker.io", EngineConfig(root="/x", blocked_registries=["docker.io"]))
    with pytest.raises(RegistryError, match=r"registry reg\.example is blocked"):
        endpoints_for("reg.example", EngineConfig(root="/x", blocked_registries=["reg.example"]))
