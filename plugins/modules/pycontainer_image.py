#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_image
short_description: Manage images in the pycontainer engine's store (pull, load, import, push, remove)
version_added: 0.1.0
description:
  - Makes sure an image is present in the engine's local store (pulled from its registry, loaded from a
    docker-archive, or imported from a root filesystem tarball), optionally pushes it, or removes it.
  - C(changed) is reported only when the local image ID behind the name changed.
  - Registry credentials come from the engine's auth file (C(pycontainer login)); they never appear in the
    module's output.
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
      - V(present) makes sure the image is in the store; V(absent) removes the name (and the image when
        no other name is left, as C(docker rmi)).
    type: str
    choices: [present, absent]
    default: present
  source:
    description:
      - Where a missing image comes from. V(pull) from its registry, V(load) from the docker-archive at
        O(path) (as C(docker load)), V(import) from the root filesystem tarball at O(path) (as C(docker import)).
    type: str
    choices: [pull, load, import]
    default: pull
  path:
    description:
      - The archive or tarball for O(source=load) and O(source=import).
    type: path
  pull:
    description:
      - With O(source=pull), V(missing) pulls only when the image is not in the store; V(always) asks the
        registry every time and reports a change only when the image ID changed.
    type: str
    choices: [missing, always]
    default: missing
  force:
    description:
      - With O(state=present), pull, load or import even when the image is present.
      - With O(state=absent), remove the image even when a container uses it (the name goes; the image
        stays, untagged, until no container needs it).
    type: bool
    default: false
  push:
    description:
      - Push the image to its registry after making sure it is present (not done in check mode).
    type: bool
    default: false
  platform:
    description:
      - Platform to pick from a multi-platform image, as C(os/arch[/variant]); defaults to the target's.
    type: str
attributes:
  check_mode:
    support: full
    description: Predicts the image ID without writing; with O(source=pull) it asks the registry for the manifest.
  diff_mode:
    support: full
    description: The diff shows the image ID before and after.
  idempotent:
    support: full
    description: A second run with the same options reports no change.
author:
  - pycontainer developers (!UNKNOWN)
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

- name: Load an image saved with docker save
  pycontainer.engine.pycontainer_image:
    name: app:v2
    source: load
    path: /srv/images/app-v2.tar

- name: Make an image of a root filesystem and push it
  pycontainer.engine.pycontainer_image:
    name: registry.example.com:5000/team/rootfs:1
    source: import
    path: /srv/rootfs.tar.gz
    push: true

- name: Remove an image
  pycontainer.engine.pycontainer_image:
    name: busybox
    state: absent
"""

RETURN = r"""
image:
  description: The image as C(docker image inspect) shows it.
  returned: when the image is present after the task (not in check mode when it would be fetched)
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
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, image = engine_modules("ansible.glue", "ansible.image")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            name={"type": "str", "required": True},
            tag={"type": "str"},
            state={"type": "str", "default": "present", "choices": ["present", "absent"]},
            source={"type": "str", "default": "pull", "choices": ["pull", "load", "import"]},
            path={"type": "path"},
            pull={"type": "str", "default": "missing", "choices": ["missing", "always"]},
            force={"type": "bool", "default": False},
            push={"type": "bool", "default": False},
            platform={"type": "str"},
        ),
        required_if=[("source", "load", ["path"]), ("source", "import", ["path"])],
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: image.ensure_image(service, module.params, module.check_mode))


if __name__ == "__main__":
    main()
