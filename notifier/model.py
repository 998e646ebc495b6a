"""Canonical records every provider adapter normalizes into (docs/design.md §3).

Records are frozen, slotted dataclasses rather than pydantic models: adapters build
hundreds of thousands of them per sweep and their fields are already validated by the
adapter's parser, so a second validation pass would only cost time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType

SourceId = NewType("SourceId", str)
TicketId = NewType("TicketId", str)
TicketTypeId = NewType("TicketTypeId", str)


class TicketStatus(StrEnum):
    """Lifecycle of an admission ticket, orthogonal to whether it was checked in."""

    VALID = "valid"
    VOID = "void"
    REFUNDED = "refunded"
    CANCELED = "canceled"
    RESOLD = "resold"
    PENDING = "pending"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who the ticket is for; a change of any field is a transfer."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class TicketType:
    """The product a ticket was sold as."""

    id: str
    name: str | None = None
    price_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """One admission ticket as a provider reports it right now.

    ``status_changed_at`` is the provider's own time of the current status (voided_at,
    canceled_at), used as ``occurred_at`` of status events; ``checked_out_at`` is the time
    of the latest zone exit scan (Nuweb only).
    """

    provider: str
    source: SourceId
    ticket_id: TicketId
    event_id: str
    order_id: str | None
    ticket_type: TicketType
    holder: Holder
    status: TicketStatus
    checked_in_at: datetime | None
    updated_at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict)
    status_raw: str | None = None
    status_changed_at: datetime | None = None
    checked_out_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TicketTypeRecord:
    """Inventory of one ticket type (docs/design.md §3)."""

    provider: str
    source: SourceId
    ticket_type_id: TicketTypeId
    event_id: str
    name: str | None
    price_minor: int | None
    currency: str | None
    total_stock: int | None
    sold: int | None
    reserved: int | None
    current_stock: int | None
    on_sale: bool | None
    deleted_at: datetime | None
    updated_at: datetime | None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
