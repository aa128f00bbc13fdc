"""A small OCI distribution (registry v2) client on http.client: no third-party HTTP stack.

Design:
- ``Endpoint``: where to talk to (scheme, host, TLS policy, mirror or not). ``endpoints_for`` builds the
  ordered list for a reference domain (docker.io mirrors first).
- ``Authenticator``: answers ``WWW-Authenticate`` challenges. Anonymous, Bearer tokens (cached per
  realm/service/scope) and Basic are handled; credentials come from a pluggable callable, so a later
  credential store (config.json, Ansible params) only supplies ``(user, password)``.
- ``RegistryClient``: keep-alive connections per (scheme, host), retries with backoff on resets and
  5xx, redirects followed without leaking Authorization to other hosts, streamed blob bodies.

Against a hostile registry (``check_redirect``, ``check_realm``): a redirect or token realm may not
downgrade HTTPS to HTTP, may not lead from a non-loopback registry to loopback or link-local addresses
(checked on the name and again on the connected peer, so DNS cannot smuggle it in), credentials go only to
the host they are for (Basic credentials to a token realm only over HTTPS or on the registry's own plain
HTTP host), at most ``_MAX_REDIRECTS`` hops are followed, manifests are bounded (``MAX_MANIFEST_SIZE``) and
blob bodies by their descriptor's size.
"""

from __future__ import annotations

import base64
import errno
import http.client
import json
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import ImageNotFound, IntegrityError, InvalidArgument, RegistryError
from ..version import ENGINE_VERSION
from .reference import DEFAULT_DOMAIN, is_loopback_host, split_host_port

USER_AGENT = f"pycontainer/{ENGINE_VERSION}"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"

MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_ACCEPT = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)

MAX_MANIFEST_SIZE = 4 << 20  # the limit Docker and containerd apply to manifests
_RETRY_STATUSES = {429, 500, 502, 503, 504}
_MAX_REDIRECTS = 5
Credentials = Callable[[str], "tuple[str, str] | None"]


# -- endpoints -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # "https" or "http"
    host: str  # netloc: "registry-1.docker.io", "127.0.0.1:5000"
    path_prefix: str = ""  # a mirror may live under a path
    verify_tls: bool = True
    mirror: bool = False

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path_prefix}"


def _host_matches(host: str, patterns: Iterable[str]) -> bool:
    import ipaddress

    hostname = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1 : host.find("]")]
    for pat in patterns:
        pat = pat.strip()
        if "://" in pat:
            pat = urllib.parse.urlsplit(pat).netloc
        if pat in (host, hostname):
            return True
        if "/" in pat:  # CIDR, as Docker's insecure-registries allows
            try:
                if ipaddress.ip_address(hostname) in ipaddress.ip_network(pat, strict=False):
                    return True
            except ValueError:
                continue
    return False


def plain_http_allowed(host: str, insecure_registries: Iterable[str]) -> bool:
    return is_loopback_host(host) or _host_matches(host, insecure_registries)


