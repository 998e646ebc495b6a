"""What is remembered of a ticket and a ticket type between polls, and its digests (pure).

The differs (``notifier.diff``, ``notifier.inventory_diff``) compare these states with what a
poll read; the stores persist them; an adapter may digest its wire fields with
``wire_fingerprint`` to skip unchanged tickets. They live here, below all three, so that none
of them imports another to reach them (docs/design.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from notifier.model import Holder, TicketRecord, TicketStatus, TicketTypeRecord

# Digests stay below 2^60, where CPython stores an int in 32 bytes instead of 36; the top
# bit of the 60 tells a wire digest from a state digest.
_DIGEST_MASK = (1 << 59) - 1
_WIRE_TAG = 1 << 59


@dataclass(frozen=True, slots=True)
class TicketState:
    """What the store remembers of a ticket: its tracked fields and last event sequence.

    ``type_id``/``type_name`` are its ticket type's; None in a state stored before the
    type was tracked, which the next read fills in silently (it was not seen to change).
    """

    status: TicketStatus
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    holder: Holder
    sequence: int = 0
    type_id: str | None = None
    type_name: str | None = None

    @classmethod
    def of(cls, record: TicketRecord, sequence: int = 0) -> TicketState:
        return cls(
            status=record.status,
            checked_in_at=record.checked_in_at,
            checked_out_at=record.checked_out_at,
            holder=record.holder,
            sequence=sequence,
            type_id=record.ticket_type.id,
            type_name=record.ticket_type.name,
        )

    @property
    def fingerprint(self) -> int:
        return tracked_fingerprint(
            self.status,
            self.checked_in_at,
            self.checked_out_at,
            self.holder,
            self.type_id,
            self.type_name,
        )

    def same_tracked_fields(self, other: TicketState) -> bool:
        return (
            self.status is other.status
            and self.checked_in_at == other.checked_in_at
            and self.checked_out_at == other.checked_out_at
            and self.holder == other.holder
            and self.type_id == other.type_id
            and self.type_name == other.type_name
        )


def tracked_fingerprint(
    status: TicketStatus,
    checked_in_at: datetime | None,
    checked_out_at: datetime | None,
    holder: Holder,
    type_id: str | None = None,
    type_name: str | None = None,
) -> int:
    """A 59-bit digest of the fields the diff tracks: equal fields, equal digests.

    It lets a poller remember a million tickets as one small integer each instead of their
    whole state, and skip every ticket whose digest is unchanged. Two different states
    share a digest with a chance of about 2^-59 per changed ticket. Built on ``hash()``,
    which is salted per process for text, so a digest is never stored: it is recomputed
    at load.
    """
    fields = (status, checked_in_at, checked_out_at, holder, type_id, type_name)
    return hash(fields) & _DIGEST_MASK


def wire_fingerprint(fields: tuple[object, ...]) -> int:
    """A digest of the raw wire fields a ticket's tracked fields are normalized from.

    Equal wire fields normalize to equal states, so a poller that remembers this digest
    can skip an unchanged ticket without parsing it. The tag bit keeps it from ever
    equalling a ``tracked_fingerprint``: the two kinds are compared, never confused.
    Raises ``TypeError`` for an unhashable (hence malformed) field.
    """
    return hash(fields) & _DIGEST_MASK | _WIRE_TAG


def record_fingerprint(record: TicketRecord) -> int:
    """``TicketState.of(record).fingerprint`` without building the state."""
    ticket_type = record.ticket_type
    return tracked_fingerprint(
        record.status,
        record.checked_in_at,
        record.checked_out_at,
        record.holder,
        ticket_type.id,
        ticket_type.name,
    )


# The counts a reading must hold for the settle window: sold, reserved, total and stock.
Counts = tuple[int | None, int | None, int | None, int | None]


@dataclass(frozen=True, slots=True)
class TicketTypeState:
    """The tracked inventory fields of a ticket type and its last event sequence."""

    name: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    total_stock: int | None = None
    sold: int | None = None
    reserved: int | None = None
    current_stock: int | None = None
    on_sale: bool | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    deleted_at: datetime | None = None
    # A reading of the counts not yet settled, and when it was first read.
    pending: Counts | None = None
    pending_since: datetime | None = None
    sequence: int = 0

    @classmethod
    def of(cls, record: TicketTypeRecord, sequence: int = 0) -> TicketTypeState:
        return cls(
            name=record.name,
            price_minor=record.price_minor,
            currency=record.currency,
            total_stock=record.total_stock,
            sold=record.sold,
            reserved=record.reserved,
            current_stock=record.current_stock,
            on_sale=record.on_sale,
            sale_starts_at=record.sale_starts_at,
            sale_ends_at=record.sale_ends_at,
            deleted_at=record.deleted_at,
            sequence=sequence,
        )

    def tracked(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "sequence")

    def counts(self) -> Counts:
        return (self.sold, self.reserved, self.total_stock, self.current_stock)
