"""Specification of provider timestamp parsing (docs/design.md §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from notifier.timeparse import format_shotgun_time, parse_timestamp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-02-21 17:29:52.462881", datetime(2025, 2, 21, 17, 29, 52, 462881, tzinfo=UTC)),
        ("2025-06-07 18:00:00", datetime(2025, 6, 7, 18, 0, tzinfo=UTC)),
        ("2025-02-21T17:29:52Z", datetime(2025, 2, 21, 17, 29, 52, tzinfo=UTC)),
        ("2025-02-21T19:29:52+02:00", datetime(2025, 2, 21, 17, 29, 52, tzinfo=UTC)),
        ("2025-02-21T17:29:52.5", datetime(2025, 2, 21, 17, 29, 52, 500000, tzinfo=UTC)),
        ("2025-02-21", datetime(2025, 2, 21, tzinfo=UTC)),
        (1740158992, datetime(2025, 2, 21, 17, 29, 52, tzinfo=UTC)),
        (1740158992.5, datetime(2025, 2, 21, 17, 29, 52, 500000, tzinfo=UTC)),
        ("1740158992", datetime(2025, 2, 21, 17, 29, 52, tzinfo=UTC)),
        (" 1740158992.25 ", datetime(2025, 2, 21, 17, 29, 52, 250000, tzinfo=UTC)),
    ],
)
def test_parses_every_provider_format_to_aware_utc(value: object, expected: datetime) -> None:
    """ISO with/without zone, Shotgun's space format and unix seconds all become aware UTC."""
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_absent_values_mean_no_time(value: object) -> None:
    """None and blank strings are "no time", not errors."""
    assert parse_timestamp(value) is None


@pytest.mark.parametrize(
    "value", ["yesterday", "2025-13-01", "12:00", True, [], {}, float("nan"), float("inf"), 1e20]
)
def test_garbage_raises_value_error(value: object) -> None:
    """Non-timestamps raise ValueError, including bools and non-finite or huge numbers."""
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(value)


def test_format_shotgun_time_converts_to_utc_without_zone() -> None:
    """Shotgun's format is UTC with microseconds and no offset."""
    paris = timezone(timedelta(hours=2))
    assert format_shotgun_time(datetime(2025, 5, 20, 14, 47, 26, 622033, tzinfo=paris)) == (
        "2025-05-20 12:47:26.622033"
    )
    assert format_shotgun_time(datetime(2025, 5, 20, 12, 0)) == "2025-05-20 12:00:00.000000"


@given(st.datetimes(timezones=st.just(UTC)))
def test_shotgun_format_round_trips(moment: datetime) -> None:
    """Whatever we format in Shotgun's format parses back to the same instant."""
    assert parse_timestamp(format_shotgun_time(moment)) == moment
