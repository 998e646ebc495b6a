"""Nuweb adapter: check-ins from ``GET /v1/entry/tickets``, cancellations and resales from
``GET /v1/order-items``, inventory from ``/v1/event-tickets``.

Reads (docs/design.md §5):

- **Entry tickets** (per-ticket state): ``startTime`` = the previous response's
  ``listEndTime`` (the API returns tickets modified at or after it). ``variable.status``
  gives the status, ``scannedOn`` the check-in, ``zoneData.scans`` the zone exits
  (``checked_out_at``).
- **Lookback, on deep reads only.** Offline scanners sync late, so a ticket may become
  visible with a modification time up to ``lookback`` (2 min) in the past. Re-reading
  that window every poll costs a dozen pages at door rates, so only a *deep* read, about
  once a minute (``DEEP_INTERVAL`` of the adapter's clock), does; the diff drops what did
  not change. A deep read starts at the ``listEndTime`` the cursor held when the previous
  deep read *began*, minus the lookback: that ``listEndTime`` is a server time earlier
  than the moment that read began, and a ticket first visible after that moment was
  modified no earlier than the moment minus the lookback. Starting from the current
  ``listEndTime`` instead would only cover back-dating up to
  ``lookback - DEEP_INTERVAL``. A cursor without deep state (a first read, or one written
  by an older version) makes the next read deep from its ``listEndTime`` minus the
  lookback, as every read used to be.
- **Inventory** (ticket types): the deprecated ``/v1/event-tickets`` (Nuweb API reference,
  "Retrieve Event Tickets") or its
  replacement ``/v1/sale-items`` with ``lastUpdated`` (newest ``updatedAt`` seen minus a
  small overlap) and ``withTrashed=true`` so removed types are seen. Nuweb caches identical
  GETs for 60 s, so inventory is read at most once a minute; the last read time lives in
  the cursor.
- **Order items** (``nuweb_orders``: what entry tickets cannot show): one stream for all
  configured events (``eventIds``, ``type`` ticket/season_ticket, ``withTrashed=true``,
  ``limit`` 100, paged by ``links.next``), incremental on ``lastUpdated`` ("on or after")
  from the newest change read minus an overlap, at most once a minute: cancellations and
  resales are rare next to scans, the per-company budget is spent on check-ins, and
  Nuweb may serve an identical GET from its 60 s cache anyway. They are read *before* the
  entry tickets, and when they tell of a ticket, that event's entry tickets are read from
  the time of the change (minus the overlap), so its record is read in this same poll and
  the status applied with its time. A cursor written before order items were read starts
  them at its earliest entry position: older history is settled and never reported.
- **Reconcile sweep**: every 6 h the adapter reads every entry ticket again itself
  (``reconciles_itself``): its cursor keeps the statuses order items imposed, which a read
  from scratch would lose.

Cost in steady state, per poll: one request per event for entry tickets; once a minute one
more per event for inventory and one in all for order items (more pages only when that
many changed, plus the entry pages since a change they tell of), and the deep read's
lookback pages.

Nuweb limits each company to 60 requests per rolling minute and says so in
``X-Remaining-Requests`` / ``X-Available-In-Seconds``; its 429 has no ``Retry-After``.
``RatePacer`` waits out the window when the budget is spent, and a 429 that still happens
(another client of the same company) is retried after ``X-Available-In-Seconds``.

Decisions where the documentation is silent, kept here so the payloads can be explained:

- ``locked`` ("the order is being modified; temporarily invalid for scanning", changelog
  of 16 Oct 2025) maps to ``void``: door systems must refuse it now, and its return to
  ``sold`` is then a ``ticket.reinstated``. ``status_raw`` keeps ``locked`` apart from a
  real void.
- An item whose ``variable`` is empty (PHP renders ``{}`` as ``[]``, as in the spec's
  example) is valid and not checked in: the endpoint lists tickets valid for entry.
- ``checked_in_at`` is ``variable.scannedOn`` (for ``scanned``, and kept for ``refunded`` /
  ``locked`` since those do not undo the scan); ``sold`` means not scanned.
- ``checked_out_at`` is the latest ``out`` zone scan when it is not older than the latest
  ``in`` scan, else null. Scans are deduplicated on ``uuid``. A re-entry only clears the
  field (the diff emits nothing for that); the next exit is a new ``ticket.checked_out``.
- ``customerName`` is one field: its first word becomes ``first_name``, the rest
  ``last_name``. Entry tickets carry no phone.
- Timeslots of the inventory response become their own ``TicketTypeRecord`` with id
  ``timeslot:<id>`` (their stock sells out independently); unlimited stock reads as null.
- Prices are ``basePrice`` in minor units; ``totalPrice`` (with fees) stays in ``raw``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import structlog

from notifier.errors import ConfigError, FatalProviderError, RetriableProviderError
from notifier.model import (
    Holder,
    SourceId,
    TicketId,
    TicketRecord,
    TicketStatus,
    TicketType,
    TicketTypeId,
    TicketTypeRecord,
)
from notifier.providers.base import PollResult
from notifier.providers.fields import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    json_list,
    json_object,
    optional_int as _opt_int,
    optional_text as _opt_str,
    php_next_link,
    php_section,
)
from notifier.providers.http import BACKGROUND, ProviderHttpClient, RequestBudget, RetryPolicy
from notifier.providers.nuweb_orders import (
    ENTRY_ITEM_TYPES,
    OrderItem,
    OrderItemsNews,
    apply_order_items,
    fold_order_items,
    overrides_from_wire,
    overrides_to_wire,
    parse_order_items_page,
    rewind_points,
)
from notifier.timeparse import parse_timestamp

__all__ = [
    "DEEP_INTERVAL",
    "DEFAULT_BASE_URL",
    "ORDER_ITEMS_INTERVAL",
    "ORDER_ITEMS_OVERLAP",
    "PROVIDER",
    "RECONCILE_INTERVAL",
    "RETRY_POLICY",
    "EntryPage",
    "InventoryPage",
    "NuwebCursor",
    "NuwebProvider",
    "OrderItemsWindow",
    "RatePacer",
    "decode_cursor",
    "deep_read_due",
    "encode_cursor",
    "format_nuweb_time",
    "order_items_due",
    "order_items_position",
    "order_items_window",
    "parse_entry_page",
    "parse_entry_ticket",
    "parse_inventory_page",
    "sweep_due",
]

log = structlog.get_logger(__name__)

PROVIDER = "nuweb"
DEFAULT_BASE_URL = "https://api.nuwebgroup.com"
ENTRY_PATH = "/v1/entry/tickets"
ORDER_ITEMS_PATH = "/v1/order-items"
InventoryEndpoint = Literal["event-tickets", "sale-items"]
INVENTORY_PATHS: Mapping[str, str] = {
    "event-tickets": "/v1/event-tickets",  # documented first; deprecated alias of /sale-items
    "sale-items": "/v1/sale-items",
}
ENTRY_LIMIT = 100  # the documented maximum (and default)
INVENTORY_LIMIT = 25  # the documented maximum (and default)
ORDER_ITEMS_LIMIT = 100  # the documented maximum (and default)
# Identical GETs within 60 s come from Nuweb's cache: reading sooner learns nothing.
INVENTORY_INTERVAL = timedelta(seconds=60)
# lastUpdated is "updated after": re-read a few seconds so a change committed in the same
# second as the watermark is not skipped. The diff drops the repeats.
INVENTORY_OVERLAP = timedelta(seconds=5)
# Entry tickets re-read the lookback window at most this often (module docstring).
DEEP_INTERVAL = timedelta(seconds=60)
# Order items are read at most this often (module docstring: budget and Nuweb's cache).
ORDER_ITEMS_INTERVAL = timedelta(seconds=60)
# lastUpdated is "on or after", to the microsecond; the overlap covers changes committed
# a little after their timestamp. Re-read items that changed nothing are dropped.
ORDER_ITEMS_OVERLAP = timedelta(seconds=30)
# The adapter's own full read of every entry ticket (it keeps the overrides a read from
# scratch would lose, so the service must not sweep it).
RECONCILE_INTERVAL = timedelta(hours=6)
RATE_WINDOW_SECONDS = 60.0  # the rolling window of the per-company limit
MAX_RATE_LIMIT_WAITS = 2  # 429s one request may wait out before the poll fails
MAX_PAGES = 10_000  # a server that never stops handing out next links cannot hang a poll
# Nuweb's 429 has no Retry-After; X-Available-In-Seconds says when the budget is back.
# The registry should build the company's shared client with this policy.
RETRY_POLICY = RetryPolicy(retry_after_headers=("Retry-After", "X-Available-In-Seconds"))

STATUSES: Mapping[str, TicketStatus] = {
    "sold": TicketStatus.VALID,
    "scanned": TicketStatus.VALID,
    "refunded": TicketStatus.REFUNDED,
    "locked": TicketStatus.VOID,
}
_known_status = StatusMap(PROVIDER, STATUSES)
_KEEPS_SCAN = frozenset({"scanned", "refunded", "locked"})

Clock = Callable[[], datetime]
SleepFn = Callable[[float], Awaitable[None]]


def format_nuweb_time(dt: datetime) -> str:
    """Nuweb's documented filter format, ``2021-01-01T00:00:00.000000Z``; naive is UTC."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- wire helpers


