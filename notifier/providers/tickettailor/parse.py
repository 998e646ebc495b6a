"""Ticket Tailor wire objects -> canonical records (pure; docs/providers.md).

Issued tickets, orders and check-in records (events and inventory: ``events``). What a
void means depends on its order: a voided ticket whose order has ``refund_amount`` > 0 is
REFUNDED, voided in a ``cancelled`` order without refund it is CANCELED, otherwise VOID;
a valid ticket stays valid whatever its order's refund amount (a partial or fee-only
refund leaves the other tickets valid). Its time is the ticket's own ``voided_at``: an
order has no ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
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
)
from notifier.providers.http import header_wait
from notifier.providers.wire import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    optional_id as _opt_id,
    optional_int as _opt_int,
    optional_text as _opt_str,
    split_name,
)
from notifier.timeparse import parse_timestamp

MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError)
PROVIDER = "tickettailor"
STATUSES: Mapping[str, TicketStatus] = {
    "valid": TicketStatus.VALID,
    "voided": TicketStatus.VOID,
    "void": TicketStatus.VOID,  # Ticket Tailor's older API reference spells it this way
}
_status = StatusMap(PROVIDER, STATUSES)
RAW_FIELDS = (
    "barcode",
    "reference",
    "reservation",
    "description",
    "checked_in",
    "status",
    "created_at",
)
# Below this many remaining requests we wait for the window to reset rather than
# spend the last ones and meet a 429 mid-sweep.
RATE_LOW_WATER = 10
MAX_RATE_WAIT = 1800.0  # the documented window is 30 min; never wait longer


@dataclass(frozen=True, slots=True)
class OrderState:
    """What an order says about its voided tickets: refunded amount and status."""

    order_id: str
    refund_amount: int
    status: str | None


@dataclass(frozen=True, slots=True)
class CheckIn:
    """One record of ``GET /v1/check_ins``: a ticket scanned at ``at``."""

    check_in_id: str
    ticket_id: str
    event_id: str | None
    at: datetime
    quantity: int


# --------------------------------------------------------------------------- pages


def parse_issued_tickets(
    payload: object, *, source: SourceId, types: Mapping[str, TicketType] | None = None
) -> list[TicketRecord]:
    """One ``/v1/issued_tickets`` page as records; ``FatalProviderError`` if malformed.

    ``types`` (ticket type id -> TicketType, from ``/v1/events``) fills in the name, price
    and currency an issued ticket does not carry.
    """
    try:
        known = types or {}
        return [parse_issued_ticket(i, source=source, types=known) for i in page_data(payload)]
    except MALFORMED as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc


def parse_one_ticket(
    payload: object, *, source: SourceId, types: Mapping[str, TicketType] | None = None
) -> TicketRecord:
    """``GET /v1/issued_tickets/{id}``: one issued ticket object."""
    try:
        return parse_issued_ticket(payload, source=source, types=types)
    except MALFORMED as exc:
        raise FatalProviderError("malformed Ticket Tailor ticket: " + _describe(exc)) from exc


def parse_issued_ticket(
    item: object, *, source: SourceId, types: Mapping[str, TicketType] | None = None
) -> TicketRecord:
    """One issued ticket; raises KeyError/TypeError/ValueError if malformed.

    The issued ticket says only ``checked_in`` ("true"/"false"), no time: ``updated_at``
    stands in until the check-in feed gives the real one (the adapter keeps the time it
    first learnt, so a later edit does not move it). A voided ticket is VOID here; its
    order decides whether it is refunded or canceled (``apply_order``).
    """
    if not isinstance(item, dict):
        raise TypeError("issued ticket is not a JSON object")
    raw_status = item["status"]
    if not isinstance(raw_status, str):
        raise TypeError("status is not a string")
    updated_at = parse_timestamp(unix_seconds(item.get("updated_at")))
    return TicketRecord(
        provider=PROVIDER,
        source=source,
        ticket_id=TicketId(_id(item["id"])),
        event_id=_id(item["event_id"]),
        order_id=_opt_id(item.get("order_id")),
        ticket_type=_ticket_type(item, types or {}),
        holder=_holder(item),
        status=_status(raw_status),
        checked_in_at=updated_at if _flag(item.get("checked_in")) else None,
        updated_at=updated_at,
        raw={name: item[name] for name in RAW_FIELDS if name in item},
        status_raw=raw_status,
        status_changed_at=parse_timestamp(unix_seconds(item.get("voided_at"))),
    )


def parse_order(payload: object) -> OrderState:
    """``GET /v1/orders/{id}`` (or one item of a list) as an ``OrderState``."""
    try:
        if not isinstance(payload, dict):
            raise TypeError("order is not a JSON object")
        status = payload.get("status")
        return OrderState(
            order_id=_id(payload["id"]),
            refund_amount=_opt_int(payload.get("refund_amount")) or 0,
            status=status if isinstance(status, str) else None,
        )
    except MALFORMED as exc:
        raise FatalProviderError("malformed Ticket Tailor order: " + _describe(exc)) from exc


def parse_orders(payload: object) -> list[OrderState]:
    """One ``/v1/orders`` page as order states."""
    try:
        items = page_data(payload)
    except MALFORMED as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc
    return [parse_order(item) for item in items]


def parse_check_ins(payload: object) -> list[CheckIn]:
    """One ``/v1/check_ins`` page, newest first as served."""
    try:
        return [_check_in(item) for item in page_data(payload)]
    except MALFORMED as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc


def void_status(order: OrderState | None) -> TicketStatus:
    """What a void means given its order (None: the order could not be read)."""
    if order is None:
        return TicketStatus.VOID
    if order.refund_amount > 0:
        return TicketStatus.REFUNDED
    if order.status == "cancelled":
        return TicketStatus.CANCELED
    return TicketStatus.VOID


def apply_order(record: TicketRecord, order: OrderState | None) -> TicketRecord:
    """The ticket as its order makes it: only a voided ticket can become refunded or
    canceled; a valid one stays valid whatever its order's refund amount."""
    if record.status is not TicketStatus.VOID:
        return record
    return with_void_status(record, void_status(order))


