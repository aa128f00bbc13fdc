#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_info
short_description: Gather facts about the pycontainer engine on a host
version_added: 0.1.0
description:
  - Returns the engine's C(info) (as C(docker info --format json) shows it), its disk usage as numbers, and on
    request the lists of containers and images, as the fact C(pycontainer).
  - Read-only, it never changes anything.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  containers:
    description:
      - Also list containers (all of them, like C(ps -a)).
    type: bool
    default: false
  containers_filters:
    description:
      - Only containers matching these Docker filters (C(name), C(label), C(status), C(id)), as a dict; list
        values are alternatives.
    type: dict
  images:
    description:
      - Also list images.
    type: bool
    default: false
  disk_usage:
    description:
      - Include C(df), the engine's disk usage per kind, in bytes.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Reads state only; there is nothing to diff.
  idempotent:
    support: full
    description: It never changes anything.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Gather engine facts
  pycontainer.engine.pycontainer_info:

- name: Report the engine's version and running containers
  ansible.builtin.debug:
    msg: "{{ ansible_facts.pycontainer.info.ServerVersion }}: {{ ansible_facts.pycontainer.info.ContainersRunning }}"

- name: List the running containers labelled tier=web
  pycontainer.engine.pycontainer_info:
    containers: true
    containers_filters:
      status: running
      label: tier=web
"""

RETURN = r"""
ansible_facts:
  description: Facts set on the host.
  returned: always
  type: dict
  contains:
    pycontainer:
      description: The engine's facts.
      type: dict
      contains:
        info:
          description: Docker's C(/info) fields, measured on the host (C(CgroupVersion), C(NCPU), C(MemTotal)...).
          type: dict
        df:
          description: Disk usage per kind (C(Images), C(Containers), C(Volumes), C(BuildCache)), each with
            C(TotalCount), C(Active), C(Size) and C(Reclaimable) in bytes.
          type: dict
          returned: when O(disk_usage=true)
        containers:
          description: Containers as C(ps --format json) rows.
          type: list
          elements: dict
          returned: when O(containers=true)
        images:
          description: Images as C(images --format json) rows.
          type: list
          elements: dict
          returned: when O(images=true)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, info = engine_modules("ansible.glue", "ansible.info")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            containers={"type": "bool", "default": False},
            containers_filters={"type": "dict"},
            images={"type": "bool", "default": False},
            disk_usage={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: info.gather_facts(service, module.params))


if __name__ == "__main__":
    main()
