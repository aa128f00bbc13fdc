"""pycontainer.engine.pycontainer_info, with the engine's code kept on the target (plugin_utils/engine_action.py)."""

from __future__ import annotations

from ansible_collections.pycontainer.engine.plugins.plugin_utils.engine_action import EngineModuleAction


class ActionModule(EngineModuleAction):
    pass
