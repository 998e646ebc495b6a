"""Shotgun's ``GET /tickets`` shapes as the simulator keeps and renders them (Shotgun
Tickets API, ticket fields): the request log's record, a parsed query, events and tickets
held as their wire fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notifier.timeparse import format_shotgun_time

__all__ = ["Event", "Query", "SeenRequest", "Ticket", "contact_wire", "event_wire", "ticket_wire"]


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert, e.g., no token in the query)."""

    path_qs: str
    query: dict[str, str]
    bearer: bool


@dataclass(slots=True)
class Event:
    organizer_id: int
    cohost_ids: frozenset[int]
    wire: dict[str, Any]


@dataclass(slots=True)
class Ticket:
    event_id: int
    updated_at: datetime
    wire: dict[str, Any]

    @property
    def key(self) -> tuple[datetime, int]:
        return self.updated_at, int(self.wire["ticket_id"])


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed ``/tickets`` request."""

    organizer_id: int
    event_id: int | None
    cohosted: bool
    after: tuple[datetime, int] | None


def event_wire(
    event_id: int, now: datetime, start: datetime, end: datetime | None
) -> dict[str, Any]:
    # Shotgun Tickets API, ticket fields event_*: times as "2025-06-07 18:00:00" (space,
    # optional microseconds, no offset).
    return {
        "event_id": event_id,
        "event_start_time": format_shotgun_time(start),
        "event_end_time": format_shotgun_time(end or start + timedelta(hours=8)),
        "event_created_at": format_shotgun_time(now - timedelta(days=30)),
        "event_published_at": format_shotgun_time(now - timedelta(days=29)),
        "event_launched_at": format_shotgun_time(now - timedelta(days=25)),
        "event_canceled_at": None,
    }


def ticket_wire(ticket_id: int, now: datetime) -> dict[str, Any]:
    """Every documented field of a ticket (Shotgun Tickets API, ticket fields) except the
    event's and the contact's."""
    stamp = format_shotgun_time(now)
    return {
        "ticket_id": ticket_id,
        "ticket_scan_code": str(42_564_997_260_000 + ticket_id),
        "ticket_scanned_at": None,
        "ticket_updated_at": stamp,
        "ticket_canceled_at": None,
        "ticket_status": "valid",
        "ticket_seating": None,
        "user_id": None,
        "deal_visibilities": ["public"],
        "deal_service_fee": 99,
        "deal_user_service_fee": 0,
        "deal_producer_cost": 0,
        "deal_vat_rate": 0.055,
        "payment_method": "card",
        "utm_source": "shotgun",
        "utm_medium": "app",
        "ordered_at": stamp,
    }


def contact_wire(
    contact_id: int,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    phone: str | None,
) -> dict[str, Any]:
    return {
        "contact_id": contact_id + 100_000_000,
        "contact_email": email,
        "contact_phone": phone,
        "contact_first_name": first_name,
        "contact_last_name": last_name,
        "contact_gender": None,
        "contact_company_name": None,
        "contact_birthday": None,
        "contact_newsletter_optin": None,
        "contact_country": "France",
        "contact_postal_code": "31000",
        "contact_locality": "Toulouse",
    }
