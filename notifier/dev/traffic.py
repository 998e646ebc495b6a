"""Door traffic played on simulator feeds: by ``notifier demo`` and ``notifier simulate``.

Each tick picks a feed, then one of its weighted actions (a scan, an undone scan, a void, a
refund, a transfer, a sale or sell-out) and calls the simulator's own state-changing method,
so the next poll of that simulator sees a change. The random generator is passed in: a seed
makes the traffic repeatable.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from notifier.dev.feeds import Feed

# How long to wait before the next tick, from the traffic's own generator.
Pace = Callable[[random.Random], float]
# Told what a tick did: the feed and a sentence (ticks that found nothing to do are not told).
Report = Callable[[Feed, str], None]


def per_minute(rate: float) -> Pace:
    """A steady ``rate`` actions per minute."""
    if rate <= 0:
        raise ValueError("the rate must be a positive number of actions per minute")
    interval = 60.0 / rate
    return lambda _rng: interval


async def play(
    feeds: Sequence[Feed],
    stop: asyncio.Event,
    *,
    rng: random.Random,
    pace: Pace,
    report: Report,
    start_after: float = 0.0,
) -> None:
    """Play actions on ``feeds`` until ``stop`` is set, ``pace`` apart, after ``start_after`` s."""
    await _sleep_or_stop(stop, start_after)
    while not stop.is_set():
        feed = rng.choice(feeds)
        actions = feed.actions()
        action = rng.choices([a for _, a in actions], [w for w, _ in actions])[0]
        note = action(rng)
        if note:
            report(feed, note)
        await _sleep_or_stop(stop, pace(rng))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
