"""trace.py: phases add up to the command's time from its caller's start; off unless asked for."""

from __future__ import annotations

import time

from ansible_collections.pycontainer.engine.plugins.module_utils import trace


def lines(capsys) -> dict[str, float]:
    out = {}
    for line in capsys.readouterr().err.splitlines():
        assert line.startswith("trace: ")
        name, _sep, ms = line[len("trace: "):].rpartition(" ")
        out[name] = float(ms)
    return out


def test_off_unless_the_environment_asks(monkeypatch, capsys):
    monkeypatch.delenv(trace.ENV, raising=False)
    trace.begin()
    trace.mark("anything")
    trace.add([["remote", 5]], "monitor: ")
    trace.report()
    assert not trace.enabled()
    assert capsys.readouterr().err == ""


def test_phases_count_from_the_callers_start_and_add_up(monkeypatch, capsys):
    monkeypatch.setenv(trace.ENV, "1")
    monkeypatch.setenv(trace.START_ENV, repr(time.monotonic() - 0.050))  # the client started 50 ms ago
    trace.begin()
    trace.mark("imports")
    time.sleep(0.02)
    trace.mark("work")
    trace.report()
    phases = lines(capsys)
    assert phases["imports"] >= 50
    assert phases["work"] >= 20
    assert abs(phases["total"] - sum(v for k, v in phases.items() if k != "total")) < 0.5
    assert not trace.enabled()  # reported once


def test_another_process_phases_sit_inside_the_span_and_the_rest_is_the_round_trip(monkeypatch, capsys):
    monkeypatch.setenv(trace.ENV, "1")
    monkeypatch.delenv(trace.START_ENV, raising=False)
    trace.begin()
    time.sleep(0.03)
    trace.add([["fork", 5.0], ["exec", 10.0]], "monitor start: ")
    trace.report()
    phases = lines(capsys)
    assert (phases["monitor start: fork"], phases["monitor start: exec"]) == (5.0, 10.0)
    assert phases["monitor start: round trip"] >= 30 - 15
    assert abs(phases["total"] - sum(v for k, v in phases.items() if k != "total")) < 0.5


def test_the_monitor_records_per_request_and_hands_the_phases_over():
    trace.begin_remote()
    trace.mark("runtime spec")
    phases = trace.take()
    assert [name for name, _ms in phases] == ["runtime spec"]
    assert not trace.enabled() and trace.take() == []