def _list(value: object, what: str) -> list[Any]:
    return [] if value is None else json_list(value, what)


def _opt_id(value: object) -> str | None:
    # Nuweb sends "" for an absent reference.
    return None if value is None or value == "" else _id(value)


def _opt_bool(value: object) -> bool | None:
    if value is None or type(value) is bool:
        return value
    raise TypeError("expected a boolean")


_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)


# --------------------------------------------------------------------------- entry tickets


@dataclass(frozen=True, slots=True)
class EntryPage:
    """One ``/v1/entry/tickets`` page, normalized."""

    tickets: list[TicketRecord]
    list_end_time: datetime | None
    next_link: str | None
    total: int | None


@dataclass(frozen=True, slots=True)
class _Scan:
    direction: str
    at: datetime
    zone_id: object


def parse_entry_page(payload: object, *, source: SourceId, event_id: str) -> EntryPage:
    """Normalize one entry-tickets page; ``FatalProviderError`` if it is not the envelope.

    ``event_id`` is the queried event: the items themselves do not carry it.
    """
    try:
        page = json_object(payload, "page")
        content = _list(page["content"], "content")
        records = [parse_entry_ticket(item, source=source, event_id=event_id) for item in content]
        return EntryPage(
            tickets=records,
            list_end_time=parse_timestamp(page.get("listEndTime")),
            next_link=php_next_link(page.get("pagination"), "pagination"),
            total=_opt_int(page.get("total")),
        )
    except _PARSE_ERRORS as exc:
        raise FatalProviderError("malformed Nuweb entry page: " + _describe(exc)) from exc


