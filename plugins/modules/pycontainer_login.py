#!/usr/bin/python
# Copyright: pycontainer developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pycontainer_login
short_description: Log in to or out of a registry for the pycontainer engine
version_added: 0.1.0
description:
  - Checks credentials against a registry and stores them for the engine's pulls and pushes, as
    C(docker login); removes them, as C(docker logout). Options follow M(community.docker.docker_login).
  - Credentials go where the C(pycontainer login) command keeps them, a Docker-format auth file readable by
    root only - the engine config's C(auth_file), else E(REGISTRY_AUTH_FILE), else C(auth.json) under the
    engine root.
extends_documentation_fragment:
  - pycontainer.engine.engine
  - pycontainer.engine.engine.ATTRIBUTES
options:
  registry_url:
    description:
      - The registry, as a host (V(registry.example.com:5000)) or URL. Docker Hub by default.
    type: str
    default: https://index.docker.io/v1/
    aliases: [registry, url]
  username:
    description:
      - User name at the registry. Required with O(state=present).
    type: str
  password:
    description:
      - Password or token at the registry. Required with O(state=present).
    type: str
  reauthorize:
    description:
      - Check the credentials against the registry even when the same ones are stored already.
    type: bool
    default: false
    aliases: [reauth]
  state:
    description:
      - V(present) checks the credentials against the registry and stores them; V(absent) removes the stored
        credentials of the registry.
    type: str
    choices: [absent, present]
    default: present
attributes:
  check_mode:
    support: full
    description: Credentials are still checked against the registry (a read-only request), nothing is stored
      or removed.
  diff_mode:
    support: none
    description: Credentials are secrets; no diff is shown.
  idempotent:
    support: full
    description: Logging in again with the stored credentials, or out when none are stored, changes nothing.
notes:
  - Unlike C(docker login), stored credentials that equal O(username) and O(password) are not checked against
    the registry again unless O(reauthorize=true).
author:
  - pycontainer developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Log in to a private registry
  pycontainer.engine.pycontainer_login:
    registry_url: registry.example.com:5000
    username: deploy
    password: "{{ registry_password }}"
  when: registry_password is defined

- name: Log out again
  pycontainer.engine.pycontainer_login:
    registry_url: registry.example.com:5000
    state: absent
"""

RETURN = r"""
registry:
  description: The registry's key in the auth file (its host, or C(https://index.docker.io/v1/) for Docker Hub).
  returned: always
  type: str
  sample: registry.example.com:5000
login_result:
  description: The registry's answer when the credentials were checked.
  returned: when the credentials were checked against the registry
  type: dict
  sample: {Status: Login Succeeded}
actions:
  description: What the module did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["Logged into registry.example.com:5000"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.engine_code import engine_modules


def main() -> None:
    # The engine is not in this payload: it comes from the target's copy of its code (engine_code.py).
    glue, login = engine_modules("ansible.glue", "ansible.login")
    module = AnsibleModule(
        argument_spec=glue.engine_argument_spec(
            registry_url={"type": "str", "default": "https://index.docker.io/v1/", "aliases": ["registry", "url"]},
            username={"type": "str"},
            password={"type": "str", "no_log": True},
            reauthorize={"type": "bool", "default": False, "aliases": ["reauth"]},
            state={"type": "str", "default": "present", "choices": ["absent", "present"]},
        ),
        required_if=[("state", "present", ("username", "password"))],
        supports_check_mode=True,
    )
    glue.run_module(module, lambda service: login.manage_login(service, module.params, module.check_mode))


if __name__ == "__main__":
    main()
