#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_config
short_description: Set keys of the pycontainer engine's configuration file
version_added: 0.1.0
description:
  - Merges O(settings) into the engine's JSON configuration file (like Docker's C(daemon.json)); keys not named
    keep their values. The file is created when missing.
  - The merged file is checked with the engine's own rules before it is written (known keys, value types, the
    container log driver and its options, log level and format), so a bad value fails the task and leaves the
    file as it was.
  - A V(bridge_name), V(nft_table) or V(bridge_subnet) that another engine root on the host already uses (its
    claims in C(/run/pycontainer/subnets.json)) fails the task too, naming that root, instead of failing at the
    first container's create.
  - The file is rewritten only when its content changes (formatting alone is no change).
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  config:
    description:
      - The engine configuration file to edit. Defaults to E(PYCONTAINER_CONFIG) on the target, else
        C(/etc/pycontainer/engine.json).
  root:
    description:
      - Engine root used to compute the returned RV(engine_config) and to check the host-wide claims of
        other roots; nothing is written there.
  settings:
    description:
      - Keys to set, with underscores (V(log_driver)) or Docker's dashes (V(log-driver)); the file keeps one
        spelling per key. A V(null) value removes the key (the engine default applies again).
      - Values replace the old ones as a whole (a new V(log_opts) dict replaces the old dict).
    type: dict
    required: true
  mode:
    description:
      - Permissions of the file.
    type: str
    default: "0644"
attributes:
  check_mode:
    support: full
    description: Reports the keys that would change without writing the file.
  diff_mode:
    support: full
    description: The diff shows the file's settings before and after.
  idempotent:
    support: full
    description: A second run with the same settings reports no change.
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Container logs rotate at 10 MB, three files kept, compressed
  pycontainer.engine.pycontainer_config:
    config: /tmp/pycontainer-example/engine.json
    settings:
      log_driver: json-file
      log_opts:
        max-size: 10m
        max-file: "3"
        compress: "true"

- name: Back to the engine's default parent cgroup
  pycontainer.engine.pycontainer_config:
    config: /tmp/pycontainer-example/engine.json
    settings:
      cgroup_parent: null
"""

RETURN = r"""
config:
  description: The file's settings after the merge (as they are, or would be, written).
  returned: success
  type: dict
  sample: {"log_driver": "json-file", "log_opts": {"max-size": "10m"}, "registry_mirrors": ["http://127.0.0.1:5000"]}
changed_keys:
  description: Keys whose value the merge changed (underscore spelling).
  returned: success
  type: list
  elements: str
  sample: ["log_opts"]
log_config:
  description: The container log defaults as the engine reads them from the merged settings.
  returned: success
  type: dict
  contains:
    driver:
      description: V(json-file) or V(none).
      type: str
    max_size:
      description: Bytes at which a container's log file rotates; -1 never.
      type: int
    max_file:
      description: Log files kept per container, the live one included.
      type: int
    compress:
      description: Whether rotated files are gzipped.
      type: bool
  sample: {"driver": "json-file", "max_size": 10000000, "max_file": 3, "compress": true}
engine_config:
  description: Every setting the engine uses with this file, defaults filled in (not returned in check mode when
    the file would change).
  returned: when the file exists
  type: dict
  sample: {"cgroup_parent": "pycontainer", "log_level": "info", "root": "/var/lib/pycontainer"}
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["Updated /etc/pycontainer/engine.json (log_opts)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, config = engine_modules("ansible.glue", "ansible.config")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            settings={"type": "dict", "required": True},
            mode={"type": "str", "default": "0644"},
        ),
        supports_check_mode=True,
    )
    glue.run_host_module(module, lambda: config.manage_config(module.params, module.check_mode))


if __name__ == "__main__":
    main()