def parse_entry_ticket(item: object, *, source: SourceId, event_id: str) -> TicketRecord:
    """One entry ticket as a ``TicketRecord``; raises KeyError/TypeError/ValueError if malformed."""
    ticket = json_object(item, "ticket")
    const, stable = php_section(ticket, "const"), php_section(ticket, "stable")
    variable = php_section(ticket, "variable")
    status_raw = _opt_str(variable.get("status"))
    scans = _scans(php_section(ticket, "zoneData"))
    return TicketRecord(
        provider=PROVIDER,
        source=source,
        ticket_id=TicketId(_id(ticket["id"])),
        event_id=event_id,
        order_id=_opt_id(const.get("transactionId")),
        ticket_type=TicketType(
            id=_id(const["typeId"]),
            name=_opt_str(const.get("type")),
            price_minor=_opt_int(stable.get("price")),
        ),
        holder=_holder(stable),
        status=_status(status_raw),
        checked_in_at=_checked_in_at(status_raw, variable, scans),
        updated_at=None,  # entry tickets carry no modification time of their own
        raw=_entry_raw(ticket, const, variable, scans),
        status_raw=status_raw,
        checked_out_at=_checked_out_at(scans),
    )


def _status(raw: str | None) -> TicketStatus:
    if raw is None:
        return TicketStatus.VALID  # an empty ``variable``: listed as valid for entry
    return _known_status(raw)


def _holder(stable: dict[str, Any]) -> Holder:
    # An order-item level ``namedHolder`` overrides the customer's name where present.
    name = _opt_str(stable.get("namedHolder")) or _opt_str(stable.get("customerName"))
    first, last = _split_name(name)
    return Holder(first_name=first, last_name=last, email=_opt_str(stable.get("customerEmail")))


def _split_name(name: str | None) -> tuple[str | None, str | None]:
    parts = (name or "").split(None, 1)
    if not parts:
        return None, None
    return parts[0], parts[1] if len(parts) > 1 else None


def _scans(zone_data: dict[str, Any]) -> list[_Scan]:
    """Zone scans in time order, each ``uuid`` once (a re-synced scan repeats its uuid)."""
    seen: set[str] = set()
    scans: list[_Scan] = []
    for entry in _list(zone_data.get("scans"), "scans"):
        scan = json_object(entry, "scan")
        uuid = _opt_str(scan.get("uuid"))
        at = parse_timestamp(scan.get("scannedOn"))
        if at is None or (uuid is not None and uuid in seen):
            continue
        if uuid is not None:
            seen.add(uuid)
        scans.append(_Scan(str(scan.get("scan")), at, scan.get("zoneId")))
    scans.sort(key=lambda s: s.at)
    return scans


def _latest(scans: Sequence[_Scan], direction: str) -> datetime | None:
    times = [scan.at for scan in scans if scan.direction == direction]
    return times[-1] if times else None


