"""Port publishing specs (``-p``/``--publish``, module ``ports``) and how Docker shows published ports.

``parse_publish`` turns Docker's forms into PortBindings entries (``{"80/tcp": [{"HostIp", "HostPort"}]}``):
``80``, ``8080:80``, ``127.0.0.1:8080:80``, ``127.0.0.1::80``, ``8000-8010:80-90``, ``8000-8010:80``,
``80/udp``, ``[::1]:8080:80``. A HostPort of "" means "any port from the ephemeral range", "a-b" means "one
port of that range".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PublishedPort:
    """One host port forwarded to one container port (what is in effect while the container runs)."""

    proto: str
    host_ip: str        # "" = every host address (shown as 0.0.0.0)
    host_port: int
    container_port: int

    def to_dict(self) -> dict:
        return {"proto": self.proto, "host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port}

    @classmethod
    def from_dict(cls, d: dict) -> PublishedPort:
        return cls(d["proto"], d["host_ip"], int(d["host_port"]), int(d["container_port"]))


def _port_range(text: str, what: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    try:
        lo = int(first)
        hi = int(last) if sep else lo
    except ValueError:
        raise InvalidArgument(f"invalid {what} port: {text}") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or hi < lo:
        raise InvalidArgument(f"invalid {what} port: {text}")
    return lo, hi


def split_port_key(key: str) -> tuple[int, str]:
    """ "80/tcp" -> (80, "tcp"); a bare "80" is tcp."""
    port, _sep, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}")
    lo, hi = _port_range(port, "container")
    if lo != hi or lo == 0:
        raise InvalidArgument(f"invalid container port: {port}")
    return lo, proto


def parse_publish(spec: str) -> dict[str, list[dict[str, str]]]:
    """One ``-p`` value -> PortBindings entries."""
    text, _sep, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}")
    host_ip = ""
    if text.startswith("["):  # [IPv6]:host:container
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise InvalidArgument(f"invalid IP address in {spec!r}")
        host_ip, text = text[1:end], text[end + 2 :]
        parts = text.split(":")
        if len(parts) != 2:
            raise InvalidArgument(f"invalid port specification: {spec!r}")
        host_part, container_part = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            host_part, container_part = "", parts[0]
        elif len(parts) == 2:
            host_part, container_part = parts
        elif len(parts) == 3:
            host_ip, host_part, container_part = parts
        else:
            raise InvalidArgument(f"invalid port specification: {spec!r}")
    if host_ip:
        try:
            host_ip = str(ipaddress.ip_address(host_ip))
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {host_ip}") from None
        if host_ip == "0.0.0.0":
            host_ip = ""
    if not container_part:
        raise InvalidArgument(f"no port specified: {spec}")
    c_lo, c_hi = _port_range(container_part, "container")
    if c_lo == 0:
        raise InvalidArgument(f"invalid container port: {container_part}")
    h_lo = h_hi = 0
    if host_part:
        h_lo, h_hi = _port_range(host_part, "host")
    out: dict[str, list[dict[str, str]]] = {}
    count = c_hi - c_lo + 1
    if host_part and h_lo and (h_hi - h_lo + 1) != count and count != 1:
        raise InvalidArgument(f"invalid ranges specified for container and host Ports: {container_part} and "
                              f"{host_part}")
    for i in range(count):
        if not host_part or h_lo == 0:
            host_port = ""
        elif count == 1 and h_hi != h_lo:
            host_port = f"{h_lo}-{h_hi}"  # one port out of the range
        else:
            host_port = str(h_lo + i)
        out.setdefault(f"{c_lo + i}/{proto}", []).append({"HostIp": host_ip, "HostPort": host_port})
    return out


def merge_bindings(specs: list[str]) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        for key, values in parse_publish(str(spec)).items():
            bindings.setdefault(key, []).extend(values)
    return bindings


def display_host_ip(host_ip: str) -> str:
    if not host_ip:
        return "0.0.0.0"
    return f"[{host_ip}]" if ":" in host_ip else host_ip


def ports_column(ports: list[PublishedPort], exposed: list[str] = ()) -> str:
    """Docker's PORTS column: ``0.0.0.0:8000-8001->80-81/tcp, 53/udp`` (consecutive runs grouped)."""
    items: list[str] = []
    ordered = sorted(ports, key=lambda p: (p.host_ip, p.proto, p.container_port, p.host_port))
    i = 0
    while i < len(ordered):
        p = ordered[i]
        j = i
        while (j + 1 < len(ordered) and ordered[j + 1].proto == p.proto and ordered[j + 1].host_ip == p.host_ip
               and ordered[j + 1].container_port == ordered[j].container_port + 1
               and ordered[j + 1].host_port == ordered[j].host_port + 1):
            j += 1
        q = ordered[j]
        host = f"{p.host_port}" if i == j else f"{p.host_port}-{q.host_port}"
        ctr = f"{p.container_port}" if i == j else f"{p.container_port}-{q.container_port}"
        items.append(f"{display_host_ip(p.host_ip)}:{host}->{ctr}/{p.proto}")
        i = j + 1
    published = {(p.container_port, p.proto) for p in ports}
    for key in sorted(set(exposed)):
        port, proto = split_port_key(key)
        if (port, proto) not in published:
            items.append(f"{port}/{proto}")
    return ", ".join(items)


def ports_view(ports: list[PublishedPort], exposed: list[str] = ()) -> dict[str, list[dict[str, str]] | None]:
    """inspect's NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}."""
    view: dict[str, list[dict[str, str]] | None] = {}
    for key in exposed:
        port, proto = split_port_key(key)
        view[f"{port}/{proto}"] = None
    for p in sorted(ports, key=lambda p: (p.container_port, p.proto, p.host_port)):
        entry = view.get(f"{p.container_port}/{p.proto}") or []
        entry.append({"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
        view[f"{p.container_port}/{p.proto}"] = entry
    return view


def ports_column_from_view(view: dict | None) -> str:
    """The PORTS column from inspect's NetworkSettings.Ports (what the container state keeps)."""
    ports, exposed = [], []
    for key, bindings in (view or {}).items():
        port, proto = split_port_key(key)
        if not bindings:
            exposed.append(key)
        for b in bindings or []:
            host_ip = "" if b.get("HostIp") in ("", "0.0.0.0") else b["HostIp"]
            ports.append(PublishedPort(proto, host_ip, int(b["HostPort"]), port))
    return ports_column(ports, exposed)
