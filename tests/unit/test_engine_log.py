import json

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.engine_log import EngineLog
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument


def test_text_lines_are_logfmt_and_levels_filter(tmp_path):
    path = tmp_path / "log" / "engine.log"
    log = EngineLog(str(path), level="info")
    log.debug("hidden")
    log.info("container create", id="abc", name="web server")
    log.error("No such image: x", command="run x")
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert " level=info msg=\"container create\" id=abc name=\"web server\"" in lines[0]
    assert lines[0].startswith("time=") and " level=error " in lines[1]


def test_json_lines(tmp_path):
    path = tmp_path / "engine.log"
    EngineLog(str(path), level="debug", fmt="json").debug("pull", ref="busybox")
    record = json.loads(path.read_text())
    assert (record["level"], record["msg"], record["ref"]) == ("debug", "pull", "busybox")


def test_bad_settings_are_refused_and_an_empty_path_logs_nothing(tmp_path):
    with pytest.raises(InvalidArgument):
        EngineLog("x", level="loud")
    with pytest.raises(InvalidArgument):
        EngineLog("x", fmt="xml")
    EngineLog("", level="debug").error("nowhere")