def _checked_in_at(
    status_raw: str | None, variable: dict[str, Any], scans: Sequence[_Scan]
) -> datetime | None:
    if status_raw not in _KEEPS_SCAN:
        return None  # sold (or no status): not scanned, or the scan was undone
    scanned_on = parse_timestamp(variable.get("scannedOn"))
    if scanned_on is None and status_raw == "scanned":
        return _latest(scans, "in")  # scanned without a time: the zone entry is the best clue
    return scanned_on


def _checked_out_at(scans: Sequence[_Scan]) -> datetime | None:
    last_out = _latest(scans, "out")
    last_in = _latest(scans, "in")
    if last_out is None or (last_in is not None and last_in > last_out):
        return None
    return last_out


def _entry_raw(
    ticket: dict[str, Any],
    const: dict[str, Any],
    variable: dict[str, Any],
    scans: Sequence[_Scan],
) -> dict[str, Any]:
    return {
        "barcode": const.get("barcode"),
        "customerId": const.get("customerId"),
        "typeDuringSale": const.get("typeDuringSale"),
        "itemType": ticket.get("itemType"),
        "scannedBy": variable.get("scannedBy"),
        "lastScanZoneId": scans[-1].zone_id if scans else None,
    }


# --------------------------------------------------------------------------- inventory


@dataclass(frozen=True, slots=True)
class InventoryPage:
    """One inventory page: ticket types (sale items and timeslots), next link, total."""

    ticket_types: list[TicketTypeRecord]
    next_link: str | None
    total: int | None
    items: int  # sale items on the page (timeslots excluded), to stop at ``meta.total``


def parse_inventory_page(payload: object, *, source: SourceId, event_id: str) -> InventoryPage:
    """Normalize an ``/event-tickets`` (``tickets``) or ``/sale-items`` (``saleItems``) page.

    ``event_id`` is the queried event, the one timeslots (which carry none) belong to.
    """
    try:
        page = json_object(payload, "page")
        items = _list(page["saleItems"] if "saleItems" in page else page["tickets"], "items")
        records = [_sale_item(item, source=source, event_id=event_id) for item in items]
        for slot in _list(page.get("timeslots"), "timeslots"):
            records.append(_timeslot(slot, source=source, event_id=event_id))
        meta = php_section(page, "meta")
        return InventoryPage(
            records,
            php_next_link(page.get("links"), "links"),
            _opt_int(meta.get("total")),
            len(items),
        )
    except _PARSE_ERRORS as exc:
        raise FatalProviderError("malformed Nuweb inventory page: " + _describe(exc)) from exc


def _sale_item(item: object, *, source: SourceId, event_id: str) -> TicketTypeRecord:
    wire = json_object(item, "sale item")
    return TicketTypeRecord(
        provider=PROVIDER,
        source=source,
        ticket_type_id=TicketTypeId(_id(wire["id"])),
        event_id=_opt_id(wire.get("eventId")) or event_id,
        name=_opt_str(wire.get("name")),
        price_minor=_opt_int(wire.get("basePrice")),
        currency=_opt_str(wire.get("currencyCode")),
        total_stock=_opt_int(wire.get("totalStock")),
        sold=_opt_int(wire.get("sold")),
        reserved=_opt_int(wire.get("reserved")),
        current_stock=_opt_int(wire.get("currentStock")),
        on_sale=_opt_bool(wire.get("onSale")),
        deleted_at=parse_timestamp(wire.get("deletedAt")),
        updated_at=parse_timestamp(wire.get("updatedAt")),
        sale_starts_at=parse_timestamp(wire.get("onSaleFrom")),
        sale_ends_at=parse_timestamp(wire.get("onSaleUntil")),
        raw={
            "itemId": wire.get("itemId"),
            "totalPrice": wire.get("totalPrice"),
            "eventTimeslotId": wire.get("eventTimeslotId"),
            "validFrom": wire.get("validFrom"),
            "validUntil": wire.get("validUntil"),
        },
    )


def _timeslot(slot: object, *, source: SourceId, event_id: str) -> TicketTypeRecord:
    wire = json_object(slot, "timeslot")
    # Unlimited stock has no meaningful count: null keeps it from ever "selling out".
    unlimited = _opt_bool(wire.get("hasUnlimitedStock")) is True
    return TicketTypeRecord(
        provider=PROVIDER,
        source=source,
        ticket_type_id=TicketTypeId("timeslot:" + _id(wire["id"])),
        event_id=event_id,
        name=_opt_str(wire.get("name")),
        price_minor=None,
        currency=None,
        total_stock=None if unlimited else _opt_int(wire.get("totalStock")),
        sold=None,
        reserved=None,
        current_stock=None if unlimited else _opt_int(wire.get("currentStock")),
        on_sale=None,
        deleted_at=parse_timestamp(wire.get("deletedAt")),
        updated_at=parse_timestamp(wire.get("updatedAt")),
        sale_starts_at=parse_timestamp(wire.get("onSaleFrom")),
        sale_ends_at=parse_timestamp(wire.get("onSaleUntil")),
        raw={"startAt": wire.get("startAt"), "endAt": wire.get("endAt")},
    )


