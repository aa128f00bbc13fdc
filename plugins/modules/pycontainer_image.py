#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_image
short_description: Pull images into the pycontainer engine's store
version_added: 0.1.0
description:
  - Makes sure an image is present in the engine's local store, pulling it from its registry when missing
    (or always, with O(pull=always)).
  - The engine is daemonless and bundled with the collection; nothing but Python is needed on the target.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  name:
    description:
      - Image reference, as for C(docker pull), for example V(busybox), V(busybox:1.36),
        V(registry.example.com:5000/team/app:v2) or V(name@sha256:...).
    type: str
    required: true
  tag:
    description:
      - Tag to use when O(name) has none.
    type: str
  state:
    description:
      - V(present) makes sure the image is in the store.
    type: str
    choices: [present]
    default: present
  pull:
    description:
      - V(missing) pulls only when the image is not in the store; V(always) asks the registry every time
        and reports a change only when the image ID changed.
    type: str
    choices: [missing, always]
    default: missing
  platform:
    description:
      - Platform to pick from a multi-platform image, as C(os/arch[/variant]); defaults to the target's.
    type: str
attributes:
  check_mode:
    support: full
    description: In check mode an image missing from the store is reported as a change and not pulled.
  diff_mode:
    support: full
    description: The diff shows the image ID before and after.
  idempotent:
    support: full
    description: A second run with the same options reports no change.
author:
  - pycontainer developers
"""

EXAMPLES = r"""
- name: Pull busybox
  pycontainer.engine.pycontainer_image:
    name: busybox

- name: Pull a pinned tag from a private registry, checking for a newer image every run
  pycontainer.engine.pycontainer_image:
    name: registry.example.com:5000/team/app
    tag: v2
    pull: always
"""

RETURN = r"""
image:
  description: The image as C(docker image inspect) shows it.
  returned: success, unless in check mode and the image is missing
  type: dict
  sample:
    Id: sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741
    RepoTags: ["busybox:latest"]
    Size: 2205184
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["Pulled image busybox:latest"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible_image import ensure_image_present
from ansible_collections.pycontainer.engine.plugins.module_utils.module_glue import (
    engine_argument_spec,
    run_module,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=engine_argument_spec(
            name={"type": "str", "required": True},
            tag={"type": "str"},
            state={"type": "str", "default": "present", "choices": ["present"]},
            pull={"type": "str", "default": "missing", "choices": ["missing", "always"]},
            platform={"type": "str"},
        ),
        supports_check_mode=True,
    )
    run_module(module, lambda engine: ensure_image_present(engine, module.params, module.check_mode))


if __name__ == "__main__":
    main()
