"""The /etc/hosts and /etc/resolv.conf a container sees, as Docker writes them.

hosts: the localhost lines, ``--add-host`` entries, the container's own address and hostname, then (user
networks) every other member by name, aliases and short ID — rewritten in place as members come and go
(the file is bind-mounted: a rename would leave the container with the old inode).
resolv.conf: the host's, minus loopback nameservers (Google's resolvers when none is left, as Docker),
with ``--dns``/``--dns-search``/``--dns-option`` replacing the corresponding lines.
"""

from __future__ import annotations

import contextlib
import os

HOSTS_BASE = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def hosts_content(own: list[tuple[str, str]], extra_hosts: list[tuple[str, str]],
                  peers: list[tuple[str, list[str]]]) -> str:
    """``own``: (ip, hostname) per network; ``extra_hosts``: (name, ip); ``peers``: (ip, names)."""
    lines = [HOSTS_BASE.rstrip("\n")]
    lines += [f"{ip}\t{name}" for name, ip in extra_hosts]
    lines += [f"{ip}\t{hostname}" for ip, hostname in own]
    lines += [f"{ip}\t{' '.join(names)}" for ip, names in peers]
    return "\n".join(lines) + "\n"


def resolv_conf_content(host_text: str, dns: list[str], search: list[str], options: list[str]) -> str:
    lines: list[str] = []
    nameservers = 0
    for line in host_text.splitlines():
        words = line.split()
        key = words[0] if words else ""
        if key == "nameserver" and len(words) > 1:
            address = words[1]
            if dns or address.startswith("127.") or address == "::1":
                continue
            nameservers += 1
        elif (key in ("search", "domain") and search) or (key == "options" and options):
            continue
        lines.append(line)
    if dns:
        lines += [f"nameserver {d}" for d in dns]
    elif not nameservers:
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def write_in_place(path: str, content: str) -> None:
    """Rewrite ``path`` keeping its inode (a bind mount of it keeps showing the new content)."""
    with contextlib.suppress(FileNotFoundError), open(path, "r+") as f:
        f.write(content)
        f.truncate()
        return
    if os.path.isdir(os.path.dirname(path)):
        with open(path, "w") as f:
            f.write(content)


def parse_extra_host(item: str) -> tuple[str, str]:
    """ "name:ip" (Docker also accepts "name=ip"); the ip may be an IPv6 address or host-gateway."""
    from ..errors import InvalidArgument

    sep = "=" if "=" in item else ":"
    name, _sep, ip = item.partition(sep)
    ip = ip.strip("[]")
    if not name or not ip:
        raise InvalidArgument(f"invalid argument {item!r} for \"--add-host\" flag: bad format for add-host")
    return name, ip
