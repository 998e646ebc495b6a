"""The Nuweb adapter's cursor (pure): positions per stream, schedules, continuations.

The cursor is opaque text the store commits with each step's events. Besides the
positions of each stream it carries what the adapter must not forget across a restart:
the statuses and holder names order items imposed on entry tickets (``orders``), the
events discovery follows, the inventory endpoint in use, and where a read cut short by
the page cap resumes (``Resume``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from notifier.errors import FatalProviderError
from notifier.model import TicketId, TicketStatus
from notifier.providers.nuweb.events import EventSpan, shift
from notifier.providers.nuweb.orders import OVERRIDE_STATUSES, OrderItem, Overrides
from notifier.providers.nuweb.wire import PARSE_ERRORS
from notifier.providers.wire import id_text, json_list, json_object, optional_text
from notifier.timeparse import format_nuweb_time, parse_timestamp

__all__ = [
    "DEEP_INTERVAL",
    "EVENTS_INTERVAL",
    "INVENTORY_INTERVAL",
    "ORDER_ITEMS_INTERVAL",
    "ORDER_ITEMS_OVERLAP",
    "RECONCILE_INTERVAL",
    "NuwebCursor",
    "OrderItemsWindow",
    "Resume",
    "decode_cursor",
    "deep_read_due",
    "encode_cursor",
    "events_due",
    "inventory_due",
    "order_items_due",
    "order_items_position",
    "order_items_window",
    "sweep_due",
]

# Identical GETs within 60 s come from Nuweb's cache (admin OpenAPI changelog, 9 March
# 2023, on GET /sale-items among others): reading sooner learns nothing.
INVENTORY_INTERVAL = timedelta(seconds=60)
# Entry tickets re-read the lookback window at most this often (docs in ``adapter``).
DEEP_INTERVAL = timedelta(seconds=60)
# Order items are read at most this often: cancellations and resales are rare next to
# scans, and the per-company budget is spent on check-ins.
ORDER_ITEMS_INTERVAL = timedelta(seconds=60)
# lastUpdated is "on or after", to the microsecond; the overlap covers changes committed
# a little after their timestamp. Re-read items that changed nothing are dropped.
ORDER_ITEMS_OVERLAP = timedelta(seconds=30)
# The adapter's own full read of every entry ticket (it keeps the overrides a read from
# scratch would lose, so the service must not sweep it).
RECONCILE_INTERVAL = timedelta(hours=6)
# Discovery lists the company's events this often. GET /events is behind the same 60 s
# cache, so a new event is seen within this plus a minute (plus one poll interval).
EVENTS_INTERVAL = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a read cut short by the page cap goes on: its next link (path and query on
    the configured origin), the filter it started from (``start``: startTime or
    lastUpdated), the position it will commit once finished (``mark``: the first page's
    listEndTime, or the newest change read so far) and when it began (adapter clock)."""

    next: str
    start: datetime | None = None
    mark: datetime | None = None
    began: datetime | None = None


@dataclass(frozen=True, slots=True)
class NuwebCursor:
    """Per event: the last ``listEndTime`` and the newest inventory ``updatedAt`` seen;
    plus when inventory was last read (Nuweb's 60 s cache makes faster reads pointless).

    ``deep_anchors``: per event, the ``listEndTime`` held when the last deep read began,
    and ``deep_read_at`` when that was (adapter clock); absent from older cursors.

    Order items (absent from older cursors): ``order_items`` the position of their
    ``lastUpdated`` stream (server time, kept behind by the read's duration),
    ``order_items_read_at`` when they were last read (adapter clock),
    ``order_items_since`` where their history begins (set when an older cursor was
    upgraded, else null: all of it was read), ``overrides`` the statuses they impose on
    entry tickets and ``named_holders`` the names (``orders``); ``reconciled_at`` when the
    last reconcile sweep of the entry tickets began (adapter clock).

    ``inventory_endpoint`` is ``sale-items`` once the deprecated endpoint was found gone;
    ``events`` the discovered events followed (id: start and end) and
    ``events_read_at`` when they were last listed; ``resume`` the reads cut short by the
    page cap, by stream (``entry:<event>``, ``inventory:<event>``, ``order_items``).
    """

    entry: Mapping[str, datetime] = field(default_factory=dict)
    inventory: Mapping[str, datetime] = field(default_factory=dict)
    inventory_read_at: datetime | None = None
    deep_anchors: Mapping[str, datetime] = field(default_factory=dict)
    deep_read_at: datetime | None = None
    order_items: datetime | None = None
    order_items_read_at: datetime | None = None
    order_items_since: datetime | None = None
    overrides: Mapping[TicketId, TicketStatus] = field(default_factory=dict)
    reconciled_at: datetime | None = None
    named_holders: Mapping[TicketId, str] = field(default_factory=dict)
    inventory_endpoint: str | None = None
    events: Mapping[str, EventSpan] = field(default_factory=dict)
    events_read_at: datetime | None = None
    resume: Mapping[str, Resume] = field(default_factory=dict)


