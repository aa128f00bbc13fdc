#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_prune
short_description: Remove unused containers, networks, volumes and images from the pycontainer engine
version_added: 0.1.0
description:
  - Prunes each kind asked for, as C(docker container prune), C(network prune), C(volume prune) and
    C(image prune) do, and returns what was deleted and the space reclaimed per kind.
  - Nothing in use is ever removed; only one prune runs at a time on an engine root.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  containers:
    description: Remove stopped containers.
    type: bool
    default: false
  containers_filters:
    description: Docker's prune filters for containers (C(until), C(label), C(label!)) as a dict.
    type: dict
  networks:
    description: Remove user-defined networks no container uses.
    type: bool
    default: false
  networks_filters:
    description: Docker's prune filters for networks (C(until), C(label), C(label!)).
    type: dict
  volumes:
    description: Remove anonymous volumes no container uses.
    type: bool
    default: false
  volumes_filters:
    description: Docker's prune filters for volumes (C(label), C(label!), C(all)).
    type: dict
  images:
    description: Remove dangling images (every unused image with O(images_filters) C(dangling=false)).
    type: bool
    default: false
  images_filters:
    description: Docker's prune filters for images (C(dangling), C(until), C(label), C(label!)).
    type: dict
attributes:
  check_mode:
    support: full
    description: Lists what would be removed, removes nothing, and predicts C(changed).
  diff_mode:
    support: none
    description: No diff; the lists of removed objects (such as RV(containers)) say what changed.
  idempotent:
    support: full
    description: A second run finds nothing left to prune.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Remove stopped containers and dangling images
  pycontainer.engine.pycontainer_prune:
    containers: true
    images: true

- name: Remove every unused image older than a day
  pycontainer.engine.pycontainer_prune:
    images: true
    images_filters:
      dangling: false
      until: 24h
"""

RETURN = r"""
containers:
  description: IDs of the containers removed (or that would be, in check mode).
  returned: when O(containers=true)
  type: list
  elements: str
containers_space_reclaimed:
  description: Bytes freed by removing containers.
  returned: when O(containers=true), not in check mode
  type: int
networks:
  description: Names of the networks removed.
  returned: when O(networks=true)
  type: list
  elements: str
volumes:
  description: Names of the volumes removed.
  returned: when O(volumes=true)
  type: list
  elements: str
volumes_space_reclaimed:
  description: Bytes freed by removing volumes.
  returned: when O(volumes=true), not in check mode
  type: int
images:
  description: IDs of the images (and layers) deleted.
  returned: when O(images=true)
  type: list
  elements: str
images_space_reclaimed:
  description: Bytes freed by removing images.
  returned: when O(images=true), not in check mode
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, prune = engine_modules("ansible.glue", "ansible.prune")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            containers={"type": "bool", "default": False},
            containers_filters={"type": "dict"},
            networks={"type": "bool", "default": False},
            networks_filters={"type": "dict"},
            volumes={"type": "bool", "default": False},
            volumes_filters={"type": "dict"},
            images={"type": "bool", "default": False},
            images_filters={"type": "dict"},
        ),
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: prune.prune(service, module.params, module.check_mode))


if __name__ == "__main__":
    main()
