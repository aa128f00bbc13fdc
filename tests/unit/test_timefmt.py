import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.timefmt import (
    human_duration,
    human_size,
    parse_rfc3339,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
     (150, "2 minutes"), (3600, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days"),
     (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years")],
)
def test_human_duration_matches_go_units(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "precision", "text"),
    [(0, 3, "0B"), (999, 3, "999B"), (4261000, 3, "4.26MB"), (1980000, 4, "1.98MB"), (1234567890, 3, "1.23GB")],
)
def test_human_size_is_decimal(size, precision, text):
    assert human_size(size, precision) == text


def test_parse_rfc3339_handles_nanoseconds_and_zones():
    assert parse_rfc3339("1970-01-01T00:00:01.123456789Z") == pytest.approx(1.123456)
    assert parse_rfc3339("1970-01-01T01:00:00+01:00") == 0
    assert parse_rfc3339("") == 0
