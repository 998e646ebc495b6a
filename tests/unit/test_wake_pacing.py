"""Woken polls of one account: at most one per gap, the gap a share of its request budget."""

from __future__ import annotations

import itertools

from hypothesis import given, strategies as st

from notifier.push.pacing import WAKE_SHARE, WakePacer


def test_the_gap_is_a_share_of_the_budget() -> None:
    """Nuweb's 60 requests a minute: a woken poll every 4 s at most."""
    assert WakePacer.for_budget(60).gap == 60 / (60 * WAKE_SHARE) == 4.0


def test_the_first_wake_is_at_once_then_one_per_gap() -> None:
    pacer = WakePacer(gap=2.0)
    assert pacer.delay(10.0) == 0.0
    pacer.book(10.0)
    assert pacer.delay(10.5) == 1.5
    pacer.book(12.0)
    assert pacer.delay(12.0) == 2.0
    assert pacer.delay(20.0) == 0.0


@given(
    gap=st.floats(min_value=0.01, max_value=100),
    arrivals=st.lists(st.floats(min_value=0, max_value=1000), min_size=1, max_size=50),
)
def test_booked_wakes_are_never_closer_than_the_gap(gap: float, arrivals: list[float]) -> None:
    """Whatever the arrival times, the starts the pacer hands out are a gap apart."""
    pacer = WakePacer(gap=gap)
    starts = []
    for now in sorted(arrivals):
        start = now + pacer.delay(now)
        pacer.book(start)
        starts.append(start)
    assert all(b - a >= gap * (1 - 1e-9) for a, b in itertools.pairwise(starts))
