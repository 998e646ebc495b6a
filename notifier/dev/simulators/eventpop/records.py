"""What the Eventpop simulator stores and how the API renders it.

Sources, cited where each behaviour is defined: Eventpop's public API Swagger
(``PublicAPI_Entities_Ticket``, ``PublicAPI_Entities_Event``, the list endpoints'
parameters), the Eventpop API documentation page of the organizer tickets endpoint, and
observations recorded in docs/providers.md. Behaviours no source gives are marked
``# Assumption:``; each is the harder case for a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

DEFAULT_PER_PAGE = 10  # Swagger: per_page default 10 on every list endpoint
# Assumption: the maximum per_page is undocumented; 100 is capped, and the cap is echoed.
MAX_PER_PAGE = 100
# Swagger ticket list: order_by enum (id, created_at, updated_at, used_at, reference_code).
ORDER_FIELDS = ("id", "created_at", "updated_at", "used_at", "reference_code")
USER_ORDER_FIELDS = ("id", "created_at", "updated_at", "used_at")  # Swagger, user tickets
EVENT_ORDER_FIELDS = ("id", "created_at", "updated_at", "start_at", "end_at")  # Swagger, events
BANGKOK = timezone(timedelta(hours=7), "ICT")  # no DST in Thailand: a fixed offset is exact


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert, e.g., no token in the query)."""

    method: str
    path: str
    query: dict[str, str]
    bearer: bool
    token_in_query: bool


@dataclass(frozen=True, slots=True)
class PageServed:
    """A tickets page just answered: which path, its page of the read, the ids on it."""

    path: str
    read_page: int
    ticket_ids: tuple[int, ...]


@dataclass(slots=True)
class TicketType:
    id: int
    name: str
    satangs: int

    def wire(self) -> dict[str, Any]:
        # Swagger (TicketType_PartnerEntity) types id and price_satangs as strings; a real
        # client reads numbers (docs/providers.md): we follow the spec.
        return {
            "id": str(self.id),
            "name": self.name,
            "price": _baht(self.satangs),
            "price_satangs": str(self.satangs),
            "kind": "free" if self.satangs == 0 else "paid",
        }


@dataclass(slots=True)
class Ticket:
    id: int
    event_id: int
    order_id: int
    user_id: int | None
    ticket_type: TicketType
    reference_code: str
    created_at: datetime
    updated_at: datetime
    # Swagger PublicAPI_Entities_Ticket status: e.g. "active", "used", "revoked".
    status: str = "active"
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    phone: str | None = None
    kind: str = "normal"
    external_id: str | None = None
    revoke_note: str | None = None
    used_at: datetime | None = None
    registered_at: datetime | None = None

    def wire(self) -> dict[str, Any]:
        """The ticket as ``PublicAPI_Entities_Ticket`` renders it (nil fields as null)."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "event_id": self.event_id,
            "status": self.status,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "phone": self.phone,
            "email": self.email,
            "reference_code": self.reference_code,
            "kind": self.kind,
            "external_id": self.external_id,
            "revoke_note": self.revoke_note,
            "ticket_type": self.ticket_type.wire(),
            "price_label": "Free"
            if self.ticket_type.satangs == 0
            else _baht(self.ticket_type.satangs),
            "forms": [],
            "created_at": render_time(self.created_at),
            "updated_at": render_time(self.updated_at),
            "used_at": render_time(self.used_at),
            "registered_at": render_time(self.registered_at),
        }


@dataclass(slots=True)
class Event:
    """An organizer's event as ``PublicAPI_Entities_Event`` has it (Swagger)."""

    id: int
    organizer_id: int
    title: str
    created_at: datetime
    updated_at: datetime
    start_at: datetime | None = None
    end_at: datetime | None = None
    status: str = "active"  # Swagger: e.g. "active", "draft", "ended"

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "title": self.title,
            "created_at": render_time(self.created_at),
            "updated_at": render_time(self.updated_at),
            "start_at": render_time(self.start_at),
            "end_at": render_time(self.end_at),
        }


def render_time(moment: datetime | None) -> str | None:
    """Eventpop-style time: ISO 8601 (Swagger), milliseconds, Bangkok offset.

    Assumption: the offset and precision are undocumented; Rails' default JSON for a
    Bangkok app (+07:00, milliseconds, microseconds truncated) is the harder case: a
    client paging on the rendered time meets ties and truncation.
    """
    if moment is None:
        return None
    return moment.astimezone(BANGKOK).isoformat(timespec="milliseconds")


def _baht(satangs: int) -> str:
    return "฿" + f"{satangs / 100:,.2f}"  # Swagger: price, e.g. "฿0.00"


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """A parsed list request (Swagger parameters of the tickets and events lists)."""

    order_by: str = "id"
    descending: bool = False
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    statuses: frozenset[str] | None = None
    ticket_type_id: int | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    min_id: int | None = None
    max_id: int | None = None


def sort_key(row: Ticket | Event, order_by: str) -> tuple[Any, ...]:
    # Assumption: ties break by id, as a database's primary key order usually does; nulls
    # sort last in ascending order (so first in descending), as PostgreSQL does.
    if order_by == "id":
        return (row.id,)
    if order_by == "reference_code" and isinstance(row, Ticket):
        return (row.reference_code, row.id)
    value: datetime | None = getattr(row, order_by)
    return (value is None, value or datetime.min.replace(tzinfo=UTC), row.id)


def reference_code(ticket_id: int) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code, number = "", ticket_id * 2_654_435_761 % (32**6)
    for _ in range(6):
        number, digit = divmod(number, 32)
        code += alphabet[digit]
    return code
