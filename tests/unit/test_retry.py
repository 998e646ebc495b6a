"""The webhook retry schedule, Retry-After parsing and the endpoint slow-down rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, strategies as st

from notifier.sinks.retry import (
    SVIX_DELAYS,
    RetrySchedule,
    Throttle,
    ThrottlePolicy,
    capped_retry_after,
    next_delay,
    parse_retry_after,
    throttle_after_response,
    throttle_relax,
    throttle_slow_down,
)

DEFAULT = RetrySchedule()
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

rands = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
attempts = st.integers(min_value=0, max_value=20)
retry_afters = st.one_of(st.none(), st.floats(allow_nan=False, min_value=-1e9, max_value=1e12))
schedules = st.builds(
    RetrySchedule,
    delays=st.lists(
        st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=12
    ).map(tuple),
    jitter=st.floats(min_value=0, max_value=0.99),
    max_retry_after=st.floats(min_value=0, max_value=1e6),
)


# --- the schedule, as a table ---------------------------------------------------------


def test_default_schedule_is_svix_like() -> None:
    """The default is immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, ±20 %."""
    assert DEFAULT.delays == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert DEFAULT.delays == SVIX_DELAYS
    assert DEFAULT.jitter == 0.2
    assert DEFAULT.max_retry_after == 3600
    assert DEFAULT.max_attempts == 8


@pytest.mark.parametrize(
    ("attempts_made", "expected"),
    [(0, 0.0), (1, 5.0), (2, 300.0), (3, 1800.0), (4, 7200.0), (5, 18000.0), (6, 36000.0)],
)
def test_nominal_delay_at_mid_jitter(attempts_made: int, expected: float) -> None:
    """rand = 0.5 gives the nominal delay of each step."""
    assert next_delay(DEFAULT, attempts_made=attempts_made, retry_after=None, rand=0.5) == (
        pytest.approx(expected)
    )


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 4.0), (0.25, 4.5), (0.75, 5.5)])
def test_jitter_spreads_the_delay(rand: float, expected: float) -> None:
    """rand sweeps the ±20 % band linearly: 0 is the low edge, towards 1 the high edge."""
    assert next_delay(DEFAULT, attempts_made=1, retry_after=None, rand=rand) == pytest.approx(
        expected
    )


def test_first_attempt_is_immediate_whatever_the_jitter() -> None:
    """Jitter scales the delay, so a zero delay stays zero."""
    assert next_delay(DEFAULT, attempts_made=0, retry_after=None, rand=0.99) == 0.0


def test_last_step_then_park() -> None:
    """After the eighth failure the schedule is spent and the delivery parks."""
    assert next_delay(DEFAULT, attempts_made=7, retry_after=None, rand=0.5) == 36000.0
    assert next_delay(DEFAULT, attempts_made=8, retry_after=None, rand=0.5) is None
    assert next_delay(DEFAULT, attempts_made=9, retry_after=60, rand=0.5) is None


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, 5.0), (1.0, 5.0), (7.0, 7.0), (120.0, 120.0), (3600.0, 3600.0), (86400.0, 3600.0)],
)
def test_retry_after_only_lengthens_up_to_the_cap(
    retry_after: float | None, expected: float
) -> None:
    """Retry-After raises the 5 s step when larger, never shortens it, and is capped at 1 h."""
    assert next_delay(DEFAULT, attempts_made=1, retry_after=retry_after, rand=0.5) == (
        pytest.approx(expected)
    )


def test_negative_or_nan_retry_after_is_ignored() -> None:
    """A nonsensical Retry-After never changes the schedule."""
    assert next_delay(DEFAULT, attempts_made=1, retry_after=-30, rand=0.5) == 5.0
    assert next_delay(DEFAULT, attempts_made=1, retry_after=math.nan, rand=0.5) == 5.0


def test_custom_schedule() -> None:
    """A configured schedule is followed step by step and parks after its last step."""
    schedule = RetrySchedule(delays=(0, 1, 2), jitter=0.0, max_retry_after=10)
    got = [next_delay(schedule, attempts_made=n, retry_after=None, rand=0.3) for n in range(4)]
    assert got == [0, 1, 2, None]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delays": ()},
        {"delays": (0, -1)},
        {"delays": (0, math.inf)},
        {"jitter": -0.1},
        {"jitter": 1.0},
        {"max_retry_after": -1},
        {"max_retry_after": math.inf},
    ],
)
def test_invalid_schedules_are_refused(kwargs: dict[str, object]) -> None:
    """A schedule that could never work is refused when built, not when used."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not part of the contract
        RetrySchedule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("attempts_made", "rand"), [(-1, 0.5), (0, -0.1), (0, 1.0)])
