#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_events
short_description: Read the pycontainer engine's events
version_added: 0.1.0
description:
  - Returns the engine's events between O(since) and O(until), filtered as C(docker events --filter) does
    (values of one key are alternatives, different keys must all match).
  - Read-only, it never changes anything.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  since:
    description:
      - Oldest events to return, as a Unix timestamp, an RFC 3339 date or time, or a duration such as V(10m)
        counted back from now. Defaults to the oldest event kept.
    type: str
  until:
    description:
      - Newest events to return, in the same forms. Defaults to now.
    type: str
  filters:
    description:
      - Docker's event filters (C(type), C(event), C(container), C(image), C(network), C(volume), C(label)) as a
        dict; a list value gives alternatives.
    type: dict
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Reads events only; there is nothing to diff.
  idempotent:
    support: full
    description: It never changes anything.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Containers that died in the last hour
  pycontainer.engine.pycontainer_events:
    since: 1h
    filters:
      type: container
      event: die
  register: died

- name: Show their names and exit codes
  ansible.builtin.debug:
    msg: "{{ died.events | map(attribute='Actor.Attributes') | map(attribute='name') | list }}"
"""

RETURN = r"""
events:
  description: >-
    The events, oldest first, in Docker's shape (C(Type), C(Action), C(Actor), C(scope), C(time), C(timeNano)).
  returned: always
  type: list
  elements: dict
  sample:
    - Type: container
      Action: die
      Actor: {ID: 3f1c0e9b2a7d, Attributes: {name: web, exitCode: "0", image: busybox}}
      scope: local
      time: 1764300000
      timeNano: 1764300000123456789
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, events = engine_modules("ansible.glue", "ansible.events")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            since={"type": "str"},
            until={"type": "str"},
            filters={"type": "dict"},
        ),
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: events.list_events(service, module.params))


if __name__ == "__main__":
    main()
