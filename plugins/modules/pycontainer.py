#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer
short_description: Manage containers with the bundled pycontainer engine
version_added: 0.1.0
description:
  - Creates, runs and removes named containers with the daemonless pycontainer engine, which travels with
    the module. The image is pulled first when missing.
  - This version runs containers to completion (O(detach=false)) and removes them (O(state=absent));
    detached, supervised containers come with the engine's runtime.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  name:
    description:
      - Name of the container. Names are unique on a host, as with Docker.
    type: str
    required: true
  image:
    description:
      - Image reference, as for C(docker run). Required to create a container.
    type: str
  command:
    description:
      - Command to run, replacing the image's C(Cmd). A string is split as a shell would; a list is used as
        it is.
    type: raw
  entrypoint:
    description:
      - Replaces the image's C(Entrypoint) (and, as with Docker, its C(Cmd)).
    type: list
    elements: str
  env:
    description:
      - Environment variables, added to (and overriding) the image's.
    type: dict
  working_dir:
    description:
      - Working directory of the container's process.
    type: str
  user:
    description:
      - C(user[:group]), names resolved from the image's C(/etc/passwd) and C(/etc/group).
    type: str
  hostname:
    description:
      - Hostname inside the container; defaults to the short container ID.
    type: str
  labels:
    description:
      - Labels to set on the container.
    type: dict
  network_mode:
    description:
      - V(none) gives the container its own network namespace with only C(lo); V(host) shares the host's.
    type: str
    choices: [none, host]
    default: none
  pull:
    description:
      - When to pull the image. V(missing) pulls only when it is not in the store.
    type: str
    choices: [missing, always, never]
    default: missing
  detach:
    description:
      - V(false) runs the container to completion and returns its output and exit status; a non-zero status
        fails the task.
    type: bool
    default: true
  cleanup:
    description:
      - With O(detach=false), remove the container once it has exited.
    type: bool
    default: false
  state:
    description:
      - V(started) runs the container; V(absent) removes it (stopping it first if it runs).
    type: str
    choices: [started, absent]
    default: started
attributes:
  check_mode:
    support: full
    description: Nothing is created, pulled or removed; RV(actions) lists what would be done.
  diff_mode:
    support: full
    description: Shows the container's inspect output before and after.
  idempotent:
    support: partial
    details: O(state=absent) is idempotent; running a command to completion (O(detach=false)) always acts.
author:
  - pycontainer developers
"""

EXAMPLES = r"""
- name: Say hello from a container
  pycontainer.engine.pycontainer:
    name: hello
    image: busybox
    command: echo 'Hello World'
    detach: false
  register: hello

- name: Show what the container printed
  ansible.builtin.debug:
    msg: "{{ hello.output }}"

- name: Remove it
  pycontainer.engine.pycontainer:
    name: hello
    state: absent
"""

RETURN = r"""
container:
  description: The container as C(docker inspect) shows it, with C(Output) for O(detach=false).
  returned: success, unless in check mode or O(state=absent)
  type: dict
output:
  description: What the container printed on stdout and stderr, interleaved as written.
  returned: when O(detach=false)
  type: str
  sample: "Hello World\n"
status:
  description: The container's exit status.
  returned: when O(detach=false)
  type: int
  sample: 0
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["Created container hello", "Started container hello"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible_container import manage_container
from ansible_collections.pycontainer.engine.plugins.module_utils.module_glue import (
    engine_argument_spec,
    run_module,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=engine_argument_spec(
            name={"type": "str", "required": True},
            image={"type": "str"},
            command={"type": "raw"},
            entrypoint={"type": "list", "elements": "str"},
            env={"type": "dict"},
            working_dir={"type": "str"},
            user={"type": "str"},
            hostname={"type": "str"},
            labels={"type": "dict"},
            network_mode={"type": "str", "default": "none", "choices": ["none", "host"]},
            pull={"type": "str", "default": "missing", "choices": ["missing", "always", "never"]},
            detach={"type": "bool", "default": True},
            cleanup={"type": "bool", "default": False},
            state={"type": "str", "default": "started", "choices": ["started", "absent"]},
        ),
        required_if=[("state", "started", ("image",))],
        supports_check_mode=True,
    )
    run_module(module, lambda engine: manage_container(engine, module.params, module.check_mode),
               requires=("cffi",))


if __name__ == "__main__":
    main()
