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
    travels with the module. The image is pulled first when missing (see O(pull)).
  - Started containers are supervised by the engine's monitor process and outlive the module run (the monitor
    runs from a copy of the engine kept under the engine root, never from the module's temporary directory).
  - Only the options a task sets are compared with an existing container (its real configuration - image ID,
    command, env, ports, volumes, networks, limits, labels, restart policy...); options left unset are not
    compared and the image's defaults stay. Equivalent spellings are equal - V(80) and V(80/tcp),
    V(0.0.0.0:8080:80) and V(8080:80), an image's tag and its ID, V(64m) and V(67108864), env in any order.
  - A difference only in O(memory), O(memory_swap), O(cpus), O(pids_limit), O(restart_policy) or
    O(restart_retries) is applied to the container in place (as C(docker update) does, to its cgroup and
    record), without recreating it. Any other difference recreates the container.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
  - pycontainer.engine.engine.ATTRIBUTES_CHECK_DIFF
  - pycontainer.engine.container_network
options:
  name:
    description:
      - Name of the container. Names are unique on a host, as with Docker.
    type: str
    required: true
  image:
    description:
      - Image reference, as for C(docker run), or an image ID. Required to create a container.
      - Compared by the image ID it names now, so V(busybox), V(busybox:latest),
        V(docker.io/library/busybox:latest) and the ID are the same image.
    type: str
  pull:
    description:
      - When to pull the image. V(missing) pulls only when it is not in the store; V(always) pulls every time
        (the container is recreated when that gives a new image); V(never) fails when it is missing.
      - In check mode the registry is asked which image a pull would give (manifests only; nothing is stored).
    type: str
    choices: [missing, always, never]
    default: missing
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
      - Environment variables, added to (and overriding) the image's. Only these keys are compared.
      - Values are strings; YAML booleans become V(true)/V(false), numbers their text.
    type: dict
  labels:
    description:
      - Labels to set on the container. Only these keys are compared.
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
  tty:
    description:
      - Allocate a pseudo-terminal for the container. Unset means no terminal.
    type: bool
  interactive:
    description:
      - Keep the container's stdin open (C(docker run -i)). Unset means closed.
    type: bool
  volumes:
    description:
      - Mounts as C(docker run -v) takes them, C(host-path:container-path[:ro]), C(volume-name:path) or C(path)
        (an anonymous volume).
    type: list
    elements: str
  mounts:
    description:
      - Mounts as C(docker run --mount) describes them.
    type: list
    elements: dict
    suboptions:
      target:
        description: Path in the container.
        type: str
        required: true
      source:
        description: Host path (V(bind)) or volume name (V(volume); empty for an anonymous volume).
        type: str
      type:
        description: Kind of mount.
        type: str
        choices: [bind, volume, tmpfs]
        default: volume
      read_only:
        description: Mount it read-only.
        type: bool
      propagation:
        description: Bind propagation.
        type: str
        choices: [private, rprivate, shared, rshared, slave, rslave]
      no_copy:
        description: Do not copy the image's content at the target into a new volume.
        type: bool
      labels:
        description: Labels of a volume created for this mount.
        type: dict
      tmpfs_size:
        description: Size of a tmpfs, e.g. V(64m).
        type: str
      tmpfs_mode:
        description: Octal mode of a tmpfs, e.g. V(1777).
        type: str
  tmpfs:
    description:
      - tmpfs mounts as C(docker run --tmpfs) takes them, C(path[:options]).
    type: list
    elements: str
  memory:
    description:
      - Memory limit, C(512m), C(1g) (binary units, as Docker). V(0) is unlimited. Updated in place.
    type: str
  memory_swap:
    description:
      - Memory plus swap limit; V(-1) unlimited, unset twice O(memory). Updated in place.
    type: str
  cpus:
    description:
      - CPUs the container may use, e.g. V(1.5). Updated in place.
    type: float
  cpu_shares:
    description:
      - Relative CPU weight (C(docker run -c)).
    type: int
  cpuset_cpus:
    description:
      - CPUs the container may run on, e.g. V(0-1) or V(0,2).
    type: str
  pids_limit:
    description:
      - Most processes the container may have; V(0) or V(-1) unlimited. Updated in place.
    type: int
  shm_size:
    description:
      - Size of C(/dev/shm), e.g. V(128m) (Docker's default 64m).
    type: str
  ulimits:
    description:
      - Resource limits as C(name:soft[:hard]), e.g. V(nofile:1024:2048).
    type: list
    elements: str
  devices:
    description:
      - Host devices, C(/dev/host[:/dev/container[:rwm]]).
    type: list
    elements: str
  device_cgroup_rules:
    description:
      - Device cgroup rules, e.g. V(c 1:3 rwm) (cgroup v1 hosts).
    type: list
    elements: str
  network_mode:
    description:
      - V(bridge) (the engine's default bridge network), V(none) (its own network namespace with only C(lo)),
        V(host) (the host's), V(container:<name or id>) (the network namespace of that running container, as
        Docker; O(published_ports), O(dns_servers), O(etc_hosts) and a hostname are then refused), or the name
        of a user-defined network.
      - Defaults to the first of O(networks), else V(bridge).
    type: str
  pid_mode:
    description:
      - V(host) shares the host's process namespace.
    type: str
  ipc_mode:
    description:
      - V(host) shares the host's IPC namespace.
    type: str
  uts:
    description:
      - V(host) shares the host's UTS namespace (hostname).
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
      - Capabilities added to Docker's default set (C(--cap-add)); V(NET_ADMIN) and V(CAP_NET_ADMIN) are the same.
    type: list
    elements: str
  cap_drop:
    description:
      - Capabilities dropped from Docker's default set; V(ALL) drops every one.
    type: list
    elements: str
  security_opts:
    description:
      - As C(docker run --security-opt), e.g. V(no-new-privileges), V(seccomp=unconfined).
    type: list
    elements: str
  privileged:
    description:
      - Give the container every capability, no seccomp filter and the host's devices. Unset means not.
    type: bool
  read_only:
    description:
      - Mount the container's root filesystem read-only. Unset means writable.
    type: bool
  init:
    description:
      - Run a minimal init as PID 1 that reaps zombies and forwards signals. Unset means none.
    type: bool
  groups:
    description:
      - Supplementary groups of the container's processes (C(--group-add)), exec'd ones included. A name is
        looked up in the container's C(/etc/group) when it starts (an unknown name fails the start); a number
        is used as it is.
      - Compared as a set; groups the container has beyond the ones listed are not a difference. A difference
        recreates the container.
    type: list
    elements: str
  restart_policy:
    description:
      - What the engine does when the container exits. Unset means V(no) for a new container. Updated in place.
    type: str
    choices: ["no", on-failure, always, unless-stopped]
  restart_retries:
    description:
      - With O(restart_policy=on-failure), the most restarts; V(0) is unlimited. Updated in place.
    type: int
  kill_signal:
    description:
      - Signal that stops the container (C(docker run --stop-signal)); the image's C(StopSignal), else C(SIGTERM).
    type: str
    aliases: [stop_signal]
  stop_timeout:
    description:
      - Seconds to wait after the stop signal before killing the container (Docker's default 10). Stored with
        the container, and used when this task stops it.
    type: int
  auto_remove:
    description:
      - Remove the container when it exits (C(--rm)). Unset means kept.
    type: bool
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
  recreate:
    description:
      - Recreate the container even when it matches the options.
    type: bool
    default: false
  restart:
    description:
      - With O(state=started), restart a matching running container.
    type: bool
    default: false
  force_kill:
    description:
      - Kill the container (C(SIGKILL)) instead of stopping it gracefully when stopping or removing it.
    type: bool
    default: false
    aliases: [forcekill]
  keep_volumes:
    description:
      - Keep the container's anonymous volumes when removing (or recreating) it. V(false) removes them with it
        (C(docker rm -v)); named volumes and bind mounts are never removed.
    type: bool
    default: true
  state:
    description:
      - V(present) the container exists (a new one is created, not started; a recreated one is started if the
        old one ran); V(started) it exists and runs; V(stopped) it exists and does not run; V(restarted) it
        is stopped and started again (always a change); V(absent) it is removed (stopped first if it runs).
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
attributes:
  check_mode:
    support: full
    details:
      - Nothing is pulled, created, started, stopped, updated or removed; RV(actions) and C(changed) are what the
        real run would report (the image a pull would give is asked of the registry).
  diff_mode:
    support: full
    details:
      - C(before) and C(after) hold the options the task sets, in their compared form, and C(state).
  idempotent:
    support: partial
    details:
      - V(present), V(started), V(stopped) and V(absent) change nothing when the container already matches;
        V(restarted), O(recreate), O(restart) and running a command to completion (O(detach=false)) always act.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Say hello from a container
  pycontainer.engine.pycontainer:
    name: hello
    image: busybox
    command: echo 'Hello World'
    detach: false
    cleanup: true
  register: hello

- name: Show what the container printed
  ansible.builtin.debug:
    msg: "{{ hello.output }}"

- name: A supervised service, restarted when it fails, with bounded logs
  pycontainer.engine.pycontainer:
    name: web
    image: busybox
    command: httpd -f -p 8080
    network_mode: none
    init: true  # PID 1 forwards the stop signal to httpd
    env:
      GREETING: hello
      WORKERS: 4
    restart_policy: on-failure
    restart_retries: 5
    memory: 64m
    pids_limit: 100
    log_options:
      max-size: 1m
      max-file: "3"

- name: More memory - applied to the running container in place, not recreated
  pycontainer.engine.pycontainer:
    name: web
    image: busybox
    command: httpd -f -p 8080
    memory: 128m
  register: web

- name: Show what was done
  ansible.builtin.debug:
    msg: "{{ web.actions }}"

- name: Stop it
  pycontainer.engine.pycontainer:
    name: web
    state: stopped

- name: Remove it, with its anonymous volumes
  pycontainer.engine.pycontainer:
    name: web
    state: absent
    keep_volumes: false
"""

RETURN = r"""
container:
  description:
    - The container as C(docker inspect) shows it, with C(Output) for O(detach=false). In check mode the
      existing container, unchanged. Empty when there is none.
  returned: always
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
  sample: ["Pulled image busybox", "Created container web", "Started container web", "Updated container web"]
differences:
  description:
    - How the existing container differs from the options, one item per option (in the compared form), whether
      it was updated in place or recreated.
  returned: when the existing container differed
  type: list
  elements: dict
  sample: [{"name": "memory", "actual": 67108864, "desired": 134217728}]
diff:
  description: With C(--diff), the compared options and the state before and after.
  returned: always
  type: dict
  sample: {"before": {"memory": 67108864, "state": "running"}, "after": {"memory": 134217728, "state": "running"}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, container = engine_modules("ansible.glue", "ansible.container")
    module = AnsibleModule(
        # Every option is declared once, in the engine's option table (container/option_table.py).
        argument_spec=glue.engine_argument_spec(**container.argument_spec()),
        required_if=[("state", "started", ("image",)), ("state", "present", ("image",)),
                     ("state", "restarted", ("image",))],
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: container.manage_container(service, module.params, module.check_mode),
                    requires=("cffi",))


if __name__ == "__main__":
    main()
