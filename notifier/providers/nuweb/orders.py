"""Nuweb order items: what entry tickets cannot show, folded into their records (pure).

``GET /v1/order-items`` carries the two changes ``/v1/entry/tickets`` never shows:

- **Cancelled without refund**: ``cancelledAt`` set and ``refunded`` 0. A refund cancels
  the item too, but sets ``refunded`` > 0 and the entry ticket's status ``refunded``, which
  already maps to ``refunded``: such an item never reads as canceled.
- **Resold**: the buyer's NEW item carries ``replacedOrderItem {type: "resale",
  orderItemId: <old item>}``; the OLD ticket becomes ``resold``, the new one is issued as
  any new entry ticket. (An order *modification* replaces items too; the old item's own
  ``cancelledAt`` says what became of it, so ``type: "modification"`` is not read.)

**Join.** An entry ticket's ``id`` is its order item's ``id``: the spec's examples pair
entry ticket 1 and order item 1 on the same barcode (97WG2VGJK2), customer (1) and order
(RO3PMNGE1N), and entry tickets name other order items in ``parentOrderItemId``. The
barcode is not the key: a transfer may re-issue it (``historicBarcodes``).

**Overrides.** Entry tickets keep their own status after a cancellation or a resale (the
spec's statuses are sold/scanned/refunded/locked), and are read again later: by the
lookback of a deep read, a reconcile sweep, a later scan. So the statuses the order items
imposed (``overrides``: ticket id → canceled/resold) live in the adapter's cursor and are
applied to every read of the ticket; otherwise its next read would "reinstate" it. Only
ids are kept, to keep the cursor small after a mass cancellation; the time of the change
(``occurred_at``) is known in the read that learns it, which is also the read whose entry
tickets it is applied to first (the adapter re-reads the entry tickets changed since).

**Named holders.** An order item's ``namedHolder`` ("the named_holder override set at
the order item level", admin OpenAPI, GET /v1/order-items; changelog of 29 August 2024)
names who holds the ticket when it is not the customer: it overrides the entry ticket's
``customerName``. Entry tickets do not carry it, so the names stand in the cursor beside
the statuses (``holders``), and a change of one is news that makes the adapter read the
ticket's entry record again, as a cancellation does.

An item that no longer reads as cancelled lifts its override (the entry ticket's own status
applies again, a ``ticket.reinstated``); a resale is final. A source that settled before
order items were read has a beginning (``since``): cancellations and resales made before
it are its settled history, never reported, even when an edit of their order makes their
items read again (``lastUpdated`` covers the order's updates too).

The spec's schema and example disagree on shapes: ``data`` is a list in the example and an
object in the schema; ``replacedOrderItem`` is one object in the example and an array in
the schema. Both shapes of ``replacedOrderItem`` are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from notifier.errors import FatalProviderError
from notifier.model import TicketId, TicketRecord, TicketStatus
from notifier.providers.wire import (
    describe_problem as _describe,
    id_text,
    json_list,
    json_object,
    optional_id,
    optional_int,
    optional_text,
    php_next_link,
    php_section,
    split_name,
)
from notifier.timeparse import parse_timestamp

__all__ = [
    "ENTRY_ITEM_TYPES",
    "OVERRIDE_STATUSES",
    "OrderItem",
    "OrderItemsNews",
    "OrderItemsPage",
    "StatusNews",
    "apply_order_items",
    "fold_order_items",
    "parse_order_items_page",
    "rewind_points",
]

# The order item types that appear as entry tickets (entry ``itemType`` ticket or
# season_ticket; products are not requested): fees and vouchers are never admitted.
ENTRY_ITEM_TYPES = ("ticket", "season_ticket")
# Cursor keys of the overrides, by the status they impose.
OVERRIDE_STATUSES: Mapping[str, TicketStatus] = {
    "canceled": TicketStatus.CANCELED,
    "resold": TicketStatus.RESOLD,
}
_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)

Overrides = Mapping[TicketId, TicketStatus]


@dataclass(frozen=True, slots=True)
class OrderItem:
    """The fields of one order item that say what became of its ticket."""

    item_id: TicketId
    event_id: str | None
    changed_at: datetime | None  # ``meta.lastUpdated`` (what the filter compares), else updatedAt
    created_at: datetime | None
    cancelled_at: datetime | None
    refunded: int  # minor units
    resale_of: tuple[TicketId, ...] = ()
    named_holder: str | None = None

    @property
    def canceled(self) -> bool:
        """Cancelled without a refund (a refund cancels the item too)."""
        return self.cancelled_at is not None and self.refunded <= 0


@dataclass(frozen=True, slots=True)
class OrderItemsPage:
    """One ``/v1/order-items`` page: the entry-ticket items, the rows read, paging."""

    items: list[OrderItem]
    rows: int  # every row of the page, the skipped types too, to stop at ``meta.total``
    next_link: str | None
    total: int | None


@dataclass(frozen=True, slots=True)
class StatusNews:
    """What one read of order items changed about one ticket.

    ``status`` is the override now standing, or None when the entry ticket's own status
    applies again (or never stopped: a resale's new ticket, which only gains ``details``).
    ``seen_at`` is the earliest time the telling item changed: the entry ticket changed then
    too, so the adapter re-reads entry tickets from there.
    """

    status: TicketStatus | None
    at: datetime | None
    event_id: str | None
    seen_at: datetime | None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderItemsNews:
    """The overrides and named holders after a read, and what that read changed."""

    overrides: dict[TicketId, TicketStatus]
    news: dict[TicketId, StatusNews]
    holders: dict[TicketId, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- parsing


def parse_order_items_page(payload: object) -> OrderItemsPage:
    """Normalize one order-items page; ``FatalProviderError`` if it is not the envelope."""
    try:
        page = json_object(payload, "page")
        rows = json_list(page["data"], "data")
        meta = php_section(page, "meta")
        return OrderItemsPage(
            items=[item for item in map(parse_order_item, rows) if item is not None],
            rows=len(rows),
            next_link=php_next_link(page.get("links"), "links"),
            total=optional_int(meta.get("total")),
        )
    except _PARSE_ERRORS as exc:
        raise FatalProviderError("malformed Nuweb order-items page: " + _describe(exc)) from exc


def parse_order_item(row: object) -> OrderItem | None:
    """One order item, or None for a type never admitted; raises KeyError/TypeError/ValueError."""
    wire = json_object(row, "order item")
    attributes = php_section(wire, "attributes")
    item_type = attributes.get("type")
    if item_type is not None and item_type not in ENTRY_ITEM_TYPES:
        return None
    changed = parse_timestamp(php_section(wire, "meta").get("lastUpdated"))
    return OrderItem(
        item_id=TicketId(id_text(wire["id"])),
        event_id=optional_id(attributes.get("eventId")),
        changed_at=changed or parse_timestamp(attributes.get("updatedAt")),
        created_at=parse_timestamp(attributes.get("createdAt")),
        cancelled_at=parse_timestamp(attributes.get("cancelledAt")),
        refunded=optional_int(attributes.get("refunded")) or 0,
        resale_of=_resale_of(attributes.get("replacedOrderItem")),
        named_holder=optional_text(attributes.get("namedHolder")) or None,
    )


def _resale_of(value: object) -> tuple[TicketId, ...]:
    if value is None or value == []:
        return ()
    replaced = value if isinstance(value, list) else [value]
    links = [json_object(entry, "replacedOrderItem") for entry in replaced]
    return tuple(
        TicketId(id_text(link["orderItemId"])) for link in links if link.get("type") == "resale"
    )


# --------------------------------------------------------------------------- folding


def fold_order_items(
    overrides: Overrides,
    items: Iterable[OrderItem],
    *,
    since: datetime | None = None,
    holders: Mapping[TicketId, str] | None = None,
) -> OrderItemsNews:
    """The overrides after reading ``items`` (in any order, repeats allowed), and the news.

    ``since`` is where the source's order-item history begins (a source that settled
    before order items were read): a cancellation or resale made before it is settled
    history, ignored even when its item is read again (an edit of its order updates it).
    """
    fold = _Fold(dict(overrides), since, dict(holders or {}))
    for item in items:
        fold.own(item)
        fold.holder(item)
        for old in item.resale_of:
            fold.resale(item, old)
    return OrderItemsNews(fold.standing, fold.news, fold.holders)


class _Fold:
    """Overrides and news, one order item at a time."""

    def __init__(
        self,
        standing: dict[TicketId, TicketStatus],
        since: datetime | None,
        holders: dict[TicketId, str],
    ) -> None:
        self.standing = standing
        self.holders = holders
        self.news: dict[TicketId, StatusNews] = {}
        self._since = since

    def holder(self, item: OrderItem) -> None:
        """The item's named holder, set, changed or cleared: news for its entry ticket."""
        if self.holders.get(item.item_id) == item.named_holder:
            return
        if item.named_holder is None:
            del self.holders[item.item_id]
        else:
            self.holders[item.item_id] = item.named_holder
        self.news.setdefault(
            item.item_id, StatusNews(None, item.changed_at, item.event_id, item.changed_at)
        )

    def own(self, item: OrderItem) -> None:
        """What the item says of its own ticket: cancelled, or no longer."""
        current = self.standing.get(item.item_id)
        if current is TicketStatus.RESOLD:
            return  # final: the old item's later edits (its deletion) change nothing
        if item.canceled and current is not TicketStatus.CANCELED:
            self._cancel(item)
        elif not item.canceled and current is TicketStatus.CANCELED:
            del self.standing[item.item_id]
            self.news[item.item_id] = StatusNews(
                None, item.changed_at, item.event_id, item.changed_at
            )

    def _cancel(self, item: OrderItem) -> None:
        assert item.cancelled_at is not None  # ``canceled`` says so
        if self._history(item.cancelled_at):
            return
        self.standing[item.item_id] = TicketStatus.CANCELED
        self.news[item.item_id] = StatusNews(
            TicketStatus.CANCELED,
            item.cancelled_at,
            item.event_id,
            _earliest(item.cancelled_at, item.changed_at),
            {"cancelledAt": item.cancelled_at.isoformat()},
        )

    def resale(self, item: OrderItem, old: TicketId) -> None:
        """The new item ``item`` replaced ``old`` through a resale: ``old`` is resold."""
        sold_at = item.created_at or item.changed_at
        if self.standing.get(old) is TicketStatus.RESOLD or self._history(sold_at):
            return  # read again in the overlap (already told), or settled history
        self.standing[old] = TicketStatus.RESOLD
        seen_at = _earliest(item.created_at, item.changed_at)
        self.news[old] = StatusNews(
            TicketStatus.RESOLD, sold_at, item.event_id, seen_at, {"resoldAs": item.item_id}
        )
        # The new ticket is issued from its entry ticket; this only links it to the old one.
        self.news.setdefault(
            item.item_id, StatusNews(None, sold_at, item.event_id, seen_at, {"resaleOf": old})
        )

    def _history(self, moment: datetime | None) -> bool:
        return self._since is not None and moment is not None and moment < self._since


