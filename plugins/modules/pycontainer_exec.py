#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_exec
short_description: Run a command in a running container of the pycontainer engine
version_added: 0.1.0
description:
  - Runs a command inside a running container, as C(docker exec), and returns its output and exit code.
    Options and return values follow M(community.docker.docker_container_exec).
  - The process joins the container's namespaces and cgroup and gets its capabilities and seccomp filter.
  - A command that exits non-zero is not a module error; its exit code is in RV(rc) with its output. Ansible
    counts a non-zero RV(rc) as a failed task, as with M(community.docker.docker_container_exec) and
    M(ansible.builtin.command); use C(failed_when) to decide otherwise. A command that cannot be found or
    run gives V(127) or V(126), as a shell does.
  - The task fails when the container does not exist or is not running.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  container:
    description:
      - Name or ID of the container.
    type: str
    required: true
  argv:
    description:
      - The command and its arguments, as a list. Exactly one of O(argv) and O(command) is required.
    type: list
    elements: str
  command:
    description:
      - The command as a string, split into arguments like a shell would. No shell runs it; use
        V(sh -c '...') for pipes and variables. Exactly one of O(argv) and O(command) is required.
    type: str
  chdir:
    description:
      - Working directory of the command inside the container (default the container's).
    type: str
  env:
    description:
      - Environment variables for the command, added to the container's.
    type: dict
  user:
    description:
      - User (name or UID, optionally V(:group)) to run the command as (default the container's).
    type: str
  stdin:
    description:
      - Text written to the command's standard input, which then reaches end of file. Without it, standard
        input is empty.
    type: str
  stdin_add_newline:
    description:
      - Append a newline to O(stdin).
    type: bool
    default: true
  strip_empty_ends:
    description:
      - Remove trailing newlines from RV(stdout) and RV(stderr).
    type: bool
    default: true
  detach:
    description:
      - Start the command and return at once, without its output or exit code.
    type: bool
    default: false
  tty:
    description:
      - Give the command a terminal. Its standard error then arrives merged into RV(stdout), with C(\r\n)
        line ends.
    type: bool
    default: false
  privileged:
    description:
      - Give the command every capability, as C(docker exec --privileged).
    type: bool
    default: false
attributes:
  check_mode:
    support: partial
    description: In check mode nothing runs; the module checks that the container runs and reports
      C(changed=true) without RV(rc), RV(stdout) or RV(stderr).
    details: The command is not run in check mode, so its output and exit code are unknown.
  diff_mode:
    support: none
    description: A command's effect is not known in advance; there is nothing to diff.
  idempotent:
    support: none
    description: The command runs on every run and the module always reports C(changed=true), as
      M(community.docker.docker_container_exec) does.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A container to work in
  pycontainer.engine.pycontainer:
    name: app
    image: busybox
    command: sleep 1d

- name: Run a command
  pycontainer.engine.pycontainer_exec:
    container: app
    command: /bin/sh -c "echo hello from $(hostname)"
  register: result

- name: Show the output
  ansible.builtin.debug:
    var: result.stdout_lines

- name: Feed input, another user, a working directory and the environment
  pycontainer.engine.pycontainer_exec:
    container: app
    argv: [sh, -c, 'cat > greeting; echo "$GREETING from $(id -un) in $(pwd)"']
    stdin: written through stdin
    user: nobody
    chdir: /tmp
    env:
      GREETING: hi

- name: A non-zero exit code is a result, not a failure
  pycontainer.engine.pycontainer_exec:
    container: app
    command: test -e /nonexistent
  register: probe
  failed_when: probe.rc not in [0, 1]

- name: Done with it
  pycontainer.engine.pycontainer:
    name: app
    state: absent
"""

RETURN = r"""
rc:
  description: The exit code of the command (126 when it cannot be run, 127 when it is not found).
  returned: success and O(detach=false) and not in check mode
  type: int
  sample: 0
stdout:
  description: What the command wrote to standard output (with a terminal, standard error too).
  returned: success and O(detach=false) and not in check mode
  type: str
  sample: hello from 3f1c2a9e8b7d
stderr:
  description: What the command wrote to standard error.
  returned: success and O(detach=false) and not in check mode
  type: str
  sample: ""
stdout_lines:
  description: RV(stdout) split into lines.
  returned: success and O(detach=false) and not in check mode
  type: list
  elements: str
  sample: [hello from 3f1c2a9e8b7d]
stderr_lines:
  description: RV(stderr) split into lines.
  returned: success and O(detach=false) and not in check mode
  type: list
  elements: str
  sample: []
msg:
  description: V(non-zero return code) when RV(rc) is not 0.
  returned: when RV(rc) is not 0
  type: str
  sample: non-zero return code
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, exec_ = engine_modules("ansible.glue", "ansible.exec")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            container={"type": "str", "required": True},
            argv={"type": "list", "elements": "str"},
            command={"type": "str"},
            chdir={"type": "str"},
            env={"type": "dict"},
            user={"type": "str"},
            stdin={"type": "str"},
            stdin_add_newline={"type": "bool", "default": True},
            strip_empty_ends={"type": "bool", "default": True},
            detach={"type": "bool", "default": False},
            tty={"type": "bool", "default": False},
            privileged={"type": "bool", "default": False},
        ),
        mutually_exclusive=[("argv", "command")],
        required_one_of=[("argv", "command")],
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: exec_.run_exec(service, module.params, module.check_mode),
                    requires=("cffi",))


if __name__ == "__main__":
    main()
