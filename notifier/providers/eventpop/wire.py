"""Eventpop wire format, pure: a tickets envelope and its tickets as ``TicketRecord``s.

Fields follow Eventpop's public API Swagger (``PublicAPI_Entities_Ticket``); where a real
client types a field differently from the spec (ids and prices as numbers) both are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from notifier.errors import FatalProviderError
from notifier.model import Holder, SourceId, TicketId, TicketRecord, TicketStatus, TicketType
from notifier.providers.wire import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    optional_id as _opt_id,
    optional_text as _opt_str,
    split_name,
)
from notifier.timeparse import parse_timestamp

PROVIDER = "eventpop"
CURRENCY = "THB"  # Eventpop prices are satangs (1/100 baht); no currency field exists

STATUSES: Mapping[str, TicketStatus] = {
    "active": TicketStatus.VALID,
    "used": TicketStatus.VALID,  # checked in; check-in is orthogonal to status
    "revoked": TicketStatus.VOID,
}
_status = StatusMap(PROVIDER, STATUSES)

# Provider fields carried into event payloads as sent (revoke_note is the void reason).
RAW_FIELDS = ("reference_code", "revoke_note", "kind", "registered_at", "external_id")

_INTEGER = re.compile(r"[+-]?\d+")


def parse_page(
    payload: object, *, source: SourceId, event_id: str | int | None = None
) -> list[TicketRecord]:
    """Normalize one tickets envelope ``{success, tickets, count, ...}`` into records.

    ``event_id`` is the event the page was requested for, used when a ticket omits its
    own. Raises ``FatalProviderError`` when the envelope reports failure or is not the
    documented shape: a schema change is not fixed by retrying.
    """
    try:
        tickets = _envelope_tickets(payload)
        types: dict[tuple[object, ...], TicketType] = {}
        fallback = None if event_id is None else str(event_id)
        return [
            parse_ticket(item, source=source, event_id=fallback, types=types) for item in tickets
        ]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FatalProviderError("malformed Eventpop page: " + _describe(exc)) from exc


def parse_ticket(
    item: object,
    *,
    source: SourceId,
    event_id: str | None = None,
    types: dict[tuple[object, ...], TicketType] | None = None,
) -> TicketRecord:
    """One wire ticket as a ``TicketRecord``; raises KeyError/TypeError/ValueError if malformed.

    ``types`` caches ticket types across the tickets of one page (they repeat a lot).
    """
    if not isinstance(item, dict):
        raise TypeError("ticket is not a JSON object")
    raw_status = item["status"]
    if not isinstance(raw_status, str):
        raise TypeError("status is not a string")
    # Times: "ISO 8601" per the spec; no example shows an offset and none is documented
    # (providers-research §1.1, UNCONFIRMED). Found no evidence for Asia/Bangkok, so an
    # offset-less time is read as UTC like every other provider (parse_timestamp).
    updated_at = parse_timestamp(item.get("updated_at"))
    return TicketRecord(
        provider=PROVIDER,
        source=source,
        ticket_id=TicketId(_id(item["id"])),
        event_id=_event_id(item.get("event_id"), event_id),
        order_id=_opt_id(item.get("order_id")),
        ticket_type=_ticket_type(item.get("ticket_type"), {} if types is None else types),
        holder=_holder(item),
        status=_status(raw_status),
        checked_in_at=_checked_in_at(raw_status, item.get("used_at"), updated_at),
        updated_at=updated_at,
        raw={name: item.get(name) for name in RAW_FIELDS},
        status_raw=raw_status,
    )


def _envelope_tickets(payload: object) -> list[object]:
    if not isinstance(payload, dict):
        raise TypeError("page is not a JSON object")
    if payload.get("success") is False:
        raise FatalProviderError("Eventpop answered success: false")
    tickets = payload["tickets"]
    if not isinstance(tickets, list):
        raise TypeError("tickets is not a list")
    return tickets


def _checked_in_at(
    raw_status: str, used_at: object, updated_at: datetime | None
) -> datetime | None:
    checked_in = parse_timestamp(used_at)
    if checked_in is None and raw_status == "used":
        # "used" without used_at: the ticket became used no later than its last update,
        # the closest time the API gives us; better than missing the check-in entirely.
        return updated_at
    return checked_in


def _ticket_type(value: object, cache: dict[tuple[object, ...], TicketType]) -> TicketType:
    if value is None:
        # No field is required by the spec; a ticket without a type still carries a
        # check-in worth reporting, so it is not a reason to fail the page.
        return TicketType("unknown", currency=CURRENCY)
    if not isinstance(value, dict):
        raise TypeError("ticket_type is not an object")
    key = (value.get("id"), value.get("name"), value.get("price_satangs"))
    cached = cache.get(key)
    if cached is None:
        cached = cache[key] = TicketType(_id(key[0]), _opt_str(key[1]), _satangs(key[2]), CURRENCY)
    return cached


def _satangs(value: object) -> int | None:
    """Price in minor units; the spec types it as a string, a real client as a number."""
    if value is None or type(value) is bool:
        return None
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value) if value.is_integer() else None
    if type(value) is str:
        return _satangs_text(value.strip())
    raise TypeError("price_satangs is not a number")


def _satangs_text(text: str) -> int | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None  # an unreadable price must not hide a check-in
    return int(amount) if amount.is_finite() and amount == amount.to_integral_value() else None


def _holder(item: dict[str, Any]) -> Holder:
    first = _opt_str(item.get("firstname"))
    last = _opt_str(item.get("lastname"))
    if not last and not first:
        first, last = split_name(_opt_str(item.get("full_name") or item.get("name")))
    elif not last and first and " " in first.strip():
        # Some forms collect one "name" box into firstname: "Somchai Jaidee".
        first, last = split_name(first)
    return Holder(
        first or None, last or None, _opt_str(item.get("email")), _opt_str(item.get("phone"))
    )


def _event_id(value: object, fallback: str | None) -> str:
    if value is None and fallback is not None:
        return fallback
    return _id(value)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ListedEvent:
    """One event of ``GET /organizers/{org}/events`` (``PublicAPI_Entities_Event``)."""

    event_id: str
    status: str | None
    start_at: datetime | None
    end_at: datetime | None


def parse_events(payload: object) -> list[ListedEvent]:
    """The events of one listing page; ``FatalProviderError`` if it is not that shape.

    The Swagger gives the item (``PublicAPI_Entities_Event``) but not the envelope; the
    tickets endpoints answer ``{success, tickets, count, total, page, per_page}``, so the
    events are read from ``events`` in the same envelope, or from a bare list.
    """
    try:
        if isinstance(payload, dict):
            if payload.get("success") is False:
                raise FatalProviderError("Eventpop answered success: false")
            items = payload["events"]
        else:
            items = payload
        if not isinstance(items, list):
            raise TypeError("events is not a list")
        return [_listed_event(item) for item in items]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FatalProviderError("malformed Eventpop events page: " + _describe(exc)) from exc


def _listed_event(item: object) -> ListedEvent:
    if not isinstance(item, dict):
        raise TypeError("event is not a JSON object")
    return ListedEvent(
        event_id=_id(item["id"]),
        status=_opt_str(item.get("status")),
        start_at=parse_timestamp(item.get("start_at")),
        end_at=parse_timestamp(item.get("end_at")),
    )
