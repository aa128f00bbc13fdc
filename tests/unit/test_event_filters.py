import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import InvalidArgument
from ansible_collections.pycontainer.engine.plugins.module_utils.event_filters import (
    EventFilter,
    format_event_line,
    parse_time,
)

NOW = 1_700_000_000 * 1_000_000_000


def _event(kind, action, actor, **attributes):
    return {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attributes}, "scope": "local",
            "time": 1_700_000_000, "timeNano": 1_700_000_000_123_456_789}


@pytest.mark.parametrize(("text", "expected"), [
    ("1700000000", NOW),
    ("1700000000.5", NOW + 500_000_000),
    ("10m", NOW - 600 * 1_000_000_000),
    ("1h30m", NOW - 5400 * 1_000_000_000),
    ("2023-11-14T22:13:20Z", NOW),
    ("2023-11-14T23:13:20+01:00", NOW),
    ("2023-11-14", NOW - (22 * 3600 + 13 * 60 + 20) * 1_000_000_000),
])
def test_parse_time_accepts_dockers_forms(text, expected):
    assert parse_time(text, now_ns=NOW) == expected


def test_parse_time_rejects_garbage():
    with pytest.raises(InvalidArgument, match="invalid time"):
        parse_time("yesterday", now_ns=NOW)


def test_same_key_is_or_different_keys_are_and():
    die = _event("container", "die", "a" * 64, name="web", image="busybox", exitCode="1")
    pull = _event("image", "pull", "busybox:latest", name="busybox:latest")
    both_types = EventFilter.parse(["type=container", "type=image"])
    assert both_types.matches(die) and both_types.matches(pull)
    container_and_die = EventFilter.parse(["type=container", "event=die"])
    assert container_and_die.matches(die) and not container_and_die.matches(pull)
    assert not EventFilter.parse(["type=container", "event=start"]).matches(die)
    assert EventFilter.parse(["container=web"]).matches(die)
    assert EventFilter.parse(["container=aaaa"]).matches(die)
    assert not EventFilter.parse(["container=db"]).matches(die)
    assert EventFilter.parse(["image=busybox"]).matches(die)
    assert EventFilter.parse(["image=busybox:latest"]).matches(pull)
    with pytest.raises(InvalidArgument):
        EventFilter.parse(["bogus=1"])


def test_label_filter():
    event = _event("container", "start", "b" * 64, name="x", tier="web")
    assert EventFilter.parse(["label=tier"]).matches(event)
    assert EventFilter.parse(["label=tier=web"]).matches(event)
    assert not EventFilter.parse(["label=tier=db"]).matches(event)


def test_default_line_is_dockers():
    line = format_event_line(_event("container", "die", "abc", name="web", exitCode="1"))
    assert line == "2023-11-14T22:13:20.123456789Z container die abc (exitCode=1, name=web)"
