"""Compact, exact encoding of a ticket's remembered state (one small JSON array per ticket).

Times are integer microseconds since the epoch: exact, and far cheaper to decode than
ISO text when a source with a million tickets is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from notifier.envelope import OutboxEvent
from notifier.model import Holder, TicketStatus
from notifier.state import TicketState, TicketTypeState
from notifier.store.base import Delivery, DeliveryStatus

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_state(state: TicketState) -> bytes:
    holder = state.holder
    return orjson.dumps(
        [
            state.status.value,
            _micros(state.checked_in_at),
            _micros(state.checked_out_at),
            holder.first_name,
            holder.last_name,
            holder.email,
            holder.phone,
            state.sequence,
            state.type_id,
            state.type_name,
        ]
    )


def decode_state(blob: bytes) -> TicketState:
    # States written before the ticket type was tracked have 8 fields: no type yet.
    fields = orjson.loads(blob)
    status, checked_in, checked_out, first, last, email, phone, sequence = fields[:8]
    type_id, type_name = fields[8:10] if len(fields) >= 10 else (None, None)
    return TicketState(
        status=TicketStatus(status),
        checked_in_at=_from_micros(checked_in),
        checked_out_at=_from_micros(checked_out),
        holder=Holder(first_name=first, last_name=last, email=email, phone=phone),
        sequence=sequence,
        type_id=type_id,
        type_name=type_name,
    )


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


def _from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def encode_type_state(state: TicketTypeState) -> bytes:
    return orjson.dumps(
        [
            state.name,
            state.price_minor,
            state.currency,
            state.total_stock,
            state.sold,
            state.reserved,
            state.current_stock,
            state.on_sale,
            _micros(state.sale_starts_at),
            _micros(state.sale_ends_at),
            _micros(state.deleted_at),
            state.sequence,
            None if state.pending is None else list(state.pending),
            _micros(state.pending_since),
        ]
    )


def decode_type_state(blob: bytes) -> TicketTypeState:
    # A state written before counts settled has no pending reading (12 fields, not 14).
    fields = orjson.loads(blob)
    pending, pending_since = fields[12:14] if len(fields) >= 14 else (None, None)
    (
        name,
        price,
        currency,
        total,
        sold,
        reserved,
        current,
        on_sale,
        starts,
        ends,
        deleted,
        sequence,
    ) = fields[:12]
    return TicketTypeState(
        name=name,
        price_minor=price,
        currency=currency,
        total_stock=total,
        sold=sold,
        reserved=reserved,
        current_stock=current,
        on_sale=on_sale,
        sale_starts_at=_from_micros(starts),
        sale_ends_at=_from_micros(ends),
        deleted_at=_from_micros(deleted),
        pending=None if pending is None else (pending[0], pending[1], pending[2], pending[3]),
        pending_since=_from_micros(pending_since),
        sequence=sequence,
    )


# The columns every store reads a delivery with, joined to its event; ``delivery_of`` turns
# a row of them into a ``Delivery`` (the same in SQLite and PostgreSQL).
DELIVERY_COLUMNS = (
    "d.position, d.sink, d.attempts, d.status, d.next_attempt_at, d.last_error, "
    "o.id, o.type, o.ce_source, o.subject, o.time, o.partition_key, o.organizer, "
    "o.source_id, o.data"
)


def delivery_of(row: Sequence[Any]) -> Delivery:
    """A row of ``DELIVERY_COLUMNS`` (SQLite's or PostgreSQL's) as a ``Delivery``."""
    position, sink, attempts, status, next_attempt_at, last_error, *event_columns = row
    event_id, event_type, ce_source, subject, moment, key, organizer, source_id, data = (
        event_columns
    )
    return Delivery(
        position=position,
        sink=sink,
        attempts=attempts,
        status=DeliveryStatus(status),
        next_attempt_at=next_attempt_at,
        last_error=last_error,
        event=OutboxEvent(
            id=event_id,
            type=event_type,
            ce_source=ce_source,
            subject=subject,
            time=datetime.fromisoformat(moment),
            partition_key=key,
            organizer=organizer,
            source_id=source_id,
            data=bytes(data),
        ),
    )
