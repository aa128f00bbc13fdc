"""A small OCI distribution (registry v2) client on http.client: no third-party HTTP stack.

Design:
- ``transport.Endpoint``/``endpoints_for``: where to talk to; ``transport`` also holds the policy against a
  hostile registry (``check_redirect``, ``check_realm``, the connected peer's check).
- ``challenge.Authenticator``: answers ``WWW-Authenticate`` challenges (anonymous, Bearer, Basic).
- ``RegistryClient`` (here): keep-alive connections per (scheme, host), retries with backoff on resets and
  5xx, redirects followed (at most ``_MAX_REDIRECTS`` hops) without leaking Authorization to other hosts,
  streamed blob bodies; manifests are bounded (``MAX_MANIFEST_SIZE``) and blob bodies by their descriptor's size.
"""

from __future__ import annotations

import errno
import http.client
import json
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable

from ..errors import ImageNotFound, IntegrityError, RegistryError
from ..version import ENGINE_VERSION
from .challenge import Authenticator
from .transport import (
    Endpoint,
    LocalPeerRefused,
    PeerCheckedHTTPConnection,
    PeerCheckedHTTPSConnection,
    check_redirect,
    internal_host,
)

USER_AGENT = f"pycontainer/{ENGINE_VERSION}"

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
                conn = PeerCheckedHTTPSConnection(host, timeout=self.timeout, context=ctx)
            else:
                conn = PeerCheckedHTTPConnection(host, timeout=self.timeout)
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
        raise self.response_error(
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
        raise self.response_error(status, body, f"blob {digest} of {repo}")

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
            raise self.response_error(status, body, f"blob upload to {repo}", push=True)
        return urllib.parse.urljoin(f"{self.endpoint.url}{path}", rheaders["location"])

    def finish_upload(self, repo: str, location: str, digest: str, data, size: int) -> None:
        """Send the whole blob (``data``: bytes or a seekable file) in one PUT."""
        sep = "&" if "?" in location else "?"
        url = location + sep + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        status, _h, body = self.request("PUT", "", f"repository:{repo}:pull,push", headers, body=data, url=url)
        if status not in (201, 204):
            raise self.response_error(status, body, f"blob {digest} upload to {repo}", push=True)

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        headers = {"Content-Type": media_type, "Content-Length": str(len(data))}
        status, rheaders, body = self.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", f"repository:{repo}:pull,push", headers, body=data
        )
        if status not in (200, 201):
            raise self.response_error(status, body, f"manifest {repo}:{reference}", push=True)
        return rheaders.get("docker-content-digest", "")

    def check_login(self) -> None:
        """Authenticate against the registry as it demands (GET /v2/), failing on bad credentials."""
        status, _h, body = self.request("GET", "/v2/", "")
        if status in (401, 403):
            raise RegistryError(f"login to {self.endpoint.host} failed: unauthorized: incorrect username or password")
        if status != 200:
            raise self.response_error(status, body, "login")

    def response_error(self, status: int, body, what: str, push: bool = False) -> Exception:
        """The typed error for a registry's failed answer about ``what`` (Docker's wording; closes a stream)."""
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