def decode_cursor(cursor: str | None) -> NuwebCursor:
    """The cursor's positions; ``FatalProviderError`` if the text is corrupt."""
    if cursor is None:
        return NuwebCursor()
    try:
        loaded = json_object(orjson.loads(cursor), "cursor")
        return NuwebCursor(
            entry=_times(loaded.get("entry")),
            inventory=_times(loaded.get("inventory")),
            inventory_read_at=parse_timestamp(loaded.get("inventory_read_at")),
            deep_anchors=_times(loaded.get("deep_anchors")),
            deep_read_at=parse_timestamp(loaded.get("deep_read_at")),
            order_items=parse_timestamp(loaded.get("order_items")),
            order_items_read_at=parse_timestamp(loaded.get("order_items_read_at")),
            order_items_since=parse_timestamp(loaded.get("order_items_since")),
            overrides=overrides_from_wire(loaded.get("overrides")),
            reconciled_at=parse_timestamp(loaded.get("reconciled_at")),
            named_holders=holders_from_wire(loaded.get("named_holders")),
            inventory_endpoint=optional_text(loaded.get("inventory_endpoint")),
            events=_spans(loaded.get("events")),
            events_read_at=parse_timestamp(loaded.get("events_read_at")),
            resume=_resumes(loaded.get("resume")),
        )
    except (orjson.JSONDecodeError, *PARSE_ERRORS) as exc:
        raise FatalProviderError("corrupt Nuweb cursor: " + type(exc).__name__) from exc


def _times(value: object) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for key, text in json_object(value or {}, "positions").items():
        when = parse_timestamp(text)
        if when is None:
            raise ValueError("empty position")
        times[str(key)] = when
    return times


def _spans(value: object) -> dict[str, EventSpan]:
    spans: dict[str, EventSpan] = {}
    for key, wire in json_object(value or {}, "events").items():
        span = json_object(wire, "event span")
        spans[str(key)] = EventSpan(
            parse_timestamp(span.get("start")), parse_timestamp(span.get("end"))
        )
    return spans


def _resumes(value: object) -> dict[str, Resume]:
    resumes: dict[str, Resume] = {}
    for key, wire in json_object(value or {}, "resume").items():
        entry = json_object(wire, "resume entry")
        link = entry["next"]
        if type(link) is not str or not link:
            raise TypeError("resume link is not a string")
        resumes[str(key)] = Resume(
            link,
            parse_timestamp(entry.get("start")),
            parse_timestamp(entry.get("mark")),
            parse_timestamp(entry.get("began")),
        )
    return resumes


def encode_cursor(state: NuwebCursor) -> str | None:
    """Opaque cursor text (sorted keys, Nuweb's time format); None when nothing was read.

    Keys added by later versions are ignored by an older one reading this text.
    """
    if state == NuwebCursor():
        return None
    body = {
        "entry": _wire_times(state.entry),
        "inventory": _wire_times(state.inventory),
        "inventory_read_at": _wire_time(state.inventory_read_at),
        "deep_anchors": _wire_times(state.deep_anchors),
        "deep_read_at": _wire_time(state.deep_read_at),
        "order_items": _wire_time(state.order_items),
        "order_items_read_at": _wire_time(state.order_items_read_at),
        "order_items_since": _wire_time(state.order_items_since),
        "overrides": overrides_to_wire(state.overrides),
        "reconciled_at": _wire_time(state.reconciled_at),
        "named_holders": holders_to_wire(state.named_holders),
        "inventory_endpoint": state.inventory_endpoint,
        "events": {key: _wire_span(state.events[key]) for key in sorted(state.events)},
        "events_read_at": _wire_time(state.events_read_at),
        "resume": {key: _wire_resume(state.resume[key]) for key in sorted(state.resume)},
    }
    return orjson.dumps(body).decode()


def _wire_span(span: EventSpan) -> dict[str, str | None]:
    return {"start": _wire_time(span.start), "end": _wire_time(span.end)}


def _wire_resume(resume: Resume) -> dict[str, str | None]:
    return {
        "next": resume.next,
        "start": _wire_time(resume.start),
        "mark": _wire_time(resume.mark),
        "began": _wire_time(resume.began),
    }


def _wire_times(times: Mapping[str, datetime]) -> dict[str, str]:
    return {key: format_nuweb_time(times[key]) for key in sorted(times)}


def _wire_time(moment: datetime | None) -> str | None:
    return None if moment is None else format_nuweb_time(moment)


def deep_read_due(
    state: NuwebCursor, now: datetime, event_ids: Sequence[str], interval: timedelta
) -> bool:
    """Whether this read of entry tickets re-reads the lookback window."""
    last = state.deep_read_at
    if last is None or now < last or now - last >= interval:
        return True
    # An event read before without an anchor (its first read was a full one) has no
    # safe older start yet: go deep now rather than a minute from now.
    return any(key in state.entry and key not in state.deep_anchors for key in event_ids)


