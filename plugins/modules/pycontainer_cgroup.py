#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_cgroup
short_description: The pycontainer engine's parent cgroup with fleet-level limits
version_added: 0.1.0
description:
  - Finds the host's cgroup layout as the engine does (V(v1), V(v2) or V(hybrid)), mounts the v1 controllers the
    engine uses that the kernel offers but nothing mounted, enables the v2 controllers in
    C(cgroup.subtree_control) from the root down to the parent, and creates the parent cgroup O(name) in every
    hierarchy the engine puts containers in.
  - Writes the parent's limits, which bound all the engine's containers together - v1 C(memory.limit_in_bytes),
    C(cpu.shares), C(cpu.cfs_quota_us), C(pids.max); v2 C(memory.max), C(cpu.weight), C(cpu.max), C(pids.max).
    Limits not given are left as they are.
  - Point the engine at the parent with the engine config's C(cgroup_parent) (M(pycontainer.engine.pycontainer_config)).
    The engine creates a configured parent if missing but never removes it.
  - Where systemd manages the cgroup tree, let systemd own the parent (a slice unit with the limits; the
    C(pycontainer.engine.cgroups) role does that) and use this module without limits.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  name:
    description:
      - The parent cgroup, relative to each hierarchy's root (V(pycontainer-fleet), V(pycontainer.slice)).
      - Defaults to the C(cgroup_parent) of the engine config (O(config)), so a task can read back the parent the
        engine uses.
      - Not V(pycontainer), the engine's own default parent, which the engine removes when it empties.
    type: str
  state:
    description:
      - V(present) creates the parent and sets the limits; V(absent) removes it from every hierarchy, failing while
        containers' cgroups are still in it.
    type: str
    choices: [absent, present]
    default: present
  memory_max:
    description:
      - Memory limit of all containers together, in bytes or with a binary unit (V(512m), V(2g)); V(max) or V(0)
        means unlimited.
    type: str
  cpu_weight:
    description:
      - Relative CPU share, on cgroup v2's scale (1-10000, 100 is the default). On v1 it becomes C(cpu.shares) as
        systemd maps it (weight * 1024 / 100).
    type: int
  cpus:
    description:
      - CPUs all containers may use together (a CFS quota over a 100 ms period, as C(docker run --cpus)); V(0)
        means unlimited.
    type: float
  pids_max:
    description:
      - Processes all containers may have together; V(0) means unlimited.
    type: int
  mount_controllers:
    description:
      - Mount missing v1 controllers (on v1 and hybrid hosts) and enable v2 controllers down to the parent.
    type: bool
    default: true
notes:
  - Needs nothing but Python on the target (no cffi).
attributes:
  check_mode:
    support: full
    description: Lists the mounts, directories and limit writes it would make, changing nothing.
  diff_mode:
    support: full
    description: The diff shows whether the parent exists and its limits, before and after.
  idempotent:
    support: full
    description: Limits are compared as the kernel reads them back; a second run reports no change.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A parent cgroup for all containers - 1 GiB, 1.5 CPUs, 500 processes
  pycontainer.engine.pycontainer_cgroup:
    name: pycontainer-example
    memory_max: 1g
    cpus: 1.5
    cpu_weight: 100
    pids_max: 500
  register: fleet

- name: Show the layout the engine uses
  ansible.builtin.debug:
    msg: "cgroup {{ fleet.cgroup.version }}, parent in {{ fleet.cgroup.paths | join(', ') }}"

- name: Remove it (fails while containers still run under it)
  pycontainer.engine.pycontainer_cgroup:
    name: pycontainer-example
    state: absent
"""

RETURN = r"""
cgroup:
  description: The layout and the parent cgroup.
  returned: success
  type: dict
  contains:
    version:
      description: V(v1), V(v2) or V(hybrid) (v1 controllers plus an empty cgroup2 hierarchy).
      type: str
    name:
      description: The parent, relative to each hierarchy's root.
      type: str
    controllers:
      description: v1 controller to mount point (empty on v2).
      type: dict
    unified:
      description: The cgroup2 mount point, if any.
      type: str
    paths:
      description: The parent's directory in each hierarchy the engine uses.
      type: list
      elements: str
    exists:
      description: Whether the parent exists (after the task; predicted in check mode).
      type: bool
    limits:
      description: The parent's limits as the kernel reads them back (predicted in check mode) -
        C(memory_max) bytes, C(cpu_weight), C(cpu_quota_us) per 100 ms, C(pids_max); -1 unlimited,
        null where the controller is missing.
      type: dict
  sample:
    version: hybrid
    name: pycontainer-fleet
    controllers: {memory: /sys/fs/cgroup/memory, pids: /sys/fs/cgroup/pids}
    unified: /sys/fs/cgroup/unified
    paths: [/sys/fs/cgroup/memory/pycontainer-fleet, /sys/fs/cgroup/pids/pycontainer-fleet]
    exists: true
    limits: {memory_max: 1073741824, cpu_weight: 100, cpu_quota_us: 150000, pids_max: 500}
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample:
    - Created cgroup /sys/fs/cgroup/memory/pycontainer-fleet
    - Set pids.max 500 on /sys/fs/cgroup/pids/pycontainer-fleet
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, cgroup = engine_modules("ansible.glue", "ansible.cgroup")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            name={"type": "str"},
            state={"type": "str", "default": "present", "choices": ["absent", "present"]},
            memory_max={"type": "str"},
            cpu_weight={"type": "int"},
            cpus={"type": "float"},
            pids_max={"type": "int"},
            mount_controllers={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    glue.run_host_module(module, lambda: cgroup.manage_cgroup(module.params, module.check_mode))


if __name__ == "__main__":
    main()
