"""Wake-ups for poll loops: a burst of deliveries becomes at most one extra poll at a time.

The poll loop clears its trigger when a poll starts; a delivery that arrives while that
poll runs sets it again, so exactly one more poll follows, however many arrived. The
deliveries themselves are only counted, and the objects they name kept as read hints
(``ReadHint``), at most ``MAX_PENDING_HINTS`` of them: past that a delivery only wakes, and
what it named waits for the provider's ordinary reads (its sweep).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from notifier.providers.base import ReadHint

# A burst costs at most this many single-object reads; a refund of a whole event's orders
# is left to the sweep that reads them a page of 100 at a time.
MAX_PENDING_HINTS: Final = 100


@dataclass(slots=True)
class Trigger:
    """One source's pending wake-up."""

    _event: asyncio.Event = field(default_factory=asyncio.Event)
    received: int = 0  # verified deliveries, for metrics and tests
    coalesced: int = 0  # deliveries that found a wake-up already pending
    hints_dropped: int = 0  # hints past the bound, left to the ordinary reads
    max_hints: int = MAX_PENDING_HINTS
    _hints: dict[ReadHint, None] = field(default_factory=dict)  # an ordered set

    def fire(self, hints: Iterable[ReadHint] = ()) -> None:
        self.received += 1
        if self._event.is_set():
            self.coalesced += 1
        for hint in hints:
            if hint in self._hints:
                continue  # a retried or repeated delivery: one read answers both
            if len(self._hints) >= self.max_hints:
                self.hints_dropped += 1
            else:
                self._hints[hint] = None
        self._event.set()

    @property
    def pending(self) -> bool:
        return self._event.is_set()

    def take(self) -> tuple[ReadHint, ...]:
        """Consume the pending wake-up (a poll is starting) and the hints it gathered."""
        hints = tuple(self._hints)
        self._hints.clear()
        self._event.clear()
        return hints

    async def wait(self, stop: asyncio.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for a wake-up or ``stop``; True if ``stop`` was set."""
        if stop.is_set():
            return True
        if self._event.is_set():
            return False
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._event.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return stop.is_set()
