#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_volume
short_description: Manage volumes of the pycontainer engine
version_added: 0.1.0
description:
  - Creates and removes named volumes of the daemonless pycontainer engine, like C(docker volume create) and
    C(docker volume rm). Options and rules follow M(community.docker.docker_volume).
  - Volumes live under the engine root, in C(volumes/<name>/_data), as Docker keeps them.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  volume_name:
    description:
      - Name of the volume (at least two characters of V([a-zA-Z0-9_.-]), starting with a letter or digit).
    type: str
    required: true
    aliases: [name]
  driver:
    description:
      - Volume driver. Only V(local) is supported.
    type: str
    default: local
  driver_options:
    description:
      - Driver options, as C(docker volume create -o). The local driver of this engine takes none yet; setting
        any fails.
    type: dict
    default: {}
    aliases: [driver_opts]
  labels:
    description:
      - Labels of the volume.
    type: dict
  recreate:
    description:
      - V(never) keeps an existing volume as it is; V(options-changed) removes and recreates it when
        O(driver), O(driver_options) or O(labels) differ; V(always) recreates it on every run.
      - Recreating deletes the volume's content, and fails while a container uses the volume.
    type: str
    choices: [always, never, options-changed]
    default: never
  state:
    description:
      - V(present) creates the volume when missing; V(absent) removes it (failing while a container uses it).
    type: str
    choices: [absent, present]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports what would be created or removed without doing it.
  diff_mode:
    support: full
    description: The diff shows the volume as C(docker volume inspect) before and after.
  idempotent:
    support: full
    description: A second run with the same options reports no change (except with O(recreate=always)).
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A volume for the database
  pycontainer.engine.pycontainer_volume:
    name: pgdata
    labels:
      app: db

- name: Remove it
  pycontainer.engine.pycontainer_volume:
    name: pgdata
    state: absent
"""

RETURN = r"""
volume:
  description: The volume as C(docker volume inspect) shows it; empty when removed.
  returned: success
  type: dict
  sample:
    Name: pgdata
    Driver: local
    Mountpoint: /var/lib/pycontainer/volumes/pgdata/_data
    Labels: {app: db}
    Options: null
    Scope: local
    CreatedAt: "2024-01-02T15:04:05Z"
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["Created volume pgdata"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, volume = engine_modules("ansible.glue", "ansible.volume")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            volume_name={"type": "str", "required": True, "aliases": ["name"]},
            driver={"type": "str", "default": "local"},
            driver_options={"type": "dict", "default": {}, "aliases": ["driver_opts"]},
            labels={"type": "dict"},
            recreate={"type": "str", "default": "never", "choices": ["always", "never", "options-changed"]},
            state={"type": "str", "default": "present", "choices": ["absent", "present"]},
        ),
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: volume.manage_volume(service, module.params, module.check_mode))


if __name__ == "__main__":
    main()
