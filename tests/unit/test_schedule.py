"""The schedule of one source (pure): live cadence, back-off, reconcile sweeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, strategies as st

from notifier.schedule import (
    ASSUMED_EVENT_LENGTH,
    ERROR_BACKOFF_CAP,
    Cadence,
    is_live,
    poll_wait,
    reconcile_due,
)

DOORS = datetime(2025, 6, 7, 20, 0, tzinfo=UTC)
END = DOORS + timedelta(hours=6)
CADENCE = Cadence(
    poll_interval=timedelta(seconds=60),
    live_poll_interval=timedelta(seconds=5),
    before_doors=timedelta(hours=2),
    after_end=timedelta(hours=1),
    reconcile_interval=timedelta(hours=6),
)


@pytest.mark.parametrize(
    ("now", "live"),
    [
        (DOORS - timedelta(hours=3), False),
        (DOORS - timedelta(hours=2), True),
        (DOORS + timedelta(hours=3), True),
        (END + timedelta(hours=1), True),
        (END + timedelta(hours=1, seconds=1), False),
    ],
    ids=["days-before", "margin-opens", "during", "margin-closes", "after"],
)
def test_the_live_window_spans_the_event_and_its_margins(now: datetime, live: bool) -> None:
    """Live from start - before_doors to end + after_end, inclusive."""
    assert is_live([(DOORS, END)], now, CADENCE) is live


def test_an_event_without_an_end_is_assumed_to_last_a_while() -> None:
    """A missing end time counts as start + the assumed length."""
    late = DOORS + ASSUMED_EVENT_LENGTH + CADENCE.after_end
    assert is_live([(DOORS, None)], late, CADENCE)
    assert not is_live([(DOORS, None)], late + timedelta(seconds=1), CADENCE)


def test_live_sources_poll_at_the_live_interval() -> None:
    """During the event the cadence is live_poll_interval, outside it poll_interval."""
    assert poll_wait(CADENCE, [(DOORS, END)], DOORS) == CADENCE.live_poll_interval
    assert poll_wait(CADENCE, [(DOORS, END)], END + timedelta(days=1)) == CADENCE.poll_interval
    assert poll_wait(CADENCE, [], DOORS) == CADENCE.poll_interval


@given(failures=st.integers(min_value=0, max_value=1000))
def test_backoff_grows_but_stays_within_its_bounds(failures: int) -> None:
    """Failing sources wait at least the interval and at most the cap (or the interval)."""
    wait = poll_wait(CADENCE, [], DOORS, failures=failures)
    assert CADENCE.poll_interval <= wait <= max(CADENCE.poll_interval, ERROR_BACKOFF_CAP)
    if failures:
        assert wait >= poll_wait(CADENCE, [], DOORS, failures=failures - 1)


def test_a_reconcile_is_due_after_its_interval() -> None:
    """A full sweep is due once reconcile_interval has passed; never when disabled."""
    assert not reconcile_due(CADENCE, DOORS, DOORS + timedelta(hours=5))
    assert reconcile_due(CADENCE, DOORS, DOORS + timedelta(hours=6))
    never = Cadence(timedelta(60), timedelta(5), reconcile_interval=None)
    assert not reconcile_due(never, DOORS, DOORS + timedelta(days=30))
