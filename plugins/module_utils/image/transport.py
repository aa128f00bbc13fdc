"""Where the registry client may talk, and how it connects: endpoints and the policy against a hostile registry.

``Endpoint``: where to talk to (scheme, host, TLS policy, mirror or not); ``endpoints_for`` builds the ordered list
for a reference domain (docker.io mirrors first). ``check_redirect`` and ``check_realm``: a redirect or token realm
may not downgrade HTTPS to HTTP, may not lead from a non-loopback registry to loopback or link-local addresses
(checked on the name here and again on the connected peer by ``PeerCheckedHTTPConnection``, so DNS cannot smuggle
it in), and Basic credentials go to a token realm only over HTTPS or on the registry's own plain HTTP host.
The client itself (retries, redirects, streamed bodies) is ``registry.py``.
"""

from __future__ import annotations

import http.client
import ipaddress
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidArgument, RegistryError
from .reference import DEFAULT_DOMAIN, is_loopback_host, split_host_port

DOCKER_HUB_REGISTRY = "registry-1.docker.io"


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


# -- connections -----------------------------------------------------------------------------------------


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


class PeerCheckedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP, refusing a local peer when ``local_ok`` is False (set by the client per host)."""

    local_ok = True

    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class PeerCheckedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS with the same peer check, made before the TLS handshake."""

    local_ok = True

    def connect(self) -> None:
        # http.client.HTTPSConnection.connect, with the peer checked between the TCP connect and TLS.
        http.client.HTTPConnection.connect(self)
        _check_peer(self)
        # pylint: disable-next=protected-access
        server_hostname = self._tunnel_host or self.host
        # pylint: disable-next=protected-access
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)