# --------------------------------------------------------------------------- cursor


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
    entry tickets (``nuweb_orders``); ``reconciled_at`` when the last reconcile sweep of the
    entry tickets began (adapter clock).
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
        )
    except (orjson.JSONDecodeError, *_PARSE_ERRORS) as exc:
        raise FatalProviderError("corrupt Nuweb cursor: " + type(exc).__name__) from exc


def _times(value: object) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for key, text in json_object(value or {}, "positions").items():
        when = parse_timestamp(text)
        if when is None:
            raise ValueError("empty position")
        times[str(key)] = when
    return times


def encode_cursor(state: NuwebCursor) -> str | None:
    """Opaque cursor text (sorted keys, Nuweb's time format); None when nothing was read.

    The deep-read and order-item keys are new; an older version reading this text ignores
    them.
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
    }
    return orjson.dumps(body).decode()


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
        return OrderItemsWindow(state.order_items - ORDER_ITEMS_OVERLAP, state.order_items, since)
    if state.order_items_read_at is None and state.entry:
        bound = min(state.entry.values())
        return OrderItemsWindow(bound, bound, bound)
    return OrderItemsWindow(None, None, since)


def order_items_position(
    items: Sequence[OrderItem], *, floor: datetime | None, elapsed: timedelta
) -> datetime | None:
    """The next position: the newest change read, minus how long the read took.

    Items are paged by offset: one changed during a long read may enter the result ahead
    of the current page and be passed over. It changed after the read began, so going back
    by the read's duration (as measured here: no clock is compared with the server's)
    reads it next time.
    """
    changes = [item.changed_at for item in items if item.changed_at is not None]
    if not changes:
        return floor
    newest = max(changes) - max(elapsed, timedelta(0))
    return newest if floor is None else max(newest, floor)


def sweep_due(state: NuwebCursor, now: datetime, interval: timedelta | None) -> bool:
    """Whether this poll re-reads every entry ticket (the adapter's own reconcile sweep).

    Never on a first read (it is full anyway) nor on a cursor without a sweep time (an
    older one: the schedule starts now rather than sweeping at once).
    """
    if interval is None or not state.entry or state.reconciled_at is None:
        return False
    return _interval_passed(state.reconciled_at, now, interval)


# --------------------------------------------------------------------------- rate pacing


def _header_int(headers: Mapping[str, str] | None, name: str) -> int | None:
    if not headers:
        return None
    text = headers.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return max(math.ceil(value), 0) if math.isfinite(value) else None


class RatePacer:
    """Our view of Nuweb's per-company limiter, learnt from its response headers.

    When a response says no request remains, the next request first waits
    ``X-Available-In-Seconds`` (the whole window if absent). Share one pacer between the
    sources of one company to have them wait together.
    """

    def __init__(self, *, clock: Clock, sleep: SleepFn, window: float = RATE_WINDOW_SECONDS):
        self._clock = clock
        self._sleep = sleep
        self._window = window
        self._resume_at: datetime | None = None
        self.waited = 0.0

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Note a response's rate headers; a spent budget blocks until it replenishes."""
        remaining = _header_int(headers, "X-Remaining-Requests")
        if remaining is None or remaining > 0:
            return
        seconds = _header_int(headers, "X-Available-In-Seconds")
        wait = float(seconds) if seconds is not None else self._window
        self._resume_at = self._clock() + timedelta(seconds=wait)

    async def wait_turn(self) -> None:
        """Wait, if the last response spent the budget, until it replenishes."""
        resume_at, self._resume_at = self._resume_at, None
        if resume_at is None:
            return
        delay = (resume_at - self._clock()).total_seconds()
        if delay > 0:
            log.info("nuweb_rate_paced", provider=PROVIDER, wait_seconds=round(delay, 3))
            self.waited += delay
            await self._sleep(delay)

    async def wait_after_429(self, seconds: float | None) -> None:
        """A 429 the client gave up on: wait what Nuweb stated (or the window), once more."""
        wait = seconds if seconds is not None else self._window
        log.warning("nuweb_rate_limited", provider=PROVIDER, wait_seconds=wait)
        self.waited += wait
        await self._sleep(wait)


# --------------------------------------------------------------------------- adapter


@dataclass(slots=True)
class _Read:
    payload: object
    requests: int


@dataclass(frozen=True, slots=True)
class _OrderItemsRead:
    """What this poll knows from order items (read now, or the cursor's if not due)."""

    found: OrderItemsNews
    position: datetime | None
    read_at: datetime | None
    since: datetime | None
    # Per event, where entry tickets are read from to see the tickets ``found`` tells of.
    rewind: Mapping[str, datetime | None] = field(default_factory=dict)
    requests: int = 0


@dataclass(frozen=True, slots=True)
class _EntryPlan:
    deep: bool  # re-read the lookback window
    sweep: bool  # read every entry ticket (the reconcile sweep)
    rewind: Mapping[str, datetime | None]


class NuwebProvider:
    """Reads one Nuweb company's configured events as a ``Provider``.

    The token travels only in the ``Authorization`` header, with ``X-NU-COMPANY-ID`` on
    every call (without it Nuweb uses the user's "last selected company"). ``http`` may be
    shared by every source of the company (one ``RequestBudget``); ``pacer`` likewise.
    """

    def __init__(
        self,
        source_id: SourceId | str,
        token: str,
        company_id: int | str,
        *,
        event_ids: Sequence[int | str],
        base_url: str = DEFAULT_BASE_URL,
        lookback: timedelta = timedelta(minutes=2),
        http: ProviderHttpClient | None = None,
        inventory_endpoint: InventoryEndpoint = "event-tickets",
        clock: Clock | None = None,
        sleep: SleepFn = asyncio.sleep,
        pacer: RatePacer | None = None,
        order_items_interval: timedelta = ORDER_ITEMS_INTERVAL,
        reconcile_interval: timedelta | None = RECONCILE_INTERVAL,
    ) -> None:
        if not event_ids:
            raise ConfigError("nuweb source " + str(source_id) + ": event_ids is required")
        self._source = SourceId(str(source_id))
        self._headers = {
            "Authorization": "Bearer " + token,
            "X-NU-COMPANY-ID": str(company_id),
            "Accept": "application/json",
        }
        self._event_ids = tuple(str(event_id) for event_id in event_ids)
        self._base = base_url.rstrip("/")
        self._inventory_path = INVENTORY_PATHS[inventory_endpoint]
        self._lookback = lookback
        self._clock = clock or (lambda: datetime.now(UTC))
        self._owns_http = http is None
        self._http = http or ProviderHttpClient(
            base_url,
            policy=RETRY_POLICY,
            budget=RequestBudget(60.0, RATE_WINDOW_SECONDS),
            sleep=sleep,
        )
        self._pacer = pacer or RatePacer(clock=self._clock, sleep=sleep)
        self._order_items_interval = order_items_interval
        self._reconcile_interval = reconcile_interval

    # Its cursor carries the order items' overrides, which a read from scratch would lose
    # (and could only rebuild by reading every order item): it sweeps entry tickets itself.
    reconciles_itself = True

    def __repr__(self) -> str:
        return "NuwebProvider(source=" + repr(self._source) + ")"  # never the token

    @property
    def name(self) -> str:
        return PROVIDER

    async def poll(self, cursor: str | None) -> PollResult:
        """Order items and inventory if a minute has passed; entry tickets of every event.

        Order items come first: the entry tickets they tell of are then read in this poll
        (``rewind``), so a cancellation is applied with its time in the read that learns it.
        """
        state = decode_cursor(cursor)
        now = self._clock()
        orders = await self._read_order_items(state, now)
        plan = self._plan(state, now, orders.rewind)
        tickets, entry, entry_requests = await self._read_entries(state, plan)
        types, inventory, inventory_requests = await self._read_inventory_if_due(state, now)
        anchors, deep_read_at = self._deep_state(state, deep=plan.deep, now=now)
        new_state = NuwebCursor(
            entry=entry,
            inventory=inventory,
            inventory_read_at=now if inventory_due(state, now) else state.inventory_read_at,
            deep_anchors=anchors,
            deep_read_at=deep_read_at,
            order_items=orders.position,
            order_items_read_at=orders.read_at,
            order_items_since=orders.since,
            overrides=orders.found.overrides,
            reconciled_at=now if plan.sweep or state.reconciled_at is None else state.reconciled_at,
        )
        return PollResult(
            tickets=apply_order_items(_latest_per_ticket(tickets), orders.found),
            cursor=encode_cursor(new_state),
            complete=plan.sweep or not state.entry,
            ticket_types=_latest_per_type(types),
            requests=orders.requests + entry_requests + inventory_requests,
        )

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close()

    # -- entry tickets

    def _deep_state(
        self, state: NuwebCursor, *, deep: bool, now: datetime
    ) -> tuple[Mapping[str, datetime], datetime | None]:
        """The deep anchors and time the next cursor carries."""
        if not self._lookback:
            return {}, None  # no deep reads to schedule
        if not deep:
            return state.deep_anchors, state.deep_read_at
        # This read began at the listEndTimes it was given: the next deep read starts there.
        return state.entry, now

    def _plan(
        self, state: NuwebCursor, now: datetime, rewind: Mapping[str, datetime | None]
    ) -> _EntryPlan:
        deep = bool(self._lookback) and deep_read_due(state, now, self._event_ids, DEEP_INTERVAL)
        sweep = sweep_due(state, now, self._reconcile_interval)
        if sweep:
            log.info("nuweb_reconcile_sweep", provider=PROVIDER, source=self._source)
        return _EntryPlan(deep=deep, sweep=sweep, rewind=rewind)

    def _entry_start(self, state: NuwebCursor, event_id: str, plan: _EntryPlan) -> datetime | None:
        position = state.entry.get(event_id)
        if position is None or plan.sweep:
            return None
        start = position
        if plan.deep:
            anchor = state.deep_anchors.get(event_id, position)
            start = min(anchor, position) - self._lookback
        if event_id not in plan.rewind:
            return start
        back = plan.rewind[event_id]
        return None if back is None else min(start, back)

    async def _read_entries(
        self, state: NuwebCursor, plan: _EntryPlan
    ) -> tuple[list[TicketRecord], dict[str, datetime], int]:
        # A sweep's pages yield to the live polls of the company's other sources.
        background = BACKGROUND.set(plan.sweep)
        try:
            return await self._read_entry_streams(state, plan)
        finally:
            BACKGROUND.reset(background)

    async def _read_entry_streams(
        self, state: NuwebCursor, plan: _EntryPlan
    ) -> tuple[list[TicketRecord], dict[str, datetime], int]:
        records: list[TicketRecord] = []
        positions = dict(state.entry)
        requests = 0
        for event_id in self._event_ids:
            page_records, end_time, used = await self._read_entry_stream(
                event_id, positions.get(event_id), self._entry_start(state, event_id, plan)
            )
            records.extend(page_records)
            requests += used
            if end_time is not None:
                positions[event_id] = end_time
        return records, positions, requests

    async def _read_entry_stream(
        self, event_id: str, position: datetime | None, start: datetime | None
    ) -> tuple[list[TicketRecord], datetime | None, int]:
        params = {"eventId": event_id, "limit": str(ENTRY_LIMIT), "includeZones": "true"}
        if start is not None:
            params["startTime"] = format_nuweb_time(start)
        url: str | None = self._base + ENTRY_PATH
        records: list[TicketRecord] = []
        end_time: datetime | None = None
        requests, seen = 0, _Links()
        while url is not None:
            read = await self._get(url, params)
            requests += read.requests
            page = parse_entry_page(read.payload, source=self._source, event_id=event_id)
            records.extend(page.tickets)
            # The first page's listEndTime is the earliest: changes made while we paged
            # fall after it and are read again next time.
            end_time = end_time or page.list_end_time
            url = seen.next(page.next_link, done=not page.tickets)
        return records, end_time or position, requests

    # -- order items

    async def _read_order_items(self, state: NuwebCursor, now: datetime) -> _OrderItemsRead:
        if not order_items_due(state, now, self._order_items_interval):
            unchanged = OrderItemsNews(dict(state.overrides), {})
            return _OrderItemsRead(
                unchanged, state.order_items, state.order_items_read_at, state.order_items_since
            )
        window = order_items_window(state)
        began = self._clock()
        items, requests = await self._fetch_order_items(window.start)
        found = fold_order_items(state.overrides, items, since=window.since)
        elapsed = self._clock() - began
        position = order_items_position(items, floor=window.floor, elapsed=elapsed)
        rewind = rewind_points(
            found.news,
            event_ids=self._event_ids,
            overlap=ORDER_ITEMS_OVERLAP,
            fallback=window.start,
        )
        log.info(
            "nuweb_order_items_read",
            provider=PROVIDER,
            source=self._source,
            items=len(items),
            news=len(found.news),
            requests=requests,
        )
        return _OrderItemsRead(found, position, now, window.since, rewind, requests)

    async def _fetch_order_items(self, start: datetime | None) -> tuple[list[OrderItem], int]:
        # One stream for every configured event. withTrashed: Nuweb's manual says cancelled
        # items are "removed from the order", which we take as soft-deleted, hidden without.
        params = {
            "eventIds": ",".join(self._event_ids),
            "type": ",".join(ENTRY_ITEM_TYPES),
            "withTrashed": "true",
            "limit": str(ORDER_ITEMS_LIMIT),
        }
        if start is not None:
            params["lastUpdated"] = format_nuweb_time(start)
        url: str | None = self._base + ORDER_ITEMS_PATH
        items: list[OrderItem] = []
        requests, rows, seen = 0, 0, _Links()
        while url is not None:
            read = await self._get(url, params)
            requests += read.requests
            page = parse_order_items_page(read.payload)
            items.extend(page.items)
            rows += page.rows
            finished = page.rows == 0 or (page.total is not None and rows >= page.total)
            url = seen.next(page.next_link, done=finished)
        return items, requests

    # -- inventory

    async def _read_inventory_if_due(
        self, state: NuwebCursor, now: datetime
    ) -> tuple[list[TicketTypeRecord], dict[str, datetime], int]:
        if not inventory_due(state, now):
            return [], dict(state.inventory), 0
        return await self._read_inventories(state)

    async def _read_inventories(
        self, state: NuwebCursor
    ) -> tuple[list[TicketTypeRecord], dict[str, datetime], int]:
        records: list[TicketTypeRecord] = []
        watermarks = dict(state.inventory)
        requests = 0
        for event_id in self._event_ids:
            found, used = await self._read_inventory(event_id, watermarks.get(event_id))
            records.extend(found)
            requests += used
            newest = _newest_update(found, watermarks.get(event_id))
            if newest is not None:
                watermarks[event_id] = newest
        return records, watermarks, requests

    def _inventory_params(self, event_id: str, watermark: datetime | None) -> dict[str, str]:
        params = {"eventId": event_id, "withTrashed": "true", "limit": str(INVENTORY_LIMIT)}
        if watermark is not None:
            params["lastUpdated"] = format_nuweb_time(watermark - INVENTORY_OVERLAP)
        return params

    async def _read_inventory(
        self, event_id: str, watermark: datetime | None
    ) -> tuple[list[TicketTypeRecord], int]:
        # No page/offset on the first request: Nuweb then pages by offset from 0. Later
        # pages follow links.next with our filters re-applied, since a link may carry
        # only ``?page=N`` (as the "Retrieve Event Tickets" example does).
        params = self._inventory_params(event_id, watermark)
        url: str | None = self._base + self._inventory_path
        records: list[TicketTypeRecord] = []
        requests, items, seen = 0, 0, _Links()
        while url is not None:
            read = await self._get(url, params)
            requests += read.requests
            page = parse_inventory_page(read.payload, source=self._source, event_id=event_id)
            records.extend(page.ticket_types)
            items += page.items
            finished = page.items == 0 or (page.total is not None and items >= page.total)
            url = seen.next(page.next_link, done=finished)
        return records, requests

    # -- HTTP with pacing

    async def _get(self, url: str, params: Mapping[str, str]) -> _Read:
        """One GET paced by the rate headers; a 429 is waited out a bounded number of times."""
        requests = 0
        waits = 0
        while True:
            await self._pacer.wait_turn()
            try:
                result = await self._http.fetch_json(url, params=params, headers=self._headers)
            except RetriableProviderError as exc:
                # The client tried ``max_attempts`` times before giving up.
                requests += self._http.policy.max_attempts
                if exc.status != 429 or waits >= MAX_RATE_LIMIT_WAITS:
                    raise
                waits += 1
                await self._pacer.wait_after_429(exc.retry_after)
                continue
            self._pacer.observe(result.headers)
            return _Read(result.payload, requests + result.attempts)


class _Links:
    """Next links of one read: stops at the end, and refuses a link handed out twice."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def next(self, link: str | None, *, done: bool) -> str | None:
        if link is None or done:
            return None
        if link in self._seen or len(self._seen) >= MAX_PAGES:
            raise FatalProviderError("Nuweb pagination repeated a next link")
        self._seen.add(link)
        return link


def _newest_update(
    records: Sequence[TicketTypeRecord], previous: datetime | None
) -> datetime | None:
    times = [record.updated_at for record in records if record.updated_at is not None]
    if previous is not None:
        times.append(previous)
    return max(times) if times else None


def _latest_per_ticket(records: list[TicketRecord]) -> list[TicketRecord]:
    # A ticket modified while we paged shows up again on a later page: keep the newest.
    latest = {record.ticket_id: record for record in records}
    return records if len(latest) == len(records) else list(latest.values())


def _latest_per_type(records: list[TicketTypeRecord]) -> list[TicketTypeRecord]:
    # Timeslots repeat on every page that lists one of their tickets.
    latest = {record.ticket_type_id: record for record in records}
    return records if len(latest) == len(records) else list(latest.values())
