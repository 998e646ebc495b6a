"""Nuweb event discovery (pure): which events of the company a source follows.

``GET /v1/events`` (admin OpenAPI, "Retrieve Events") lists the company's events ordered by
id, by default those that end in the future; ``endingAfter`` overrides that, so asking
for events ending after ``now - close_out`` also keeps an event that ended less than its
close-out window ago (late scans sync, refunds follow the night). It pages by ``page`` /
``offset`` / ``limit`` (at most 100) with ``links`` and ``meta.total`` like the other list
endpoints, and sits behind Nuweb's 60 s cache of identical GETs (changelog, 9 March 2023).

An event is followed while it is listed and not deleted, and until ``close_out`` after
its end; one without an end is followed while listed. ``event_ids`` in the configuration
stays a filter: only those are followed, listed or not (no request is made for them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifier.errors import FatalProviderError
from notifier.providers.base import EventWindow
from notifier.providers.nuweb.wire import PARSE_ERRORS
from notifier.providers.wire import (
    describe_problem,
    id_text,
    json_list,
    json_object,
    optional_int,
    php_next_link,
    php_section,
)
from notifier.timeparse import parse_timestamp

__all__ = [
    "CLOSE_OUT",
    "EVENTS_LIMIT",
    "EventSpan",
    "EventsPage",
    "event_windows",
    "followed",
    "is_live",
    "parse_events_page",
    "shift",
    "still_followed",
]

# How long after its end an event is still read: offline scanners sync, refunds and
# cancellations follow the night. Our choice; the sources say nothing of it.
CLOSE_OUT = timedelta(hours=24)
EVENTS_LIMIT = 100  # the documented maximum (and default)
# The live window of an event, as the scheduler's defaults (docs/configuration.md): from
# two hours before its start to one after its end. Outside it a followed event's entry
# tickets are read at most once per ``IDLE_ENTRY_INTERVAL``: a company with many upcoming
# events would otherwise spend its 60 requests a minute on events nobody scans.
BEFORE_DOORS = timedelta(hours=2)
AFTER_END = timedelta(hours=1)
IDLE_ENTRY_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class EventSpan:
    """One listed event: when it starts and ends (either may be missing), and whether it
    is gone (``deletedAt`` set)."""

    start: datetime | None
    end: datetime | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class EventsPage:
    events: dict[str, EventSpan]
    rows: int
    next_link: str | None
    total: int | None


def parse_events_page(payload: object) -> EventsPage:
    """One ``/v1/events`` page; ``FatalProviderError`` if it is not the envelope."""
    try:
        page = json_object(payload, "page")
        rows = json_list(page["events"], "events")
        events: dict[str, EventSpan] = {}
        for row in rows:
            wire = json_object(row, "event")
            events[id_text(wire["id"])] = EventSpan(
                start=parse_timestamp(wire.get("start")),
                end=parse_timestamp(wire.get("end")),
                deleted=parse_timestamp(wire.get("deletedAt")) is not None,
            )
        return EventsPage(
            events,
            len(rows),
            php_next_link(page.get("links"), "links"),
            optional_int(php_section(page, "meta").get("total")),
        )
    except PARSE_ERRORS as exc:
        raise FatalProviderError("malformed Nuweb events page: " + describe_problem(exc)) from exc


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at the calendar's ends: a provider's year 1 or 9999 must not
    raise ``OverflowError`` in our arithmetic."""
    try:
        return moment + delta
    except OverflowError:
        return (
            datetime.max.replace(tzinfo=UTC)
            if delta > timedelta(0)
            else datetime.min.replace(tzinfo=UTC)
        )


def followed(
    listed: Mapping[str, EventSpan], now: datetime, close_out: timedelta = CLOSE_OUT
) -> dict[str, EventSpan]:
    """The listed events to follow now: not deleted, not past their close-out window."""
    return {
        event_id: span
        for event_id, span in listed.items()
        if not span.deleted and (span.end is None or shift(span.end, close_out) > now)
    }


def still_followed(
    events: Mapping[str, EventSpan], now: datetime, close_out: timedelta = CLOSE_OUT
) -> dict[str, EventSpan]:
    """Between two listings: the followed events whose close-out has not passed since."""
    return followed(events, now, close_out)


def is_live(span: EventSpan, now: datetime) -> bool:
    """Whether ``now`` is in the event's live window; an event without a start always is."""
    if span.start is None:
        return True
    end = span.end if span.end is not None else span.start
    return shift(span.start, -BEFORE_DOORS) <= now <= shift(end, AFTER_END)


def event_windows(events: Iterable[tuple[str, EventSpan]]) -> dict[str, EventWindow]:
    """The scheduler's live windows of the events whose start is known."""
    return {event_id: (span.start, span.end) for event_id, span in events if span.start}
