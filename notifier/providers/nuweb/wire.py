"""Nuweb wire parsing (pure): entry-ticket and inventory pages into records.

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
  ``last_name``. Entry tickets carry no phone, and no ``namedHolder``: that is an order
  item's (``orders``), applied over the customer's name by the adapter.
- Timeslots of the inventory response become their own ``TicketTypeRecord`` with id
  ``timeslot:<id>`` (their stock sells out independently); unlimited stock reads as null.
- Prices are ``basePrice`` in minor units; ``totalPrice`` (with fees) stays in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.errors import FatalProviderError
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
from notifier.providers.wire import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    json_list,
    json_object,
    optional_int as _opt_int,
    optional_text as _opt_str,
    php_next_link,
    php_section,
    split_name,
)
from notifier.timeparse import parse_timestamp

__all__ = [
    "PARSE_ERRORS",
    "PROVIDER",
    "EntryPage",
    "InventoryPage",
    "parse_entry_page",
    "parse_entry_ticket",
    "parse_inventory_page",
]

PROVIDER = "nuweb"

STATUSES: Mapping[str, TicketStatus] = {
    "sold": TicketStatus.VALID,
    "scanned": TicketStatus.VALID,
    "refunded": TicketStatus.REFUNDED,
    "locked": TicketStatus.VOID,
}
_known_status = StatusMap(PROVIDER, STATUSES)
_KEEPS_SCAN = frozenset({"scanned", "refunded", "locked"})


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


PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)


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
    except PARSE_ERRORS as exc:
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
    first, last = split_name(_opt_str(stable.get("customerName")))
    return Holder(first_name=first, last_name=last, email=_opt_str(stable.get("customerEmail")))


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
    except PARSE_ERRORS as exc:
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
