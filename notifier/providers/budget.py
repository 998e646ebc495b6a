"""A provider account's request budget: an async token bucket shared by its sources."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

SleepFn = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# Share of an account's burst that background requests leave for foreground polls.
BACKGROUND_HEADROOM = 0.5
# Set by the scheduler around a reconcile sweep: its requests yield to live polling.
BACKGROUND: ContextVar[bool] = ContextVar("provider_background_request", default=False)


class RequestBudget:
    """An async token bucket: ``rate`` requests per ``per`` seconds, bursts up to ``burst``.

    One object is shared by every source polling through the same provider account, so
    together they stay under the account's limit. The clock and sleep are injectable so
    pacing is tested without waiting.
    """

    def __init__(
        self,
        rate: float,
        per: float = 60.0,
        *,
        burst: float | None = None,
        clock: Clock = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
    ) -> None:
        if rate <= 0 or per <= 0:
            raise ValueError("rate and per must be positive")
        self._fill_per_second = rate / per
        self._capacity = burst if burst is not None else rate
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self, *, background: bool = False) -> float:
        """Take one request slot, waiting until one is free; returns the seconds waited.

        A ``background`` request (a reconcile sweep) first waits, outside the lock, until
        the bucket holds headroom for foreground polls, so a long sweep never starves the
        live cadence of the sources sharing the account.
        """
        waited = await self._await_headroom() if background else 0.0
        async with self._lock:
            self._refill()
            wait = 0.0
            if self._tokens < 1:
                wait = (1 - self._tokens) / self._fill_per_second
                await self._sleep(wait)
                self._refill()
            self._tokens = max(self._tokens - 1, 0.0)
            return waited + wait

    async def _await_headroom(self) -> float:
        headroom = min(self._capacity * BACKGROUND_HEADROOM, max(self._capacity - 1, 0.0))
        waited = 0.0
        while True:
            self._refill()
            shortfall = headroom + 1 - self._tokens
            if shortfall <= 0:
                return waited
            delay = shortfall / self._fill_per_second
            await self._sleep(delay)
            waited += delay

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._fill_per_second)
        self._updated = now