def endpoints_for(domain: str, config) -> list[Endpoint]:
    """The endpoints to try, in order, for images of ``domain`` (mirrors first for docker.io)."""
    insecure = list(getattr(config, "insecure_registries", []) or [])
    blocked = set(getattr(config, "blocked_registries", []) or [])
    if domain in (DEFAULT_DOMAIN, "index.docker.io", DOCKER_HUB_REGISTRY) and blocked & {
            DEFAULT_DOMAIN, "index.docker.io", DOCKER_HUB_REGISTRY}:
        blocked.add(domain)
    result: list[Endpoint] = []
    if domain == DEFAULT_DOMAIN:
        for url in getattr(config, "registry_mirrors", []) or []:
            parts = urllib.parse.urlsplit(url if "://" in url else "https://" + url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidArgument(f"invalid registry mirror URL {url!r}")
            insecure_host = plain_http_allowed(parts.netloc, insecure)
            if parts.scheme == "http" and not insecure_host:
                raise InvalidArgument(
                    f"registry mirror {url!r} uses plain HTTP but {parts.netloc} is neither loopback "
                    "nor listed in insecure_registries"
                )
            result.append(
                Endpoint(
                    parts.scheme,
                    parts.netloc,
                    parts.path.rstrip("/"),
                    verify_tls=not insecure_host,
                    mirror=True,
                )
            )
        if domain not in blocked:
            result.append(Endpoint("https", DOCKER_HUB_REGISTRY))
        if not result:
            raise RegistryError(f"registry {domain} is blocked by the engine config and no mirror is configured")
        return result
    if domain in blocked:
        raise RegistryError(f"registry {domain} is blocked by the engine config")
    if plain_http_allowed(domain, insecure):
        # Loopback and insecure registries: try TLS without verification first, then plain HTTP.
        # Loopback is usually plain HTTP (a test registry), so start there to avoid a useless handshake.
        if is_loopback_host(domain):
            return [Endpoint("http", domain, verify_tls=False)]
        return [Endpoint("https", domain, verify_tls=False), Endpoint("http", domain, verify_tls=False)]
    return [Endpoint("https", domain)]


# -- where a hostile registry may send us -----------------------------------------------------------------


def _internal_address(hostname: str) -> bool:
    """Loopback, link-local (cloud metadata lives at 169.254.169.254) or unspecified."""
    import ipaddress

    if hostname.rstrip(".").lower() in ("localhost", "ip6-localhost", "ip6-loopback") or hostname.endswith(
            ".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(hostname.partition("%")[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_link_local or addr.is_unspecified


def internal_host(host: str) -> bool:
    """``_internal_address`` for a netloc (``host:port``, ``[v6]:port``)."""
    try:
        return _internal_address(split_host_port(host)[0])
    except ValueError:
        return False


def check_redirect(current: str, target: str, endpoint: Endpoint) -> None:
    """Raise RegistryError unless a redirect from URL ``current`` to URL ``target`` may be followed."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryError(f"refusing to follow a redirect to {target!r}: not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise RegistryError(f"refusing to follow a redirect to {parts.hostname}: credentials in the URL")
    if urllib.parse.urlsplit(current).scheme == "https" and parts.scheme == "http":
        raise RegistryError(f"refusing to follow a redirect from HTTPS to plain HTTP ({parts.netloc})")
    if internal_host(parts.netloc) and not internal_host(endpoint.host):
        raise RegistryError(
            f"refusing to follow a redirect from registry {endpoint.host} to the local address {parts.netloc}")
    # Plain HTTP to a third host only between loopback addresses (a test registry and its blob store);
    # another port of the registry's own (plain HTTP) host is that host.
    same_host = (parts.hostname or "") == (urllib.parse.urlsplit(endpoint.url).hostname or "")
    if parts.scheme == "http" and not same_host and not (
            is_loopback_host(parts.netloc) and is_loopback_host(endpoint.host)):
        raise RegistryError(f"refusing to follow a redirect to plain HTTP on another host: {parts.netloc}")


def check_realm(realm: str, endpoint: Endpoint) -> bool:
    """Vet the token realm a registry's challenge names; True if Basic credentials may be sent to it.

    Raises RegistryError for a realm no request may go to (same rules as a redirect from the registry).
    """
    check_redirect(endpoint.url, realm, endpoint)
    parts = urllib.parse.urlsplit(realm)
    # A plain-HTTP realm is fine without credentials (anonymous tokens); with them only on the very host
    # (any port: a registry and its token server side by side) the credentials already travel to in clear.
    same_host = (parts.hostname or "") == (urllib.parse.urlsplit(endpoint.url).hostname or "")
    return parts.scheme == "https" or (same_host and endpoint.scheme == "http")


# -- authentication --------------------------------------------------------------------------------------

_CHALLENGE_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_www_authenticate(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _sep, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _CHALLENGE_RE.finditer(rest)
    }
    return scheme.lower(), params


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class Authenticator:
    """Turns 401 challenges into Authorization headers. One per client; tokens cached per scope."""

    credentials: Credentials | None = None
    _tokens: dict[tuple[str, str, str], _Token] = field(default_factory=dict)
    # Per registry host: the last challenge seen, so later requests authenticate up front.
    _challenges: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def header_for(self, client: RegistryClient, host: str, scope: str) -> str | None:
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        scheme, params = challenge
        if scheme == "basic":
            creds = self.credentials(host) if self.credentials else None
            if not creds:
                raise RegistryError(f"{host}: authentication required (no credentials configured)")
            return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        if scheme == "bearer":
            token = self._bearer_token(client, host, params, scope)
            return f"Bearer {token}" if token else None
        raise RegistryError(f"{host}: unsupported authentication scheme {scheme!r}")

    def challenged(self, host: str, header: str | None) -> bool:
        """Record a 401's challenge; False if it brings nothing new (authentication really failed)."""
        if not header:
            return False
        parsed = parse_www_authenticate(header)
        previous = self._challenges.get(host)
        self._challenges[host] = parsed
        if previous is None or previous[0] != parsed[0]:
            return True
        # Same scheme: a bearer challenge for a new scope (e.g. error="insufficient_scope") is new.
        if parsed[0] == "bearer":
            return parsed[1].get("scope") != previous[1].get("scope") and bool(parsed[1].get("scope"))
        return False

    def _bearer_token(self, client: RegistryClient, host: str, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{host}: bearer challenge without realm")
        service = params.get("service", "")
        key = (realm, service, scope)
        cached = self._tokens.get(key)
        if cached and cached.expires > time.monotonic():
            return cached.value
        # Several scopes (a cross-repository mount needs pull on the source too) are space-separated.
        query: list[tuple[str, str]] = [("scope", s) for s in scope.split()]
        if service:
            query.append(("service", service))
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {}
        may_send = check_realm(realm, client.endpoint)
        creds = self.credentials(host) if self.credentials and may_send else None
        realm_host = urllib.parse.urlsplit(realm).netloc
        if creds:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        status, _hdrs, body = client.request_url("GET", url, headers, trusted_host=realm_host)
        if status != 200:
            raise RegistryError(f"{host}: token server {realm} answered {status}: {body[:200]!r}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"{host}: token server {realm} sent invalid JSON") from None
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RegistryError(f"{host}: token server {realm} sent no token")
        expires_in = int(doc.get("expires_in") or 60)
        # Refresh a little early; the spec's minimum lifetime is 60s.
        self._tokens[key] = _Token(token, time.monotonic() + max(expires_in - 10, 5))
        return token


# -- HTTP plumbing ---------------------------------------------------------------------------------------


class BlobStream:
    """A streamed response body: read() raises RegistryError on network trouble, close() recycles."""

    def __init__(self, client: RegistryClient, key, conn, response: http.client.HTTPResponse, size: int | None):
        self._client = client
        self._key = key
        self._conn = conn
        self._resp = response
        self.size = size  # Content-Length, if the server sent one
        self.read_bytes = 0
        self.limit: int | None = None  # the descriptor's size, once expect() is told it
        self.what = "blob"

    def expect(self, size: int | None, what: str) -> None:
        """Bound the body by the descriptor's ``size``: a longer body is refused, a shorter one is a
        truncated download (retried by the caller); a Content-Length that disagrees is refused up front."""
        self.what = what
        if size is None:
            return
        if self.size is not None and self.size != size:
            self._discard()
            raise IntegrityError(f"{what}: the registry announces {self.size} bytes, the descriptor says {size}")
        self.limit = size

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n >= 0 else 1 << 20
        if self.limit is not None:
            want = min(want, self.limit - self.read_bytes + 1)  # one byte more reveals an overlong body
        try:
            # read1: what has arrived (at most one recv), so data flows to the unpacker as it comes.
            data = self._resp.read1(want) if want else b""
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise RegistryError(f"connection lost while downloading {self.what}: {exc}") from None
        self.read_bytes += len(data)
        if self.limit is not None:
            if self.read_bytes > self.limit:
                self._discard()
                raise IntegrityError(f"{self.what}: the registry sends more than the {self.limit} bytes of its "
                                     "descriptor")
            if not data and want and self.read_bytes < self.limit:
                self._discard()
                raise RegistryError(f"{self.what}: download truncated at {self.read_bytes} of {self.limit} bytes")
        return data

    def readable(self) -> bool:
        return True

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is None:
            return
        if self._resp.length == 0 and not self._resp.isclosed():
            self._resp.close()  # all of a Content-Length body read (read1 does not close at the end itself)
        if self._resp.isclosed():
            self._client._release(self._key, self._conn)
            self._conn = None
        else:
            self._discard()  # unread body: the connection cannot be reused

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalPeerRefused(OSError):
    """The connection reached a loopback/link-local address a remote registry's redirect may not lead to."""


def _check_peer(conn: http.client.HTTPConnection) -> None:
    # After the TCP connect, before a byte is sent: a name resolving to a local address (DNS, /etc/hosts)
    # is refused as the literal address would be.
    peer = conn.sock.getpeername()[0] if conn.sock is not None else ""
    if not getattr(conn, "local_ok", True) and peer and _internal_address(peer):
        conn.sock.close()
        conn.sock = None
        raise LocalPeerRefused(f"refusing to talk to {conn.host}: it resolves to the local address {peer}")


class _HTTPConnection(http.client.HTTPConnection):
    local_ok = True

    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _HTTPSConnection(http.client.HTTPSConnection):
    local_ok = True

    def connect(self) -> None:
        # http.client.HTTPSConnection.connect, with the peer checked between the TCP connect and TLS.
        http.client.HTTPConnection.connect(self)
        _check_peer(self)
        # pylint: disable-next=protected-access
        server_hostname = self._tunnel_host or self.host
        # pylint: disable-next=protected-access
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)


class RegistryClient:
    """Talks to one registry endpoint (plus any host it redirects to)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        auth: Authenticator | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.25,
    ):
        self.endpoint = endpoint
        self.auth = auth or Authenticator()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        # Idle keep-alive connections per (scheme, host, verify); several threads (parallel layer
        # downloads) share one client, each taking its own connection.
        self._pool: dict[tuple[str, str, bool], list[http.client.HTTPConnection]] = {}
        self._pool_lock = threading.Lock()

    # connection pool

    def _connection(self, scheme: str, host: str, verify: bool) -> tuple[tuple, http.client.HTTPConnection]:
        key = (scheme, host, verify)
        with self._pool_lock:
            idle = self._pool.get(key)
            conn = idle.pop() if idle else None
        if conn is None:
            # A third host (redirect target, token realm) of a remote registry must not turn out local.
            local_ok = host == self.endpoint.host or internal_host(self.endpoint.host)
            if scheme == "https":
                ctx = ssl.create_default_context()
                if not verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                conn = _HTTPSConnection(host, timeout=self.timeout, context=ctx)
            else:
                conn = _HTTPConnection(host, timeout=self.timeout)
            conn.local_ok = local_ok
        return key, conn

    def _release(self, key, conn) -> None:
        with self._pool_lock:
            idle = self._pool.setdefault(key, [])
            if len(idle) < 8:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._pool_lock:
            for idle in self._pool.values():
                for conn in idle:
                    conn.close()
            self._pool.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # requests

    def request_url(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        trusted_host: str | None = None,
        stream: bool = False,
        max_body: int = MAX_MANIFEST_SIZE,
        body=None,
    ):
        """One HTTP exchange with retries and redirects. Returns (status, headers, body | BlobStream).

        Authorization is only sent to ``trusted_host`` (the host the caller computed it for).
        """
        headers = dict(headers or {})
        current = self.endpoint.url  # the first URL is ours or the registry's (realm, upload location)
        for _hop in range(_MAX_REDIRECTS + 1):
            check_redirect(current, url, self.endpoint)
            current = url
            parts = urllib.parse.urlsplit(url)
            send = dict(headers)
            if parts.netloc != trusted_host:
                send.pop("Authorization", None)
            send.setdefault("User-Agent", USER_AGENT)
            verify = self.endpoint.verify_tls if parts.netloc == self.endpoint.host else True
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            status, rheaders, key, conn, resp = self._exchange(
                method, parts.scheme, parts.netloc, verify, path, send, body
            )
            if method == "HEAD":
                self._release(key, conn)
                return status, rheaders, b""
            if status in (301, 302, 303, 307, 308) and rheaders.get("location"):
                resp.read()
                self._release(key, conn)
                url = urllib.parse.urljoin(url, rheaders["location"])
                if status == 303:
                    method = "GET"
                continue
            if stream and status == 200:
                size = rheaders.get("content-length") or ""
                return status, rheaders, BlobStream(self, key, conn, resp, int(size) if size.isdigit() else None)
            try:
                body = resp.read(max_body + 1)
                if len(body) > max_body:
                    conn.close()
                    raise RegistryError(f"response from {url} is larger than {max_body} bytes")
                if not resp.isclosed():
                    resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise RegistryError(f"connection to {parts.netloc} lost: {exc}") from None
            self._release(key, conn)
            return status, rheaders, body
        raise RegistryError(f"too many redirects fetching {url}")

    def _exchange(self, method, scheme, host, verify, path, headers, body=None):
        last_exc: Exception | None = None
        for attempt in range(self.retries + 1):
            key, conn = self._connection(scheme, host, verify)
            reused = conn.sock is not None
            if hasattr(body, "seek"):
                body.seek(0)  # a retried upload starts over
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                last_exc = exc
                if isinstance(exc, LocalPeerRefused):
                    raise RegistryError(str(exc)) from None
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise RegistryError(f"TLS certificate verification failed for {host}: {exc}") from None
                if isinstance(exc, socket.gaierror | ConnectionRefusedError) or (
                    isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
                ):
                    break  # nobody there: not transient, and a mirror should fail over fast
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: retry at once
                self._sleep(attempt)
                continue
            status = resp.status
            rheaders = {k.lower(): v for k, v in resp.getheaders()}
            if status in _RETRY_STATUSES and attempt < self.retries:
                resp.read()
                self._release(key, conn)
                delay = rheaders.get("retry-after")
                self._sleep(attempt, float(delay) if delay and delay.isdigit() else None)
                continue
            return status, rheaders, key, conn, resp
        raise RegistryError(f"cannot reach registry {host}: {last_exc}")

    def _sleep(self, attempt: int, hint: float | None = None) -> None:
        delay = hint if hint is not None else self.backoff * (2**attempt)
        time.sleep(min(delay, 10.0) * (0.8 + 0.4 * random.random()))

    def request(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str] | None = None,
        *,
        stream: bool = False,
        body=None,
        url: str | None = None,
    ):
        """A request to the registry API (``path`` under /v2/, or an absolute ``url`` the registry gave
        us, such as an upload location), authenticating as challenges demand."""
        ep = self.endpoint
        url = url or f"{ep.scheme}://{ep.host}{ep.path_prefix}{path}"
        headers = dict(headers or {})
        for _i in range(3):
            auth = self.auth.header_for(self, ep.host, scope)
            if auth:
                headers["Authorization"] = auth
            status, rheaders, body_or_stream = self.request_url(
                method, url, headers, trusted_host=ep.host, stream=stream, body=body
            )
            if status == 401 and self.auth.challenged(ep.host, rheaders.get("www-authenticate")):
                if isinstance(body_or_stream, BlobStream):
                    body_or_stream.close()
                continue
            return status, rheaders, body_or_stream
        return status, rheaders, body_or_stream

    # registry API

    def ping(self) -> None:
        status, rheaders, _body = self.request_url("GET", f"{self.endpoint.url}/v2/", trusted_host=self.endpoint.host)
        if status == 401:
            self.auth.challenged(self.endpoint.host, rheaders.get("www-authenticate"))
        elif status != 200:
            raise RegistryError(f"{self.endpoint.host} does not look like a registry (GET /v2/ -> {status})")

    def get_manifest(self, repo: str, reference: str, accept: Iterable[str] = MANIFEST_ACCEPT):
        """Return (body bytes, media type, Docker-Content-Digest header or None)."""
        scope = f"repository:{repo}:pull"
        status, rheaders, body = self.request(
            "GET", f"/v2/{repo}/manifests/{reference}", scope, {"Accept": ", ".join(accept)}
        )
        if status == 200:
            media = rheaders.get("content-type", "").split(";")[0].strip()
            return body, media, rheaders.get("docker-content-digest")
        raise self._error(
            status,
            body,
            f"manifest for {repo}:{reference}" if ":" not in reference else f"manifest {reference} of {repo}",
        )

    def open_blob(self, repo: str, digest: str, size: int | None = None) -> BlobStream:
        """A blob's body as a stream, bounded by ``size`` (the descriptor's) when given."""
        scope = f"repository:{repo}:pull"
        status, _rheaders, body = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope, stream=True)
        if status == 200:
            body.expect(size, f"blob {digest}")
            return body
        raise self._error(status, body, f"blob {digest} of {repo}")

    def fetch_blob(self, repo: str, digest: str, max_size: int = MAX_MANIFEST_SIZE, size: int | None = None) -> bytes:
        """A small blob (config), fully read. The caller verifies the digest."""
        if size is not None and size > max_size:
            raise IntegrityError(f"blob {digest}: its descriptor says {size} bytes, more than the {max_size} allowed")
        with self.open_blob(repo, digest, size) as stream:
            chunks, total = [], 0
            while data := stream.read(1 << 16):
                total += len(data)
                if total > max_size:
                    raise RegistryError(f"blob {digest} is larger than {max_size} bytes")
                chunks.append(data)
        return b"".join(chunks)

    # push side

    def blob_exists(self, repo: str, digest: str) -> bool:
        status, _h, _b = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull,push")
        return status == 200

    def start_upload(self, repo: str, mount: str | None = None, from_repo: str | None = None) -> str | None:
        """Begin a blob upload; with ``mount``/``from_repo`` try a cross-repository mount first.

        Returns the upload URL, or None when the registry mounted the blob (nothing to send).
        """
        scope = f"repository:{repo}:pull,push"
        path = f"/v2/{repo}/blobs/uploads/"
        if mount and from_repo:
            scope += f" repository:{from_repo}:pull"
            path += "?" + urllib.parse.urlencode({"mount": mount, "from": from_repo})
        status, rheaders, body = self.request("POST", path, scope, {"Content-Length": "0"}, body=b"")
        if status == 201 and mount:
            return None
        if status != 202 or not rheaders.get("location"):
            raise self._error(status, body, f"blob upload to {repo}", push=True)
        return urllib.parse.urljoin(f"{self.endpoint.url}{path}", rheaders["location"])

    def finish_upload(self, repo: str, location: str, digest: str, data, size: int) -> None:
        """Send the whole blob (``data``: bytes or a seekable file) in one PUT."""
        sep = "&" if "?" in location else "?"
        url = location + sep + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        status, _h, body = self.request("PUT", "", f"repository:{repo}:pull,push", headers, body=data, url=url)
        if status not in (201, 204):
            raise self._error(status, body, f"blob {digest} upload to {repo}", push=True)

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        headers = {"Content-Type": media_type, "Content-Length": str(len(data))}
        status, rheaders, body = self.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", f"repository:{repo}:pull,push", headers, body=data
        )
        if status not in (200, 201):
            raise self._error(status, body, f"manifest {repo}:{reference}", push=True)
        return rheaders.get("docker-content-digest", "")

    def check_login(self) -> None:
        """Authenticate against the registry as it demands (GET /v2/), failing on bad credentials."""
        status, _h, body = self.request("GET", "/v2/", "")
        if status in (401, 403):
            raise RegistryError(f"login to {self.endpoint.host} failed: unauthorized: incorrect username or password")
        if status != 200:
            raise self._error(status, body, "login")

    def _error(self, status: int, body, what: str, push: bool = False) -> Exception:
        if isinstance(body, BlobStream):
            body.close()
            body = b""
        code, message = _registry_error_detail(body)
        detail = f"{code.lower().replace('_', ' ')}: {message}" if code else f"HTTP {status}"
        if not push and (status == 404 or code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN")):
            return ImageNotFound(f"{what} not found: {detail}")
        if status in (401, 403) and push:
            return RegistryError(f"denied: requested access to {what} is denied: {detail}")
        if status in (401, 403):
            return RegistryError(
                f"pull access denied for {what}, repository does not exist or may require authorization: {detail}"
            )
        return RegistryError(f"error fetching {what} from {self.endpoint.host}: {detail}")


def _registry_error_detail(body) -> tuple[str, str]:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
        if errors:
            return str(errors[0].get("code", "")), str(errors[0].get("message", ""))
    except (ValueError, AttributeError):
        pass
    return "", ""
