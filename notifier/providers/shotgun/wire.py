"""Shotgun's ``GET /tickets`` wire format, read without I/O: pages and tickets.

``parse_page``/``parse_ticket`` normalize the documented envelope and ticket fields
(Shotgun Tickets API); ``wire_page`` decodes a page lazily for the poller (ids and a digest
of the tracked wire fields only). The cursor is in ``cursor``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from notifier.errors import FatalProviderError
from notifier.model import Holder, SourceId, TicketId, TicketRecord, TicketStatus, TicketType
from notifier.providers.wire import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    next_link,
    optional_id as _opt_id,
    optional_int as _opt_int,
    optional_text as _opt_str,
)
from notifier.state import wire_fingerprint
from notifier.timeparse import parse_timestamp

__all__ = [
    "PROVIDER",
    "TRACKED_WIRE_FIELDS",
    "WirePage",
    "parse_page",
    "parse_ticket",
    "ticket_parser",
    "wire_page",
]

PROVIDER = "shotgun"

STATUSES: Mapping[str, TicketStatus] = {
    "valid": TicketStatus.VALID,
    "resold": TicketStatus.RESOLD,
    "refunded": TicketStatus.REFUNDED,
    "canceled": TicketStatus.CANCELED,
    "payment_plan_pending": TicketStatus.PENDING,
    "pending_approval": TicketStatus.PENDING,
    # The Smartboard API spells it this way; accept it should /tickets ever do so too.
    "pending_organizer_approval": TicketStatus.PENDING,
    "rejected": TicketStatus.REJECTED,
}
_status = StatusMap(PROVIDER, STATUSES)


# The wire fields a ticket's tracked fields (status, check-in time, holder, ticket type)
# are normalized from, and the only ones ``parse_ticket`` reads for them: equal values,
# equal state. ``event_canceled_at`` turns a valid ticket canceled.
TRACKED_WIRE_FIELDS = (
    "ticket_status",
    "ticket_scanned_at",
    "contact_first_name",
    "contact_last_name",
    "contact_email",
    "contact_phone",
    "deal_id",
    "deal_title",
    "event_canceled_at",
)
_PAGE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)

# Provider fields worth carrying into event payloads, kept as the provider sent them.
RAW_FIELDS = (
    "ticket_scan_code",
    "user_id",
    "contact_id",
    "deal_channel",
    "deal_sub_category",
    "event_start_time",
    "event_end_time",
    "event_canceled_at",
    "ordered_at",
)


# --------------------------------------------------------------------------- parsing


def parse_page(payload: object, *, source: SourceId) -> tuple[list[TicketRecord], str | None]:
    """Normalize one ``/tickets`` page into records and its ``pagination.next`` link.

    Raises ``FatalProviderError`` when the payload is not the documented envelope or a
    ticket lacks a required field: a schema change is not fixed by retrying.
    """
    try:
        data, pagination = _envelope(payload)
        deals: dict[tuple[object, ...], TicketType] = {}
        records = [parse_ticket(item, source=source, deals=deals) for item in data]
        return records, _next_link(pagination)
    except _PAGE_ERRORS as exc:
        raise _malformed(exc) from exc


class _Envelope(msgspec.Struct):
    """The documented page envelope, each ticket left as its undecoded JSON text."""

    data: list[msgspec.Raw]
    pagination: object = None


class TicketOnTheWire(msgspec.Struct):
    """What a sweep decodes of every ticket: its id, the fields its tracked state comes
    from (``TRACKED_WIRE_FIELDS``), and its event's times (the live window)."""

    ticket_id: int | str
    ticket_status: object = None
    ticket_scanned_at: object = None
    contact_first_name: object = None
    contact_last_name: object = None
    contact_email: object = None
    contact_phone: object = None
    deal_id: object = None
    deal_title: object = None
    event_canceled_at: object = None
    event_id: object = None
    event_start_time: object = None
    event_end_time: object = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_ON_THE_WIRE = msgspec.json.Decoder(TicketOnTheWire)
_tracked_values = operator.attrgetter(*TRACKED_WIRE_FIELDS)


@dataclass(frozen=True, slots=True)
class WirePage:
    """One ``/tickets`` page left unparsed: each ticket's JSON text, id, wire digest and
    event times."""

    items: list[msgspec.Raw]
    ids: list[TicketId]
    digests: list[int]
    events: list[TicketOnTheWire]
    next_link: str | None


