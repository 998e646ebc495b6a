"""When a source polls next (pure): live cadence around events, back-off, reconcile sweeps.

Door scans cluster between doors opening and the event's end, so the request budget is
spent there: ``live_poll_interval`` while any of the source's events is in its live
window, ``poll_interval`` otherwise, and an exponential back-off while polls keep failing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.providers.base import EventWindow

# An event whose end the provider does not give is assumed to last this long.
ASSUMED_EVENT_LENGTH = timedelta(hours=12)
ERROR_BACKOFF_CAP = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Cadence:
    """A source's timing settings, after merging defaults, organizer and source."""

    poll_interval: timedelta
    live_poll_interval: timedelta
    before_doors: timedelta = timedelta(hours=2)
    after_end: timedelta = timedelta(hours=1)
    reconcile_interval: timedelta | None = timedelta(hours=6)


def is_live(windows: Iterable[EventWindow], now: datetime, cadence: Cadence) -> bool:
    """Whether ``now`` falls in any event's window, widened by the margins."""
    for start, end in windows:
        finish = end if end is not None else start + ASSUMED_EVENT_LENGTH
        if start - cadence.before_doors <= now <= finish + cadence.after_end:
            return True
    return False


def poll_wait(
    cadence: Cadence, windows: Iterable[EventWindow], now: datetime, *, failures: int = 0
) -> timedelta:
    """How long to wait before the next poll."""
    interval = (
        cadence.live_poll_interval if is_live(windows, now, cadence) else cadence.poll_interval
    )
    if failures == 0:
        return interval
    backoff: timedelta = interval * (2 ** min(failures, 16))
    return max(interval, min(backoff, ERROR_BACKOFF_CAP))


def reconcile_due(cadence: Cadence, last_reconcile: datetime, now: datetime) -> bool:
    """Whether a full read is due to catch what an incremental feed missed."""
    return cadence.reconcile_interval is not None and (
        now - last_reconcile >= cadence.reconcile_interval
    )