def events_due(state: NuwebCursor, now: datetime) -> bool:
    """Whether discovery lists the company's events in this poll."""
    return _interval_passed(state.events_read_at, now, EVENTS_INTERVAL)


def inventory_due(state: NuwebCursor, now: datetime) -> bool:
    """Whether a minute has passed since the last inventory read (or there was none)."""
    return _interval_passed(state.inventory_read_at, now, INVENTORY_INTERVAL)


def order_items_due(state: NuwebCursor, now: datetime, interval: timedelta) -> bool:
    """Whether ``interval`` has passed since the last order-items read (or there was none)."""
    return _interval_passed(state.order_items_read_at, now, interval)


def _interval_passed(last: datetime | None, now: datetime, interval: timedelta) -> bool:
    # A clock gone back makes the schedule untrustworthy: read rather than wait.
    return last is None or now < last or now - last >= interval


@dataclass(frozen=True, slots=True)
class OrderItemsWindow:
    """Where one order-items read starts (``lastUpdated``; None: from the beginning), the
    floor of its next position, and where the source's order-item history begins."""

    start: datetime | None
    floor: datetime | None
    since: datetime | None


def order_items_window(state: NuwebCursor) -> OrderItemsWindow:
    """The window of the next order-items read.

    A cursor of the version before order items has entry positions but no order-items
    read: its order-item history begins at its earliest entry position, where the history
    it already settled ends, so no older cancellation is ever reported as new. Only a
    source never read (or whose reads found nothing yet) reads all of its order items.
    """
    since = state.order_items_since
    if state.order_items is not None:
        # The overlap re-reads changes committed a little after their timestamp; what did
        # not change is dropped by the overrides' fold.
        start = shift(state.order_items, -ORDER_ITEMS_OVERLAP)
        return OrderItemsWindow(start, state.order_items, since)
    if state.order_items_read_at is None and state.entry:
        bound = min(state.entry.values())
        return OrderItemsWindow(bound, bound, bound)
    return OrderItemsWindow(None, None, since)


def order_items_position(
    items: Sequence[OrderItem],
    *,
    floor: datetime | None,
    elapsed: timedelta,
    newest: datetime | None = None,
) -> datetime | None:
    """The next position: the newest change read, minus how long the read took.

    Items are paged by offset: one changed during a long read may enter the result ahead
    of the current page and be passed over. It changed after the read began, so going back
    by the read's duration (as measured here: no clock is compared with the server's)
    reads it next time. ``newest`` is the newest change earlier steps of the same read saw.
    """
    changes = [item.changed_at for item in items if item.changed_at is not None]
    if newest is not None:
        changes.append(newest)
    if not changes:
        return floor
    newest = shift(max(changes), -max(elapsed, timedelta(0)))
    return newest if floor is None else max(newest, floor)


def sweep_due(state: NuwebCursor, now: datetime, interval: timedelta | None) -> bool:
    """Whether this poll re-reads every entry ticket (the adapter's own reconcile sweep).

    Never on a first read (it is full anyway) nor on a cursor without a sweep time (an
    older one: the schedule starts now rather than sweeping at once).
    """
    if interval is None or not state.entry or state.reconciled_at is None:
        return False
    return _interval_passed(state.reconciled_at, now, interval)


# --------------------------------------------------------------------------- order items


def overrides_to_wire(overrides: Overrides) -> dict[str, list[str]]:
    """Ids grouped by status key, sorted: the same overrides always give the same text."""
    wire: dict[str, list[str]] = {key: [] for key in OVERRIDE_STATUSES}
    keys = {status: key for key, status in OVERRIDE_STATUSES.items()}
    for ticket, status in overrides.items():
        wire[keys[status]].append(ticket)
    return {key: sorted(ids) for key, ids in wire.items()}


def overrides_from_wire(value: object) -> dict[TicketId, TicketStatus]:
    """The overrides a cursor holds (none in an older cursor); ValueError/TypeError if corrupt."""
    overrides: dict[TicketId, TicketStatus] = {}
    for key, ids in json_object(value or {}, "overrides").items():
        status = OVERRIDE_STATUSES.get(key)
        if status is None:
            raise ValueError("unknown override")
        for ticket in json_list(ids, "override ids"):
            overrides[TicketId(id_text(ticket))] = status
    return overrides


def holders_to_wire(holders: Mapping[TicketId, str]) -> dict[str, str]:
    """Named holders by ticket id, sorted: the same names always give the same text."""
    return {ticket: holders[ticket] for ticket in sorted(holders)}


def holders_from_wire(value: object) -> dict[TicketId, str]:
    """The named holders a cursor holds (none in an older cursor); TypeError if corrupt."""
    holders: dict[TicketId, str] = {}
    for ticket, name in json_object(value or {}, "named holders").items():
        if type(name) is not str or not name:
            raise TypeError("named holder is not a string")
        holders[TicketId(id_text(ticket))] = name
    return holders
