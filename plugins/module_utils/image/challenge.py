"""Registry authentication: ``WWW-Authenticate`` challenges turned into Authorization headers.

Anonymous, Bearer tokens (cached per realm/service/scope) and Basic are handled; credentials come from a pluggable
callable, so a credential store (config.json, Ansible params) only supplies ``(user, password)``. Credentials go
to a token realm only where ``transport.check_realm`` allows.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import RegistryError
from .transport import Endpoint, check_realm

Credentials = Callable[[str], "tuple[str, str] | None"]


class TokenClient(Protocol):
    """What fetching a token needs of the registry client (``registry.RegistryClient``)."""

    endpoint: Endpoint

    def request_url(self, method: str, url: str, headers: dict[str, str] | None = None, *,
                    trusted_host: str | None = None): ...


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

    def header_for(self, client: TokenClient, host: str, scope: str) -> str | None:
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

    def _bearer_token(self, client: TokenClient, host: str, params: dict[str, str], scope: str) -> str:
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
