# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options every module of the collection takes to find the engine's state and configuration.
    DOCUMENTATION = r"""
options:
  root:
    description:
      - Directory holding the engine's state (images, containers).
      - Defaults to the environment variable E(PYCONTAINER_ROOT) on the target, else C(/var/lib/pycontainer).
    type: path
  config:
    description:
      - Engine configuration file, JSON like Docker's C(daemon.json), with C(registry_mirrors) and
        C(insecure_registries).
      - Defaults to E(PYCONTAINER_CONFIG) on the target, else C(/etc/pycontainer/engine.json) when it exists.
    type: path
requirements:
  - Linux, run as root
  - python >= 3.11
  - cffi (for containers)
  - pyroute2 (for networks)
notes:
  - The engine is daemonless and travels with the module; nothing needs to be installed on the target but
    Python and the libraries listed above.
"""

    ATTRIBUTES = r"""
attributes:
  action_group:
    description: Use C(group/pycontainer.engine.pycontainer) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - pycontainer.engine.pycontainer
"""

    # With the module's own `support`/`details` for each (as community.docker.attributes does).
    ATTRIBUTES_CHECK_DIFF = r"""
attributes:
  check_mode:
    description: Can run in check mode and predict C(changed) without changing anything on the target.
  diff_mode:
    description: Returns C(diff) with what changed (or would change in check mode), with C(--diff).
  idempotent:
    description:
      - When run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes nothing else changed the target in between.
"""
