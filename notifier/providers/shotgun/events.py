"""Which Shotgun events a source watches for cancellation, and when it looks (pure).

Shotgun puts ``event_canceled_at`` on every ticket of an event (Shotgun Tickets API,
ticket fields: "the event cancelation date if the organizer cancels it"), but nothing
says that cancelling an event moves its tickets' ``ticket_updated_at``, which is all the
incremental ``after`` read sees. So the adapter remembers each event it has read a
ticket of; every ``PROBE_INTERVAL`` it reads the first page of each current or upcoming
one (one request: every ticket carries its event's fields), and once an event shows a
cancellation it reads all of that event's tickets once (a sweep), so each of its valid
tickets yields ``ticket.canceled``. Events ended more than ``CLOSE_OUT`` ago are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from notifier.timeparse import format_shotgun_time, parse_timestamp

__all__ = [
    "CLOSE_OUT",
    "PROBE_INTERVAL",
    "EventWatch",
    "decode_watches",
    "due_probes",
    "encode_watches",
    "observe",
]

# How often each current or upcoming event is checked for a cancellation no ticket update
# revealed: the detection latency of an event's cancellation, at one request per event.
PROBE_INTERVAL = timedelta(minutes=10)
# An event is watched until this long after its end, then forgotten.
CLOSE_OUT = timedelta(hours=24)

WatchState = Literal["open", "sweeping", "swept"]


@dataclass(slots=True)
class EventWatch:
    """One event the source has seen: its end, when it was last probed, and whether its
    cancellation was seen (``sweeping``) and all its tickets read since (``swept``)."""

    end: datetime | None
    checked_at: datetime | None = None
    state: WatchState = "open"


@dataclass(frozen=True, slots=True)
class SeenEvent:
    """What one ticket read tells of its event."""

    event_id: str
    end: datetime | None
    canceled: bool


def observe(watches: dict[str, EventWatch], seen: Iterable[SeenEvent], now: datetime) -> None:
    """Remember events read, as checked ``now`` (a ticket read shows its event's current
    state); start the sweep of one seen cancelled (in place)."""
    for event in seen:
        watch = watches.get(event.event_id)
        if watch is None:
            watch = watches[event.event_id] = EventWatch(event.end)
        elif event.end is not None:
            watch.end = event.end
        if _due(watch, now):
            # Refreshed only when a probe would be due, so a cursor does not change with
            # every poll that reads the event (the read counts as the probe).
            watch.checked_at = now
        if event.canceled and watch.state == "open":
            watch.state = "sweeping"


def due_probes(watches: dict[str, EventWatch], now: datetime) -> list[str]:
    """Drop events past their close-out (in place); return the open ones due a probe."""
    for event_id in [key for key, watch in watches.items() if _ended(watch, now)]:
        del watches[event_id]
    return sorted(
        event_id
        for event_id, watch in watches.items()
        if watch.state == "open" and _due(watch, now)
    )


def _due(watch: EventWatch, now: datetime) -> bool:
    return watch.checked_at is None or now - watch.checked_at >= PROBE_INTERVAL


def _ended(watch: EventWatch, now: datetime) -> bool:
    return watch.end is not None and now - watch.end > CLOSE_OUT


def encode_watches(watches: Mapping[str, EventWatch]) -> dict[str, list[str | None]]:
    """JSON-ready ``{event_id: [end, checked_at, state]}``, sorted by event id."""
    return {
        event_id: [_text(watch.end), _text(watch.checked_at), watch.state]
        for event_id, watch in sorted(watches.items())
    }


def decode_watches(loaded: object) -> dict[str, EventWatch]:
    """The inverse of ``encode_watches``; TypeError/ValueError if malformed."""
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise TypeError("event watches are not an object")
    watches: dict[str, EventWatch] = {}
    for event_id, value in loaded.items():
        if not isinstance(value, list) or len(value) != 3:
            raise TypeError("event watch is not a list of three")
        end, checked_at, state = value
        if state not in ("open", "sweeping", "swept"):
            raise ValueError("unknown event watch state")
        watches[str(event_id)] = EventWatch(
            parse_timestamp(end), parse_timestamp(checked_at), state
        )
    return watches


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else format_shotgun_time(moment)
