"""Wake-ups for poll loops: a burst of deliveries becomes at most one extra poll at a time.

The poll loop clears its trigger when a poll starts; a delivery that arrives while that
poll runs sets it again, so exactly one more poll follows, however many arrived. The
deliveries themselves are only counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class Trigger:
    """One source's pending wake-up."""

    _event: asyncio.Event = field(default_factory=asyncio.Event)
    received: int = 0  # verified deliveries, for metrics and tests
    coalesced: int = 0  # deliveries that found a wake-up already pending

    def fire(self) -> None:
        self.received += 1
        if self._event.is_set():
            self.coalesced += 1
        self._event.set()

    @property
    def pending(self) -> bool:
        return self._event.is_set()

    def take(self) -> bool:
        """Consume the pending wake-up (a poll is starting); whether there was one."""
        was = self._event.is_set()
        self._event.clear()
        return was

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