def test_out_of_range_inputs_are_refused(attempts_made: int, rand: float) -> None:
    """Negative attempt counts and rand outside [0, 1) are caller bugs."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not part of the contract
        next_delay(DEFAULT, attempts_made=attempts_made, retry_after=None, rand=rand)


# --- the schedule, as properties ------------------------------------------------------


@given(schedule=schedules, attempts_made=attempts, rand=rands)
def test_delay_within_jitter_bounds(
    schedule: RetrySchedule, attempts_made: int, rand: float
) -> None:
    """Without Retry-After the delay stays inside the step's ±jitter band."""
    delay = next_delay(schedule, attempts_made=attempts_made, retry_after=None, rand=rand)
    if delay is None:
        return
    nominal = schedule.delays[attempts_made]
    assert nominal * (1 - schedule.jitter) - 1e-9 <= delay <= nominal * (1 + schedule.jitter) + 1e-9


@given(schedule=schedules, attempts_made=attempts, retry_after=retry_afters, rand=rands)
def test_delay_never_negative(
    schedule: RetrySchedule, attempts_made: int, retry_after: float | None, rand: float
) -> None:
    """Whatever the inputs, a delay is never negative."""
    delay = next_delay(schedule, attempts_made=attempts_made, retry_after=retry_after, rand=rand)
    assert delay is None or delay >= 0


@given(schedule=schedules, attempts_made=attempts, retry_after=retry_afters, rand=rands)
def test_none_exactly_after_the_last_step(
    schedule: RetrySchedule, attempts_made: int, retry_after: float | None, rand: float
) -> None:
    """None (park) comes exactly once every step of the schedule has been used."""
    delay = next_delay(schedule, attempts_made=attempts_made, retry_after=retry_after, rand=rand)
    assert (delay is None) == (attempts_made >= len(schedule.delays))


@given(
    schedule=schedules,
    attempts_made=attempts,
    retry_after=st.floats(min_value=0, max_value=1e12),
    rand=rands,
)
def test_retry_after_respected_up_to_the_cap(
    schedule: RetrySchedule, attempts_made: int, retry_after: float, rand: float
) -> None:
    """The delay is at least min(Retry-After, cap) and exceeds the band only up to that."""
    delay = next_delay(schedule, attempts_made=attempts_made, retry_after=retry_after, rand=rand)
    if delay is None:
        return
    floor = min(retry_after, schedule.max_retry_after)
    band_top = schedule.delays[attempts_made] * (1 + schedule.jitter)
    assert delay >= floor
    assert delay <= max(band_top, floor) + 1e-9


@given(value=st.floats(allow_nan=True), cap=st.floats(min_value=0, max_value=1e9))
def test_capped_retry_after_is_within_zero_and_cap(value: float, cap: float) -> None:
    """A requested wait is always clamped into [0, cap]."""
    assert 0 <= capped_retry_after(value, cap=cap) <= cap


