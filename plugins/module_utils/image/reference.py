"""Image references, normalised the way Docker does (github.com/distribution/reference).

``busybox`` -> ``docker.io/library/busybox:latest``; ``localhost:5000/a/b`` keeps its domain; a digest
pins the content and suppresses the implicit ``latest`` tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# The grammar of distribution/reference/regexp.go.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_ANCHORED_ID_RE = re.compile(r"^[a-f0-9]{64}$")

# Digest algorithms whose hex length we know; others are rejected (we could not verify them anyway).
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        return self._qualified(self.name)

    def _qualified(self, name: str) -> str:
        """``name`` followed by the tag and the digest this reference carries."""
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Docker's short repository name: ``busybox``, ``user/app``, ``127.0.0.1:5000/x/y``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX) :]:
                path = path[len(OFFICIAL_REPO_PREFIX) :]
            return path
        return self.name

    @property
    def familiar(self) -> str:
        return self._qualified(self.familiar_name)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)


def validate_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest format: {digest!r}")
    algo, _sep, hexpart = digest.partition(":")
    expected = DIGEST_HEX_LENGTHS.get(algo)
    if expected is None:
        raise InvalidArgument(f"unsupported digest algorithm: {digest!r}")
    if len(hexpart) != expected or hexpart != hexpart.lower():
        raise InvalidArgument(f"invalid checksum digest length or format: {digest!r}")
    return digest


def _split_domain(name: str) -> tuple[str, str]:
    # A first component is a domain only if it looks like one: has a dot or port, or is localhost,
    # or has upper case (which a path may not). Same rule as distribution's splitDockerDomain.
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str) -> Reference:
    """Parse and normalise an image reference; raise InvalidArgument with Docker's wording if invalid."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument("invalid reference format: empty image reference")
    original = text
    if _ANCHORED_ID_RE.match(text):
        raise InvalidArgument(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    digest: str | None = None
    if "@" in text:
        text, _sep, digest = text.rpartition("@")
        if not text:
            raise InvalidArgument(f"invalid reference format: {original!r} has no repository name")
        validate_digest(digest)
    tag: str | None = None
    # A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    last_colon, last_slash = text.rfind(":"), text.rfind("/")
    if last_colon > last_slash:
        text, tag = text[:last_colon], text[last_colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid reference format: invalid tag {tag!r} in {original!r}")
    if not text:
        raise InvalidArgument(f"invalid reference format: {original!r}")
    domain, path = _split_domain(text)
    if not _DOMAIN_RE.match(domain):
        raise InvalidArgument(f"invalid reference format: invalid registry host {domain!r} in {original!r}")
    if path != path.lower() and _PATH_RE.match(path.lower()):
        raise InvalidArgument(f"invalid reference format: repository name ({path}) must be lowercase")
    if not _PATH_RE.match(path):
        raise InvalidArgument(f"invalid reference format: invalid repository name in {original!r}")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument("invalid reference format: repository name must not be more than 255 characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def familiar_from_qualified(name: str) -> str:
    """How Docker shows a stored, fully qualified name: 'docker.io/library/busybox:latest' -> 'busybox:latest'
    (also for name@digest); a name that does not parse is shown as it is."""
    try:
        return parse_reference(name).familiar
    except InvalidArgument:
        return name


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port)."""
    import ipaddress

    hostname = split_host_port(host)[0]
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def split_host_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        end = host.find("]")
        hostname, rest = host[1:end], host[end + 1 :]
        return hostname, int(rest[1:]) if rest.startswith(":") else None
    if host.count(":") == 1:
        hostname, _sep, port = host.partition(":")
        return hostname, int(port) if port.isdigit() else None
    return host, None
