"""The action plugin behind every pycontainer.engine module: the engine's code is kept on the target.

The modules' payloads carry none of the engine (see ``module_utils/ansible/engine_code.py`` for why and for
the target's side). Here, on the controller: tell the module which version of the code it needs (the digest of
this collection's module_utils, ``PYCONTAINER_ENGINE_CODE`` in its environment) and run it; if the target lacks
that version, the module says so without doing anything, and the code is sent once, as a zip in the task's
remote temporary directory (``PYCONTAINER_ENGINE_ZIP``), and the module runs again. Async tasks send the code
first: their answer comes too late to send it after.
"""

from __future__ import annotations

import os
from typing import Any

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible import code_bundle, engine_code

_MODULE_UTILS = os.path.dirname(os.path.dirname(os.path.abspath(engine_code.__file__)))


class LocalCode:
    """This collection's engine code: its digest at once (every task needs it), its zip only when a target
    lacks it (built once per controller run, in Ansible's own local temporary directory)."""

    _cached: LocalCode | None = None

    def __init__(self) -> None:
        self.files = code_bundle.code_files(_MODULE_UTILS)
        self.digest = code_bundle.code_digest(self.files)

    @classmethod
    def get(cls) -> LocalCode:
        if cls._cached is None:
            cls._cached = cls()
        return cls._cached

    def zip_path(self) -> str:
        path = os.path.join(C.DEFAULT_LOCAL_TMP, f"pycontainer-engine-{self.digest[:24]}.zip")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            code_bundle.write_zip(self.files, tmp)
            os.replace(tmp, path)
        return path


class EngineModuleAction(ActionBase):
    _supports_check_mode = True
    _supports_async = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engine_env: dict[str, str] = {}

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp  # unused, as in every action plugin since Ansible 2.5
        code = LocalCode.get()
        self._engine_env = {engine_code.ENV_DIGEST: code.digest}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        if wrap_async:
            self._send_code(code)
        answer = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        if not wrap_async and answer.get(engine_code.MISSING_KEY) == code.digest:
            self._send_code(code)
            answer = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        result = merge_hash(result, answer)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _send_code(self, code: LocalCode) -> None:
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "pycontainer-engine.zip")
        self._transfer_file(code.zip_path(), remote)
        self._fixup_perms2([remote], execute=False)
        self._engine_env[engine_code.ENV_ZIP] = remote

    def _compute_environment_string(self, raw_environment_out: dict[str, Any] | None = None) -> str:
        environment: dict[str, Any] = {}
        super()._compute_environment_string(environment)
        environment.update(self._engine_env)
        if isinstance(raw_environment_out, dict):
            raw_environment_out.clear()
            raw_environment_out.update(environment)
        return self._connection._shell.env_prefix(**environment)
