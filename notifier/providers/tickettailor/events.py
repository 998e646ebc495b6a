"""Ticket Tailor events: their windows and their ticket types' inventory (pure).

Ticket Tailor API reference, "Events" object: ``start``/``end`` time objects and
``ticket_types[]``; the inventory counters are observed behaviour (docs/providers.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketTypeId, TicketTypeRecord
from notifier.providers.tickettailor.parse import (
    MALFORMED,
    PROVIDER,
    currency_code,
    page_data,
    unix_seconds,
)
from notifier.providers.wire import (
    describe_problem as _describe,
    id_text as _id,
    optional_int as _opt_int,
    optional_text as _opt_str,
)
from notifier.timeparse import parse_timestamp


@dataclass(frozen=True, slots=True)
class EventWindow:
    """When an event runs (unix times from ``start``/``end``)."""

    event_id: str
    start: datetime | None
    end: datetime | None
    currency: str | None


def parse_events(
    payload: object, *, source: SourceId
) -> tuple[list[EventWindow], list[TicketTypeRecord]]:
    """One ``/v1/events`` page: event windows and ticket-type inventory."""
    try:
        windows: list[EventWindow] = []
        records: list[TicketTypeRecord] = []
        for item in page_data(payload):
            window = _event_window(item)
            windows.append(window)
            records.extend(_ticket_types(item, window, source=source))
        return windows, records
    except MALFORMED as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc


def _event_window(item: object) -> EventWindow:
    if not isinstance(item, dict):
        raise TypeError("event is not a JSON object")
    return EventWindow(
        event_id=_id(item["id"]),
        start=_moment(item.get("start")),
        end=_moment(item.get("end")),
        currency=currency_code(item.get("currency")),
    )


def _moment(value: object) -> datetime | None:
    # Event times are objects {date, iso, unix, ...}; unix is the unambiguous one.
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("event time is not an object")
    return parse_timestamp(unix_seconds(value.get("unix")))


def _ticket_types(
    event: dict[str, Any], window: EventWindow, *, source: SourceId
) -> list[TicketTypeRecord]:
    types = event.get("ticket_types") or []
    if not isinstance(types, list):
        raise TypeError("ticket_types is not a list")
    return [_ticket_type_record(item, window, source=source) for item in types]


def _ticket_type_record(item: object, window: EventWindow, *, source: SourceId) -> TicketTypeRecord:
    if not isinstance(item, dict):
        raise TypeError("ticket type is not a JSON object")
    total = _opt_int(item.get("quantity_total"))
    issued = _opt_int(item.get("quantity_issued"))
    held = _opt_int(item.get("quantity_held"))
    baskets = _opt_int(item.get("quantity_in_baskets"))
    quantity = _opt_int(item.get("quantity"))
    return TicketTypeRecord(
        provider=PROVIDER,
        source=source,
        ticket_type_id=TicketTypeId(_id(item["id"])),
        event_id=window.event_id,
        name=_opt_str(item.get("name")),
        price_minor=_opt_int(item.get("price")),
        currency=window.currency,
        total_stock=total,
        sold=issued,
        reserved=_sum_known(held, baskets),
        current_stock=_available(quantity, total, issued, held, baskets),
        # The status stays "on_sale" when sold out: the stock says that, not this flag.
        on_sale=item.get("status") == "on_sale",
        deleted_at=None,
        updated_at=None,
        raw={"status": item.get("status"), "quantity": quantity},
    )


def _sum_known(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _available(
    quantity: int | None,
    total: int | None,
    issued: int | None,
    held: int | None,
    baskets: int | None,
) -> int | None:
    """Stock left to sell, computed from the counters when they are there.

    ``quantity`` does not subtract holds, so a type whose rest is all held would never
    read sold out; the counters do. Never below zero (counters lag after voids).
    """
    if total is None or issued is None:
        return quantity
    computed = max(total - issued - (held or 0) - (baskets or 0), 0)
    return computed if quantity is None else max(min(quantity, computed), 0)
