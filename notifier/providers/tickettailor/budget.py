"""How often a Ticket Tailor source may sweep, from its account's request budget (pure).

Ticket Tailor has no updated-since read: voids, refunds, undone check-ins and transfers
show only by re-reading the issued tickets of the events followed. Those sweeps get at
most ``SWEEP_SHARE`` of the account's request budget (5,000 requests per 30 min per box
office, docs/providers.md), split evenly between the sources that share the API key; the
rest is left for the cheap every-poll reads (the check-in feed, new tickets, events).
A sweep of ``pages`` pages thus comes due ``pages / rate`` seconds after the last one.
"""

from __future__ import annotations

import math
from datetime import timedelta

SWEEP_SHARE = 0.5
DEFAULT_REQUESTS_PER_MINUTE = 5000.0 / 30.0
PAGE_LIMIT = 100  # tickets per page, the documented maximum


class RequestShare:
    """What the sources of one API key share: the budget, and how many sources split it."""

    def __init__(self, requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE) -> None:
        if not requests_per_minute > 0:
            raise ValueError("requests_per_minute must be positive")
        self.requests_per_minute = requests_per_minute
        self._members: set[str] = set()

    def join(self, source: str) -> None:
        self._members.add(source)

    @property
    def members(self) -> int:
        return max(len(self._members), 1)

    def sweep_rate(self) -> float:
        """Requests per second one source may spend on sweeps."""
        return self.requests_per_minute / 60.0 * SWEEP_SHARE / self.members


def sweep_interval(pages: int, rate_per_second: float) -> timedelta:
    """Time from one sweep's end to the next, so ``pages`` per sweep keep within ``rate``."""
    return timedelta(seconds=max(pages, 0) / rate_per_second)


def sweep_latency(
    tickets: int, *, sources: int = 1, poll_interval: timedelta = timedelta(seconds=5)
) -> timedelta:
    """Worst detection latency of a change only a sweep sees (a void, refund, undone
    check-in, transfer) for ``tickets`` tickets in the followed events, one source of
    ``sources`` on its key: the wait for the next sweep, that sweep read at the whole
    budget's pace (its pages also queue behind the account's request budget), and one
    poll."""
    pages = max(math.ceil(tickets / PAGE_LIMIT), 1)
    share = RequestShare()
    rate = share.sweep_rate() / sources
    reading = timedelta(seconds=pages / (share.requests_per_minute / 60.0))
    return sweep_interval(pages, rate) + reading + poll_interval