def _earliest(*times: datetime | None) -> datetime | None:
    known = [time for time in times if time is not None]
    return min(known) if known else None


# --------------------------------------------------------------------------- applying


def apply_order_items(
    records: Sequence[TicketRecord], found: OrderItemsNews
) -> Sequence[TicketRecord]:
    """The entry-ticket records with the order items' statuses imposed (same order)."""
    if not found.overrides and not found.news and not found.holders:
        return records
    return [_applied(record, found) for record in records]


def _applied(record: TicketRecord, found: OrderItemsNews) -> TicketRecord:
    told = found.news.get(record.ticket_id)
    status = found.overrides.get(record.ticket_id)
    named = found.holders.get(record.ticket_id)
    if told is None and status is None and named is None:
        return record
    changes: dict[str, Any] = {}
    if named is not None:
        first, last = split_name(named)
        changes["holder"] = replace(record.holder, first_name=first, last_name=last)
    if status is not None:
        changes["status"] = status
        # Known only in the read that learnt it; a later read is not a change of status.
        changes["status_changed_at"] = told.at if told is not None else None
    if told is not None and told.details:
        changes["raw"] = {**record.raw, **told.details}
    return replace(record, **changes)


def rewind_points(
    news: Mapping[TicketId, StatusNews],
    *,
    event_ids: Sequence[str],
    overlap: timedelta,
    fallback: datetime | None,
) -> dict[str, datetime | None]:
    """Per event, where entry tickets must be read from to see the tickets ``news`` is about.

    The entry ticket changed when its order item did, possibly before the entry cursor
    (order items are read less often). An item without a time falls back to ``fallback``
    (the ``lastUpdated`` the read asked for); None means the event's entry tickets are read
    in full. An item naming no event concerns every event.
    """
    points: dict[str, datetime | None] = {}
    for told in news.values():
        since = _earlier(told.seen_at, overlap) if told.seen_at is not None else fallback
        for event_id in _events_of(told, event_ids):
            earlier = points.get(event_id, since)
            points[event_id] = None if since is None or earlier is None else min(since, earlier)
    return points


def _earlier(moment: datetime, by: timedelta) -> datetime:
    try:
        return moment - by
    except OverflowError:  # a provider's year 1: nothing is earlier
        return moment


def _events_of(told: StatusNews, event_ids: Sequence[str]) -> Sequence[str]:
    if told.event_id is None:
        return event_ids
    return [told.event_id] if told.event_id in event_ids else []