def wire_page(body: bytes) -> WirePage:
    """Decode one page's envelope, and of each ticket only its id, tracked wire fields and
    event times; digest the tracked fields. The rest of a ticket is decoded only if the
    poller parses it, which it does for every ticket it has not seen as it is.

    Raises ``ValueError`` if the body is not JSON (a truncated answer: retried),
    ``FatalProviderError`` if it is not the documented envelope or a ticket's id is bad.
    """
    try:
        envelope = _ENVELOPE.decode(body)
        tickets = [_ON_THE_WIRE.decode(item) for item in envelope.data]
        ids = [TicketId(_id(ticket.ticket_id)) for ticket in tickets]
        digests = [wire_fingerprint(_tracked_values(ticket)) for ticket in tickets]
        next_page = _next_link(envelope.pagination)
    except msgspec.ValidationError as exc:
        raise FatalProviderError("malformed Shotgun page: " + _describe_validation(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ValueError("not JSON") from exc
    except _PAGE_ERRORS as exc:
        raise _malformed(exc) from exc
    return WirePage(envelope.data, ids, digests, tickets, next_page)


def _describe_validation(exc: msgspec.ValidationError) -> str:
    # msgspec names the path ("at `$.data[0].ticket_id`") and the expected type, never the
    # value: safe to log, unlike a holder's personal data.
    return "ValidationError: " + str(exc)[:120]


def _envelope(payload: object) -> tuple[list[Any], object]:
    """The documented envelope's ``data`` list and ``pagination``; TypeError/KeyError if
    it is not that envelope."""
    if not isinstance(payload, dict):
        raise TypeError("page is not a JSON object")
    data = payload["data"]
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    return data, payload.get("pagination")


def ticket_parser(source: SourceId) -> Callable[[object], TicketRecord]:
    """``parse_ticket`` for the tickets of one read, failing as a malformed page would."""
    deals: dict[tuple[object, ...], TicketType] = {}

    def parse(item: object) -> TicketRecord:
        try:
            if isinstance(item, msgspec.Raw):
                item = msgspec.json.decode(item)  # valid JSON: the page decoded it
            return parse_ticket(item, source=source, deals=deals)
        except _PAGE_ERRORS as exc:
            raise _malformed(exc) from exc

    return parse


def _malformed(exc: Exception) -> FatalProviderError:
    return FatalProviderError("malformed Shotgun page: " + _describe(exc))


def parse_ticket(
    item: object,
    *,
    source: SourceId,
    deals: dict[tuple[object, ...], TicketType] | None = None,
) -> TicketRecord:
    """One wire ticket as a ``TicketRecord``; raises KeyError/TypeError/ValueError if malformed.

    ``deals`` caches ticket types across the tickets of one page (they repeat a lot).
    The hot path of a sweep: fields are read in a fixed order (so the first problem found
    is always the same one) and positional arguments spare the keyword matching.
    """
    if not isinstance(item, dict):
        raise TypeError("ticket is not a JSON object")
    raw_status = item["ticket_status"]
    if not isinstance(raw_status, str):
        raise TypeError("ticket_status is not a string")
    get = item.get
    status = _status(raw_status)
    status_changed_at = parse_timestamp(get("ticket_canceled_at"))
    raw = {name: get(name) for name in RAW_FIELDS}
    event_canceled_at = parse_timestamp(get("event_canceled_at"))
    if event_canceled_at is not None and status is TicketStatus.VALID:
        # The organizer cancelled the event: its valid tickets no longer admit anyone,
        # whatever their own status still says; the event's time is the change's.
        status, status_changed_at = TicketStatus.CANCELED, event_canceled_at
        raw["canceled_by"] = "event"
    return TicketRecord(
        PROVIDER,
        source,
        TicketId(_id(item["ticket_id"])),
        _id(item["event_id"]),
        _opt_id(get("order_id")),
        _ticket_type(item, {} if deals is None else deals),
        _holder(item),
        status,
        parse_timestamp(get("ticket_scanned_at")),
        parse_timestamp(item["ticket_updated_at"]),
        raw,
        raw_status,
        status_changed_at,
    )


def _ticket_type(item: dict[str, Any], deals: dict[tuple[object, ...], TicketType]) -> TicketType:
    key = (item["deal_id"], item.get("deal_title"), item.get("deal_price"), item.get("currency"))
    cached = deals.get(key)
    if cached is None:
        cached = deals[key] = TicketType(
            _id(key[0]), _opt_str(key[1]), _opt_int(key[2]), _currency(key[3])
        )
    return cached


def _currency(value: object) -> str | None:
    # Shotgun sends "eur"; payloads carry ISO 4217's upper case.
    text = _opt_str(value)
    return None if text is None else text.upper()


def _holder(item: dict[str, Any]) -> Holder:
    values = (
        item.get("contact_first_name"),
        item.get("contact_last_name"),
        item.get("contact_email"),
        item.get("contact_phone"),
    )
    for value in values:
        if value is not None and type(value) is not str:
            return Holder(*map(_opt_str, values))  # converts numbers, rejects the rest
    return Holder(*values)


def _next_link(pagination: object) -> str | None:
    return next_link(pagination, "pagination")