def with_void_status(record: TicketRecord, status: TicketStatus) -> TicketRecord:
    """A voided record under the status its order gave it (time stays ``voided_at``)."""
    if record.status is not TicketStatus.VOID or status is TicketStatus.VOID:
        return record
    return replace(record, status=status)


def rate_limit_pause(headers: Mapping[str, str], *, now: datetime) -> float:
    """Seconds to wait before the next request, from ``X-Rate-Limit-*``; 0 when plenty left.

    ``X-Rate-Limit-Reset`` is read as seconds until the reset, or as a unix time when it
    is large enough to be one (live observations suggest seconds; the docs do not say).
    """
    remaining = _header_number(headers, "X-Rate-Limit-Remaining")
    if remaining is None or remaining > RATE_LOW_WATER:
        return 0.0
    reset = _header_number(headers, "X-Rate-Limit-Reset")
    if reset is None:
        return 0.0
    if reset > 1_000_000_000:  # an absolute unix time
        reset -= now.timestamp()
    return min(header_wait(max(reset, 0.0)) or 0.0, MAX_RATE_WAIT)


def last_id(payload: object) -> str | None:
    """The id of a page's last (oldest) item, the ``starting_after`` of the next page."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[-1], dict):
        return None
    return _opt_id(data[-1].get("id"))


def first_id(payload: object) -> str | None:
    """The id of a page's first (newest) item."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    return _opt_id(data[0].get("id"))


def page_size(payload: object) -> int:
    data = payload.get("data") if isinstance(payload, dict) else None
    return len(data) if isinstance(data, list) else 0


# --------------------------------------------------------------------------- fields


def page_data(payload: object) -> list[Any]:
    if not isinstance(payload, dict):
        raise TypeError("page is not a JSON object")
    data = payload["data"]
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    return data


def _check_in(item: object) -> CheckIn:
    if not isinstance(item, dict):
        raise TypeError("check-in is not a JSON object")
    at = parse_timestamp(unix_seconds(item["check_in_at"]))
    if at is None:
        raise ValueError("check_in_at is missing")
    quantity = _opt_int(item.get("quantity"))
    return CheckIn(
        check_in_id=_id(item["id"]),
        ticket_id=_id(item["issued_ticket_id"]),
        event_id=_opt_id(item.get("event_id")),
        at=at,
        # Assumption: a record without quantity admits one.
        quantity=1 if quantity is None else quantity,
    )


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name) or headers.get(name.lower())
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number else None  # NaN is no answer


def _ticket_type(item: dict[str, Any], types: Mapping[str, TicketType]) -> TicketType:
    type_id = _opt_id(item.get("ticket_type_id"))
    known = types.get(type_id) if type_id is not None else None
    if known is not None:
        return known
    return TicketType(
        id=type_id or "",
        name=_opt_str(item.get("description")),
        price_minor=_opt_int(item.get("price")),
        currency=currency_code(item.get("currency")),
    )


def _holder(item: dict[str, Any]) -> Holder:
    first, last = _opt_str(item.get("first_name")), _opt_str(item.get("last_name"))
    if first is None and last is None:
        first, last = split_name(_opt_str(item.get("full_name")))
    return Holder(first, last, _opt_str(item.get("email")), _opt_str(item.get("phone")))


def _flag(value: object) -> bool:
    # Ticket Tailor sends booleans as the strings "true"/"false"; accept real ones too.
    if value is None or value is False or value == "false":
        return False
    if value is True or value == "true":
        return True
    raise ValueError("checked_in is not 'true' or 'false'")


def unix_seconds(value: object) -> object:
    # Timestamps are unix seconds; anything else (an ISO string) is rejected here so a
    # schema change is noticed instead of being half-read.
    if value is None or (type(value) is int) or (type(value) is float):
        return value
    raise TypeError("timestamp is not unix seconds")


def currency_code(value: object) -> str | None:
    if isinstance(value, dict):  # orders carry {code, base_multiplier}
        value = value.get("code")
    text = _opt_str(value)
    return None if text is None else text.upper()
