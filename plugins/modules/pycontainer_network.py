#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_network
short_description: Manage bridge networks of the pycontainer engine
version_added: 0.1.0
description:
  - Creates and removes user-defined bridge networks of the daemonless pycontainer engine, like
    C(docker network create) and C(docker network rm). Options follow M(community.docker.docker_network).
  - Containers on the same user-defined network reach each other by name and alias.
  - The network's Linux bridge (C(br-<id>)) exists while containers are attached to it.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  name:
    description:
      - Name of the network.
    type: str
    required: true
    aliases: [network_name]
  driver:
    description:
      - Network driver. Only V(bridge) is supported.
    type: str
    default: bridge
  subnet:
    description:
      - IPv4 subnet in CIDR form, for example V(10.120.0.0/24). Chosen from the engine config's C(network_pool)
        when not set.
    type: str
  gateway:
    description:
      - Gateway address (the bridge's own address). The subnet's first address when not set.
    type: str
  internal:
    description:
      - No outbound masquerading for the network's containers.
    type: bool
  labels:
    description:
      - Labels of the network.
    type: dict
  force:
    description:
      - With O(state=absent), or when the network must be recreated, first disconnect the containers attached to
        it (as C(docker network disconnect --force)); without it, a network in use is not removed and the task
        fails.
    type: bool
    default: false
  state:
    description:
      - V(present) creates the network when missing, and recreates it when O(subnet), O(gateway), O(internal)
        or O(labels) differ (failing while containers use it unless O(force)); V(absent) removes it.
    type: str
    choices: [absent, present]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports what would be created or removed without doing it.
  diff_mode:
    support: full
    description: The diff shows the network as C(docker network inspect) before and after.
  idempotent:
    support: full
    description: A second run with the same options reports no change.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A network for the application
  pycontainer.engine.pycontainer_network:
    name: appnet
    subnet: 10.120.0.0/24

- name: A container on it, reachable as "db" and "database"
  pycontainer.engine.pycontainer:
    name: db
    image: busybox
    command: sleep infinity
    networks:
      - name: appnet
        aliases: [database]

- name: Remove the network, disconnecting the container first
  pycontainer.engine.pycontainer_network:
    name: appnet
    state: absent
    force: true
"""

RETURN = r"""
network:
  description: The network as C(docker network inspect) shows it; empty when removed.
  returned: success
  type: dict
  sample:
    Name: appnet
    Id: 3c4f...
    Driver: bridge
    Scope: local
    IPAM: {Driver: default, Config: [{Subnet: 10.120.0.0/24, Gateway: 10.120.0.1}]}
    Options: {com.docker.network.bridge.name: br-3c4f5a6b7c8d}
    Containers: {}
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["Created network appnet"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, network = engine_modules("ansible.glue", "ansible.network")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            name={"type": "str", "required": True, "aliases": ["network_name"]},
            driver={"type": "str", "default": "bridge"},
            subnet={"type": "str"},
            gateway={"type": "str"},
            internal={"type": "bool"},
            labels={"type": "dict"},
            force={"type": "bool", "default": False},
            state={"type": "str", "default": "present", "choices": ["absent", "present"]},
        ),
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: network.manage_network(service, module.params, module.check_mode))


if __name__ == "__main__":
    main()
