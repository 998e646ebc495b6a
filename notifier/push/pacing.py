"""How often webhooks may wake an account's sources: a share of its request budget (pure).

A provider that pushes on every scan (Nuweb's "Attendee check in") would otherwise turn a
busy door into one poll per scan: at 1,000 scans a minute that is seventeen times Nuweb's
documented 60 requests a minute, and every poll, woken or scheduled, then queues behind
the exhausted budget (figure 2 measured median detection of 26 s that way, against 1 s
polling alone). So woken polls are spaced: the sources of one account may be woken at most
``WAKE_SHARE`` of its budget's rate, and deliveries arriving in the gap coalesce into the
next woken poll. Scheduled polls are not counted here: they keep their own cadence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WAKE_SHARE: Final = 0.25  # as Ticket Tailor's hinted reads: a quarter of the budget


@dataclass(slots=True)
class WakePacer:
    """At most one woken poll per ``gap`` seconds across the sources of one account."""

    gap: float
    _next_free: float = float("-inf")

    @classmethod
    def for_budget(cls, requests_per_minute: float, *, share: float = WAKE_SHARE) -> WakePacer:
        return cls(gap=60.0 / (requests_per_minute * share))

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until a woken poll may start (0: at once)."""
        return max(0.0, self._next_free - now)

    def book(self, start: float) -> None:
        """A woken poll starts at ``start``: the next one waits a gap after it."""
        self._next_free = max(self._next_free, start) + self.gap
