#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer
short_description: Manage containers with the bundled pycontainer engine
version_added: 0.1.0
description:
  - Creates, starts, stops, restarts and removes named containers with the daemonless pycontainer engine, which
    travels with the module. The image is pulled first when missing.
  - Started containers are supervised by the engine's monitor process and outlive the module run (the monitor
    runs from a copy of the engine kept under the engine root, never from the module's temporary directory).
  - An existing container whose configuration differs from the options is recreated; options left unset are
    not compared (the image's defaults stay).
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
  - pycontainer.engine.container_network
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
  volumes:
    description:
      - Mounts as C(docker run -v) takes them, C(host-path:container-path[:ro]), C(volume-name:path) or C(path)
        (an anonymous volume).
    type: list
    elements: str
  tmpfs:
    description:
      - tmpfs mounts as C(docker run --tmpfs) takes them, C(path[:options]).
    type: list
    elements: str
  memory:
    description:
      - Memory limit, C(512m), C(1g) (binary units, as Docker). V(0) is unlimited.
    type: str
  memory_swap:
    description:
      - Memory plus swap limit; V(-1) unlimited.
    type: str
  cpus:
    description:
      - CPUs the container may use, e.g. V(1.5).
    type: float
  pids_limit:
    description:
      - Most processes the container may have; V(0) or V(-1) unlimited.
    type: int
  user:
    description:
      - C(user[:group]), names resolved from the image's C(/etc/passwd) and C(/etc/group).
    type: str
  working_dir:
    description:
      - Working directory of the container's process.
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
      - V(bridge) (the engine's default bridge network), V(none) (its own network namespace with only C(lo)),
        V(host) (the host's), V(container:<name or id>) (the network namespace of that running container, as
        Docker; O(published_ports), O(dns_servers), O(etc_hosts) and a hostname are then refused), or the name
        of a user-defined network.
      - Defaults to the first of O(networks), else V(bridge).
    type: str
  log_driver:
    description:
      - V(json-file) or V(none). Default from the engine config (C(log_driver)), else V(json-file).
    type: str
    choices: [json-file, none]
  log_options:
    description:
      - Options of the log driver, e.g. C(max-size), C(max-file), C(compress) for V(json-file).
    type: dict
  capabilities:
    description:
      - Capabilities added to Docker's default set (C(--cap-add)).
    type: list
    elements: str
  cap_drop:
    description:
      - Capabilities dropped from Docker's default set; V(ALL) drops every one.
    type: list
    elements: str
  privileged:
    description:
      - Give the container every capability, no seccomp filter and the host's devices.
    type: bool
    default: false
  read_only:
    description:
      - Mount the container's root filesystem read-only.
    type: bool
    default: false
  init:
    description:
      - Run a minimal init as PID 1 that reaps zombies and forwards signals.
    type: bool
    default: false
  tty:
    description:
      - Allocate a pseudo-terminal for the container.
    type: bool
    default: false
  interactive:
    description:
      - Keep the container's stdin open (C(docker run -i)).
    type: bool
    default: false
  restart_policy:
    description:
      - What the engine does when the container exits.
    type: str
    choices: ["no", on-failure, always, unless-stopped]
    default: "no"
  restart_retries:
    description:
      - With O(restart_policy=on-failure), the most restarts; V(0) is unlimited.
    type: int
  stop_timeout:
    description:
      - Seconds to wait after the stop signal before killing the container (Docker's default 10).
    type: int
  auto_remove:
    description:
      - Remove the container when it exits (C(--rm)).
    type: bool
    default: false
  pull:
    description:
      - When to pull the image. V(missing) pulls only when it is not in the store.
    type: str
    choices: [missing, always, never]
    default: missing
  detach:
    description:
      - V(false) runs the container to completion and returns its output and exit status; a non-zero status
        fails the task. Only with O(state=started).
    type: bool
    default: true
  cleanup:
    description:
      - With O(detach=false), remove the container once it has exited.
    type: bool
    default: false
  state:
    description:
      - V(present) the container exists (created, not started); V(started) it exists and runs;
        V(stopped) it exists and does not run; V(restarted) it is restarted (always a change);
        V(absent) it is removed (stopped first if it runs).
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
attributes:
  check_mode:
    support: full
    description: Nothing is created, pulled, started, stopped or removed; RV(actions) lists what would be done.
  diff_mode:
    support: full
    description: Shows the container's inspect output before and after.
  idempotent:
    support: partial
    details: >-
      V(present), V(started), V(stopped) and V(absent) change nothing when the container already matches;
      V(restarted) and running a command to completion (O(detach=false)) always act.
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

- name: A supervised service, restarted when it fails, with bounded logs
  pycontainer.engine.pycontainer:
    name: web
    image: busybox
    command: httpd -f -p 8080
    restart_policy: on-failure
    restart_retries: 5
    memory: 64m
    pids_limit: 100
    log_options:
      max-size: 1m
      max-file: "3"

- name: Stop it
  pycontainer.engine.pycontainer:
    name: web
    state: stopped

- name: Remove it
  pycontainer.engine.pycontainer:
    name: web
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
differences:
  description: Why an existing container was (or would be) recreated, one item per differing setting.
  returned: when the existing container differed
  type: list
  elements: dict
  sample: [{"name": "HostConfig.Memory", "actual": 0, "desired": 67108864}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible_container import manage_container
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible_network import CONTAINER_NETWORK_ARGUMENTS
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
            volumes={"type": "list", "elements": "str"},
            tmpfs={"type": "list", "elements": "str"},
            memory={"type": "str"},
            memory_swap={"type": "str"},
            cpus={"type": "float"},
            pids_limit={"type": "int"},
            user={"type": "str"},
            working_dir={"type": "str"},
            hostname={"type": "str"},
            labels={"type": "dict"},
            network_mode={"type": "str"},
            **CONTAINER_NETWORK_ARGUMENTS,  # published_ports, networks, dns_servers, etc_hosts...
            log_driver={"type": "str", "choices": ["json-file", "none"]},
            log_options={"type": "dict"},
            capabilities={"type": "list", "elements": "str"},
            cap_drop={"type": "list", "elements": "str"},
            privileged={"type": "bool", "default": False},
            read_only={"type": "bool", "default": False},
            init={"type": "bool", "default": False},
            tty={"type": "bool", "default": False},
            interactive={"type": "bool", "default": False},
            restart_policy={"type": "str", "default": "no",
                            "choices": ["no", "on-failure", "always", "unless-stopped"]},
            restart_retries={"type": "int"},
            stop_timeout={"type": "int"},
            auto_remove={"type": "bool", "default": False},
            pull={"type": "str", "default": "missing", "choices": ["missing", "always", "never"]},
            detach={"type": "bool", "default": True},
            cleanup={"type": "bool", "default": False},
            state={"type": "str", "default": "started",
                   "choices": ["present", "started", "stopped", "restarted", "absent"]},
        ),
        required_if=[("state", "started", ("image",)), ("state", "present", ("image",)),
                     ("state", "restarted", ("image",))],
        supports_check_mode=True,
    )
    run_module(module, lambda engine: manage_container(engine, module.params, module.check_mode),
               requires=("cffi",))


if __name__ == "__main__":
    main()
