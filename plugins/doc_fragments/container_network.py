# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The networking options of the pycontainer module (as community.docker.docker_container names them).
    DOCUMENTATION = r"""
options:
  published_ports:
    description:
      - Ports to publish, in C(docker run -p) forms - V(8080:80), V(127.0.0.1:8080:80), V(127.0.0.1::80),
        V(80) (a random host port), V(8000-8010:80-90), V(53/udp), V([::1]:8080:80).
      - A published port answers at 127.0.0.1, at the host's addresses, from other hosts and from containers.
    type: list
    elements: str
    aliases: [ports]
  publish_all_ports:
    description:
      - Publish every port the image exposes (and O(exposed_ports)) on random host ports, as C(docker run -P).
      - When unset nothing is published this way, and an existing container's setting is not compared.
    type: bool
  exposed_ports:
    description:
      - Extra ports to expose, as C(docker run --expose).
    type: list
    elements: str
    aliases: [exposed, expose]
  networks:
    description:
      - Networks to connect the container to (the first one if O(network_mode) is not set).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the network.
        type: str
        required: true
      ipv4_address:
        description: Fixed address on that network (user-defined networks only).
        type: str
      aliases:
        description: Names the other members of the network resolve to this container.
        type: list
        elements: str
  dns_servers:
    description:
      - Nameservers for the container's C(/etc/resolv.conf), instead of the host's.
    type: list
    elements: str
  dns_search_domains:
    description:
      - Search domains for the container's C(/etc/resolv.conf).
    type: list
    elements: str
  dns_opts:
    description:
      - Resolver options for the container's C(/etc/resolv.conf).
    type: list
    elements: str
  etc_hosts:
    description:
      - Extra C(/etc/hosts) entries, name to address (V(host-gateway) means the network's gateway), as
        C(docker run --add-host).
    type: dict
"""
