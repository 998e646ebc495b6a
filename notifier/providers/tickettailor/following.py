"""Which Ticket Tailor events a source follows, and until when (pure).

Every current and upcoming event of the box office (or only the configured
``event_ids``), and an ended one until ``close_out`` after its end (late scans, refunds
the morning after). The windows come from the last ``GET /v1/events`` read; an event not
(yet) in them is followed, so a ticket of a new event is not lost before the next read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from notifier.providers.tickettailor.events import EventWindow

__all__ = ["Following"]


class Following:
    """The events followed, given the windows of the last events read."""

    def __init__(self, event_ids: Sequence[str] | None, close_out: timedelta) -> None:
        self.event_ids = None if event_ids is None else tuple(str(e) for e in event_ids)
        self.close_out = close_out
        self.windows: dict[str, EventWindow] = {}

    def tracks(self, event_id: str, now: datetime) -> bool:
        if self.event_ids is not None and event_id not in self.event_ids:
            return False
        window = self.windows.get(event_id)
        return window is None or not self.closed(window, now)

    def closed(self, window: EventWindow, now: datetime) -> bool:
        end = window.end or window.start
        return end is not None and end + self.close_out < now

    def followed(self, now: datetime) -> list[str]:
        """Current and upcoming events (soonest first), ended ones until their close-out."""
        windows = [
            w
            for w in self.windows.values()
            if (self.event_ids is None or w.event_id in self.event_ids) and not self.closed(w, now)
        ]
        far = datetime.max.replace(tzinfo=UTC)
        return [w.event_id for w in sorted(windows, key=lambda w: (w.start or far, w.event_id))]

    def reported_windows(self, now: datetime) -> dict[str, tuple[datetime, datetime | None]]:
        """The start and end of each followed event that has a start, for the scheduler."""
        return {
            e: (w.start, w.end)
            for e, w in self.windows.items()
            if w.start is not None and self.tracks(e, now)
        }

    def dropped(self, now: datetime) -> set[str]:
        """The events of the last read no longer followed (their memories can go)."""
        return {e for e in self.windows if not self.tracks(e, now)}
