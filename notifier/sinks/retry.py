"""When to try a webhook delivery again, and how fast one endpoint may be called (pure).

Nothing here does I/O or reads a clock: the caller passes the time and the randomness in,
so the schedule and the slow-down rules are tested with tables and hypothesis alone.

* ``next_delay`` follows a Svix-like schedule (docs/design.md §4): immediately, 5 s, 5 min, 30 min,
  2 h, 5 h, 10 h, 10 h, each ±20 % jitter, raised to the endpoint's ``Retry-After`` (capped);
  ``None`` once the schedule is spent, which parks the delivery.
* ``Throttle`` is one endpoint's pace: 429/502/503/504 double the minimum interval between
  requests (the endpoint asked us to slow down), each success shrinks it again, AIMD-style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

SVIX_DELAYS: Final[tuple[float, ...]] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)

# The statuses by which an endpoint says "too fast" or "overloaded" (docs/design.md §4).
SLOW_DOWN_STATUSES: Final[frozenset[int]] = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Waits before each attempt: ``delays[0]`` before the first, ``delays[n]`` after n failures.

    ``jitter`` spreads each wait by ±that fraction so endpoints that failed together are not
    retried in lockstep; ``max_retry_after`` caps how long an endpoint's ``Retry-After`` can
    hold a delivery back, so a hostile or broken header cannot park it for days.
    """

    delays: tuple[float, ...] = SVIX_DELAYS
    jitter: float = 0.2
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a retry schedule needs at least one attempt")
        if any(not math.isfinite(d) or d < 0 for d in self.delays):
            raise ValueError("retry delays must be finite and non-negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if not 0 <= self.max_retry_after < math.inf:
            raise ValueError("max_retry_after must be finite and non-negative")

    @property
    def max_attempts(self) -> int:
        """Attempts made before a delivery is parked."""
        return len(self.delays)


def next_delay(
    schedule: RetrySchedule,
    *,
    attempts_made: int,
    retry_after: float | None,
    rand: float,
) -> float | None:
    """Seconds to wait before the next attempt after ``attempts_made`` failures; None = park.

    ``rand`` in [0, 1) picks the point in the jitter band (0.5 is the nominal delay). A
    ``Retry-After`` (capped at ``schedule.max_retry_after``) only ever lengthens the wait: a
    server asking for 1 s does not make us retry sooner than the schedule says.
    """
    if attempts_made < 0:
        raise ValueError("attempts_made cannot be negative")
    if not 0 <= rand < 1:
        raise ValueError("rand must be in [0, 1)")
    if attempts_made >= schedule.max_attempts:
        return None
    nominal = schedule.delays[attempts_made]
    jittered = nominal * (1 + schedule.jitter * (2 * rand - 1))
    return max(jittered, capped_retry_after(retry_after, cap=schedule.max_retry_after))


def capped_retry_after(retry_after: float | None, *, cap: float) -> float:
    """A server's requested wait clamped to [0, cap]; 0 when absent or not a number."""
    if retry_after is None or math.isnan(retry_after):
        return 0.0
    return min(max(retry_after, 0.0), cap)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from ``now`` (aware) that a ``Retry-After`` header asks for (RFC 9110 §10.2.3).

    Accepts delay-seconds or an HTTP-date; a date in the past means 0. Anything unparseable
    is ignored (None) rather than trusted: the retry schedule still applies.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are GMT; a zone-less date from a sloppy server is read the same way.
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How far and how fast an endpoint's pace widens on slow-down and relaxes on success.

    The first slow-down sets the interval to ``first_interval``; each further one multiplies
    it by ``factor`` up to ``max_interval``. Each success multiplies it by ``relax``; once it
    falls below ``first_interval`` the endpoint is back to full speed (interval 0).
    """

    first_interval: float = 1.0
    factor: float = 2.0
    max_interval: float = 300.0
    relax: float = 0.5
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.first_interval <= self.max_interval < math.inf:
            raise ValueError("need 0 < first_interval <= max_interval < inf")
        if self.factor < 1 or not 0 <= self.relax < 1:
            raise ValueError("need factor >= 1 and relax in [0, 1)")


@dataclass(frozen=True, slots=True)
class Throttle:
    """One endpoint's pace, as a value: replace it with what the functions below return.

    ``interval`` is the minimum number of seconds between two requests (0 = unthrottled);
    ``not_before`` is the clock reading before which the endpoint gets no new request. The
    clock is whatever monotonic clock the caller passes as ``now`` everywhere.
    """

    interval: float = 0.0
    not_before: float = 0.0

    @property
    def throttled(self) -> bool:
        """True while the endpoint has asked us to slow down and has not recovered."""
        return self.interval > 0


def throttle_after_response(
    throttle: Throttle,
    policy: ThrottlePolicy,
    *,
    status: int | None,
    now: float,
    retry_after: float | None = None,
) -> Throttle:
    """The pace after one response (``status`` None: no response, e.g. a timeout)."""
    if status in SLOW_DOWN_STATUSES:
        return throttle_slow_down(throttle, policy, now=now, retry_after=retry_after)
    if status is not None and 200 <= status < 300:
        return throttle_relax(throttle, policy, now=now)
    # Other failures say nothing about load: keep the pace, just space the next request.
    return _pace(throttle, now=now)


def throttle_slow_down(
    throttle: Throttle, policy: ThrottlePolicy, *, now: float, retry_after: float | None
) -> Throttle:
    """Widen the interval (multiplicative decrease of the rate) and pause the endpoint.

    Responses that arrive while the endpoint is already paused come from requests sent
    before that pause, so they extend the pause but do not widen the interval again: one
    widening per window, like TCP's one reduction per round trip.
    """
    pause = capped_retry_after(retry_after, cap=policy.max_retry_after)
    if now < throttle.not_before and throttle.throttled:
        interval = throttle.interval
    else:
        widened = max(policy.first_interval, throttle.interval * policy.factor)
        interval = min(widened, policy.max_interval)
    not_before = max(throttle.not_before, now + max(interval, pause))
    return Throttle(interval=interval, not_before=not_before)


def throttle_relax(throttle: Throttle, policy: ThrottlePolicy, *, now: float) -> Throttle:
    """Shrink the interval after a success; below ``first_interval`` it snaps to 0."""
    interval = throttle.interval * policy.relax
    if interval < policy.first_interval:
        interval = 0.0
    return _pace(replace(throttle, interval=interval), now=now)


def _pace(throttle: Throttle, *, now: float) -> Throttle:
    # never move not_before backwards: a pause set by a concurrent 429 must survive a success
    return replace(throttle, not_before=max(throttle.not_before, now + throttle.interval))