# --- Retry-After parsing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Sat, 01 Mar 2025 12:02:00 GMT", 120.0),
        ("Sat, 01 Mar 2025 11:00:00 GMT", 0.0),
        ("Sat, 01 Mar 2025 12:00:30 -0000", 30.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("²", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Delay-seconds and HTTP-dates are read relative to now; anything else is ignored."""
    assert parse_retry_after(header, now=NOW) == expected


@given(seconds=st.integers(min_value=0, max_value=10**6))
def test_parse_retry_after_http_date_roundtrip(seconds: int) -> None:
    """An HTTP-date N seconds ahead reads back as N seconds."""
    moment = NOW + timedelta(seconds=seconds)
    header = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(header, now=NOW) == pytest.approx(seconds)


# --- the endpoint slow-down -----------------------------------------------------------

POLICY = ThrottlePolicy(first_interval=1.0, factor=2.0, max_interval=8.0, relax=0.5)


def test_unthrottled_by_default() -> None:
    """A fresh endpoint is called at full speed."""
    assert Throttle() == Throttle(interval=0.0, not_before=0.0)
    assert not Throttle().throttled


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_slow_down_statuses_widen_the_interval(status: int) -> None:
    """429/502/503/504 set the first interval and pause the endpoint for it."""
    got = throttle_after_response(Throttle(), POLICY, status=status, now=100.0)
    assert got == Throttle(interval=1.0, not_before=101.0)
    assert got.throttled


@pytest.mark.parametrize("status", [None, 400, 401, 404, 410, 500])
def test_other_failures_keep_the_pace(status: int | None) -> None:
    """Failures that do not signal load neither widen nor relax the interval."""
    start = Throttle(interval=2.0, not_before=50.0)
    got = throttle_after_response(start, POLICY, status=status, now=100.0)
    assert got == Throttle(interval=2.0, not_before=102.0)


def test_repeated_slow_downs_double_up_to_the_max() -> None:
    """Each slow-down in a new window doubles the interval, capped at max_interval."""
    throttle, now, seen = Throttle(), 0.0, []
    for _ in range(6):
        throttle = throttle_slow_down(throttle, POLICY, now=now, retry_after=None)
        seen.append(throttle.interval)
        now = throttle.not_before
    assert seen == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_slow_downs_within_one_pause_widen_once() -> None:
    """Responses to requests sent before the pause do not widen the interval again."""
    first = throttle_slow_down(Throttle(), POLICY, now=10.0, retry_after=None)
    second = throttle_slow_down(first, POLICY, now=10.5, retry_after=None)
    assert second.interval == 1.0
    assert second.not_before == 11.5


def test_retry_after_extends_the_pause_not_the_interval() -> None:
    """Retry-After pauses the endpoint that long (capped) without inflating its interval."""
    got = throttle_slow_down(Throttle(), POLICY, now=10.0, retry_after=30.0)
    assert got == Throttle(interval=1.0, not_before=40.0)
    capped = throttle_slow_down(Throttle(), POLICY, now=0.0, retry_after=1e9)
    assert capped.not_before == POLICY.max_retry_after


def test_success_relaxes_back_to_full_speed() -> None:
    """Each success halves the interval; below the first step the endpoint is unthrottled."""
    throttle = Throttle(interval=8.0, not_before=0.0)
    seen = []
    for now in (10.0, 20.0, 30.0, 40.0):
        throttle = throttle_relax(throttle, POLICY, now=now)
        seen.append(throttle.interval)
    assert seen == [4.0, 2.0, 1.0, 0.0]
    assert not throttle.throttled


def test_success_paces_the_next_request() -> None:
    """After a success the next request waits one interval."""
    got = throttle_after_response(Throttle(interval=4.0), POLICY, status=200, now=10.0)
    assert got == Throttle(interval=2.0, not_before=12.0)


def test_success_does_not_cut_a_pause_short() -> None:
    """A concurrent success never moves not_before backwards past a Retry-After pause."""
    paused = Throttle(interval=1.0, not_before=500.0)
    assert throttle_relax(paused, POLICY, now=10.0).not_before == 500.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_interval": 0},
        {"first_interval": 10, "max_interval": 5},
        {"factor": 0.5},
        {"relax": 1},
    ],
)
def test_invalid_throttle_policies_are_refused(kwargs: dict[str, float]) -> None:
    """A policy that could never recover or never slow down is refused."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not part of the contract
        ThrottlePolicy(**kwargs)


statuses = st.one_of(st.none(), st.integers(min_value=100, max_value=599))


@given(
    steps=st.lists(
        st.tuples(
            statuses, st.floats(min_value=0, max_value=100), st.one_of(st.none(), st.floats(0, 1e5))
        ),
        max_size=30,
    )
)
def test_throttle_invariants(steps: list[tuple[int | None, float, float | None]]) -> None:
    """Over any response sequence: 0 or within [first, max] interval; not_before never regresses."""
    throttle, now = Throttle(), 0.0
    for status, elapsed, retry_after in steps:
        now += elapsed
        updated = throttle_after_response(
            throttle, POLICY, status=status, now=now, retry_after=retry_after
        )
        assert updated.not_before >= throttle.not_before
        assert (
            updated.interval == 0
            or POLICY.first_interval <= updated.interval <= POLICY.max_interval
        )
        throttle = updated
