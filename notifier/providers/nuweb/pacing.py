"""Pacing by Nuweb's own rate headers (I/O-free but for the injected sleep).

Nuweb limits each company to 60 requests per rolling minute and says so in
``X-Remaining-Requests`` / ``X-Available-In-Seconds`` (admin OpenAPI, "Rate limiting"
and the ``TooManyRequests`` response); its 429 has no ``Retry-After``. ``RatePacer``
waits out the window when the budget is spent, and a 429 that still happens (another
client of the same company) is retried after ``X-Available-In-Seconds``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

import structlog

from notifier.providers.http import RetryPolicy, header_wait
from notifier.providers.nuweb.wire import PROVIDER

__all__ = ["MAX_RATE_LIMIT_WAITS", "RATE_WINDOW_SECONDS", "RETRY_POLICY", "RatePacer"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
SleepFn = Callable[[float], Awaitable[None]]

RATE_WINDOW_SECONDS = 60.0  # the rolling window of the per-company limit
MAX_RATE_LIMIT_WAITS = 2  # 429s one request may wait out before its stream fails
# The longest wait a header may impose: a value past it (``1e9``) is not believed.
MAX_HEADER_WAIT = 15 * 60.0
# Nuweb's 429 has no Retry-After; X-Available-In-Seconds says when the budget is back.
# The registry should build the company's shared client with this policy.
RETRY_POLICY = RetryPolicy(retry_after_headers=("Retry-After", "X-Available-In-Seconds"))


def _header_int(headers: Mapping[str, str] | None, name: str) -> int | None:
    if not headers:
        return None
    text = headers.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None  # not an answer
    # A negative count or wait means none; a wait past the cap is not believed.
    return math.ceil(min(max(value, 0.0), MAX_HEADER_WAIT))


class RatePacer:
    """Our view of Nuweb's per-company limiter, learnt from its response headers.

    When a response says no request remains, the next request first waits
    ``X-Available-In-Seconds`` (the whole window if absent). Share one pacer between the
    sources of one company to have them wait together.
    """

    def __init__(self, *, clock: Clock, sleep: SleepFn, window: float = RATE_WINDOW_SECONDS):
        self._clock = clock
        self._sleep = sleep
        self._window = window
        self._resume_at: datetime | None = None
        self.waited = 0.0

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Note a response's rate headers; a spent budget blocks until it replenishes."""
        remaining = _header_int(headers, "X-Remaining-Requests")
        if remaining is None or remaining > 0:
            return
        seconds = _header_int(headers, "X-Available-In-Seconds")
        stated = header_wait(float(seconds)) if seconds is not None else None  # configurable cap
        wait = stated if stated is not None else self._window
        self._resume_at = self._clock() + timedelta(seconds=wait)

    async def wait_turn(self) -> None:
        """Wait, if the last response spent the budget, until it replenishes."""
        resume_at, self._resume_at = self._resume_at, None
        if resume_at is None:
            return
        delay = (resume_at - self._clock()).total_seconds()
        if delay > 0:
            log.info("nuweb_rate_paced", provider=PROVIDER, wait_seconds=round(delay, 3))
            self.waited += delay
            await self._sleep(delay)

    async def wait_after_429(self, seconds: float | None) -> None:
        """A 429 the client gave up on: wait what Nuweb stated (or the window), once more."""
        wait = seconds if seconds is not None else self._window
        wait = min(max(wait, 0.0), MAX_HEADER_WAIT)
        log.warning("nuweb_rate_limited", provider=PROVIDER, wait_seconds=wait)
        self.waited += wait
        await self._sleep(wait)
