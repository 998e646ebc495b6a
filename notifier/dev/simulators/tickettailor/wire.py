"""The Ticket Tailor objects the simulator serves, as the API spells them.

Shapes follow the Ticket Tailor API reference ("Issued tickets", "Orders", "Events"
objects) unless a comment says otherwise.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert the key never rides in a URL)."""

    path_qs: str
    query: dict[str, str]
    authorization: str | None


@dataclass(frozen=True, slots=True)
class TicketTypeSpec:
    """A ticket type to create with an event."""

    name: str
    price: int = 1500
    quantity_total: int = 100
    status: str = "on_sale"


DEFAULT_TYPES = (TicketTypeSpec("General Admission", 1500, 500), TicketTypeSpec("VIP", 4500, 50))


def unix(moment: datetime) -> int:
    # Ticket Tailor API reference: created_at, updated_at, voided_at are unix seconds.
    return int(moment.timestamp())


def moment_wire(moment: datetime) -> Row:
    """An event time: Ticket Tailor API reference, "Events" object, start/end."""
    utc = moment.astimezone(UTC)
    return {
        "date": utc.strftime("%Y-%m-%d"),
        "formatted": utc.strftime("%a %-d %b %Y %-I:%M %p"),
        "iso": utc.isoformat(timespec="seconds"),
        "time": utc.strftime("%H:%M"),
        "timezone": "+00:00",
        "unix": unix(utc),
    }


def recount(tt: Row) -> None:
    # ``quantity`` = total - issued - baskets; holds are not subtracted (observed
    # behaviour: Ticket Tailor ticket type counters, see docs/providers.md).
    tt["quantity"] = max(
        tt["quantity_total"] - tt["quantity_issued"] - tt["quantity_in_baskets"], 0
    )


def available(tt: Row) -> int:
    return int(tt["quantity"]) - int(tt["quantity_held"])


def event_wire(
    event_id: str,
    name: str,
    start: datetime,
    end: datetime,
    currency: str,
    now: datetime,
    types: list[Row],
) -> Row:
    """Ticket Tailor API reference, "Events" object (GET /v1/events)."""
    number = event_id.removeprefix("ev_")
    return {
        "object": "event",
        "id": event_id,
        "access_code": None,
        "call_to_action": "Buy tickets",
        "created_at": unix(now),
        "currency": currency,
        "description": None,
        "end": moment_wire(end),
        "event_series_id": "es_" + number,
        "images": {"header": None, "thumbnail": None},
        "name": name,
        "online_event": "false",
        "payment_methods": [],
        "private": "false",
        "start": moment_wire(start),
        "status": "published",
        "ticket_groups": [],
        "ticket_types": types,
        "tickets_available": "true",
        "timezone": "UTC",
        "total_holds": 0,
        "total_issued_tickets": 0,
        "total_orders": 0,
        "url": "https://www.tickettailor.com/events/simulated/" + number,
        "venue": {"name": None, "postal_code": None},
    }


def ticket_type_wire(
    type_id: str, name: str, price: int, total: int, status: str, sort: int
) -> Row:
    """Ticket Tailor API reference, "Events" object, ``ticket_types[]``; the counters
    (quantity_issued, quantity_held, quantity_in_baskets) are observed behaviour."""
    return {
        "object": "ticket_type",
        "id": type_id,
        "access_code": None,
        "booking_fee": 0,
        "description": None,
        "group_id": None,
        "max_per_order": 10,
        "min_per_order": 1,
        "name": name,
        "price": price,
        "sort_order": 50_050 + sort,
        "status": status,
        "type": "paid" if price else "free",
        "quantity_total": total,
        "quantity_issued": 0,
        "quantity_held": 0,
        "quantity_in_baskets": 0,
        "quantity": total,
    }


def ticket_wire(ticket_id: str, event_id: str, tt: Row, order_id: str, when: int) -> Row:
    """Ticket Tailor API reference, "Issued tickets" object (its example it_50198)."""
    number = ticket_id.removeprefix("it_")
    token = secrets.token_hex(10)
    return {
        "object": "issued_ticket",
        "id": ticket_id,
        "barcode": secrets.token_urlsafe(4)[:5],
        "barcode_url": "https://www.tickettailor.com/userfiles/cache/barcode/qr/attendee/"
        + number
        + "/"
        + token,
        "checked_in": "false",  # a string, "true"/"false" (API reference example)
        "created_at": when,
        "custom_questions": [],
        "description": tt["name"],
        "email": None,
        "event_id": event_id,
        "event_series_id": "es_" + event_id.removeprefix("ev_"),
        "full_name": None,
        "first_name": None,
        "last_name": None,
        "reference": None,
        "reservation": None,
        "status": "valid",
        "ticket_type_id": tt["id"],
        "updated_at": when,
        "voided_at": None,
        "order_id": order_id,
        "qr_code_url": "https://www.tickettailor.com/userfiles/cache/barcode/st/attendee/"
        + number
        + "/"
        + token,
    }


def order_wire(order_id: str, event: Row, line_item: Row, value: int, when: int) -> Row:
    """Ticket Tailor API reference, "Orders" object. It has ``created_at`` and no
    ``updated_at`` (the order schema lists none)."""
    return {
        "object": "order",
        "id": order_id,
        "buyer_details": {
            "address": {
                "address_1": "The Queen's Walk",
                "address_2": None,
                "address_3": "London",
                "postal_code": "SE1 7PB",
            },
            "custom_questions": [],
            "email": None,
            "name": None,
            "phone": None,
        },
        "created_at": when,
        "currency": {"base_multiplier": 100, "code": event["currency"]},
        "event_summary": {
            "id": event["id"],
            "end_date": event["end"],
            "name": event["name"],
            "start_date": event["start"],
        },
        "line_items": [line_item],
        "payment_method": {
            "external_id": None,
            "id": "pm_6687",
            "instructions": None,
            "name": None,
            "type": "stripe" if value else "no_cost",
        },
        "refund_amount": 0,
        "status": "completed",
        "status_message": None,
        "subtotal": value,
        "tax": 0,
        "total": value,
        "txn_id": "ch_" + secrets.token_hex(8) if value else None,
    }


def line_item_wire(item_id: str, kind: str, description: str, value: int, quantity: int = 1) -> Row:
    """Ticket Tailor API reference, order ``line_items[]``: ``type`` is ticket,
    transaction_charge, void ("ticket was voided after the purchase"), tax, ..."""
    return {
        "object": "line_item",
        "id": item_id,
        "booking_fee": 0,
        "description": description,
        "type": kind,
        "total": value,
        "value": value,
        "quantity": quantity,
    }


def check_in_wire(check_in_id: str, ticket: Row, at: int, created: int) -> Row:
    """A check-in record (GET /v1/check_ins). Fields: the Fivetran Ticket Tailor connector
    schema (id, event_series_id, issued_ticket_id, check_in_at, created_at, quantity) and
    the check-ins tool's filters (event_id, issued_ticket_id)."""
    return {
        "object": "check_in",
        "id": check_in_id,
        "event_id": ticket["event_id"],
        "event_series_id": ticket["event_series_id"],
        "issued_ticket_id": ticket["id"],
        "check_in_at": at,
        "created_at": created,
        "quantity": 1,  # Assumption: one scan admits one (the schema has the field only)
    }
