"""Pure change detection: previous state + what a poll read -> ordered change events.

Nothing here does I/O or reads the clock: ``detected_at`` is passed in, so the same inputs
always give the same events with the same sequence numbers, and therefore the same
deterministic event ids (a poll repeated after a crash re-emits identical events).

Order of the events one ticket can yield in one poll is fixed and deterministic:
issued, checked_in, checked_out, status change, check_in_reverted, holder_changed,
type_changed. A refund that also undid the scan thus reads "refunded, then check-in
reverted".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from notifier import events as ev
from notifier.model import Holder, SourceId, TicketId, TicketRecord, TicketStatus
from notifier.state import TicketState

_STATUS_EVENTS: dict[TicketStatus, type[ev._TicketEvent]] = {
    TicketStatus.VOID: ev.TicketVoided,
    TicketStatus.REFUNDED: ev.TicketRefunded,
    TicketStatus.CANCELED: ev.TicketCanceled,
    TicketStatus.RESOLD: ev.TicketResold,
}
_REINSTATABLE = frozenset({TicketStatus.VOID, TicketStatus.REFUNDED, TicketStatus.CANCELED})


@dataclass(frozen=True, slots=True)
class DiffContext:
    """Where the records came from, and when this poll saw them."""

    provider: str
    organizer: str
    source: SourceId
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class TicketDiff:
    """The events of one poll and the states to commit with them (only those that changed)."""

    events: list[ev.TicketEvent]
    states: dict[TicketId, TicketState]


def diff_tickets(
    previous: Mapping[TicketId, TicketState],
    current: Iterable[TicketRecord],
    *,
    context: DiffContext,
    emit_new: bool = True,
) -> TicketDiff:
    """Compare what a poll read with the stored state.

    ``emit_new=False`` is the baseline: new tickets are recorded silently. A ticket read
    twice in one poll (overlapping pages, a lookback window) counts once, last read wins,
    because a later read is always the fresher view of the provider.
    """
    latest: dict[TicketId, TicketRecord] = {record.ticket_id: record for record in current}
    events: list[ev.TicketEvent] = []
    states: dict[TicketId, TicketState] = {}
    for ticket_id, record in latest.items():
        before = previous.get(ticket_id)
        if before is None:
            new_events = list(_new_ticket_events(record, context)) if emit_new else []
        elif _unchanged(before, record):
            continue  # the common case of a sweep: checked without building anything
        else:
            new_events = list(_transition_events(before, record, context))
        last_sequence = new_events[-1].sequence if new_events else _sequence_of(before)
        states[ticket_id] = TicketState.of(record, last_sequence)
        events.extend(new_events)
    return TicketDiff(events=events, states=states)


def _unchanged(before: TicketState, record: TicketRecord) -> bool:
    """``before.same_tracked_fields(TicketState.of(record))`` without building the state."""
    return (
        before.status is record.status
        and before.checked_in_at == record.checked_in_at
        and before.checked_out_at == record.checked_out_at
        and before.holder == record.holder
        and before.type_id == record.ticket_type.id
        and before.type_name == record.ticket_type.name
    )


def _sequence_of(state: TicketState | None) -> int:
    return 0 if state is None else state.sequence


def _new_ticket_events(record: TicketRecord, context: DiffContext) -> Iterator[ev.TicketEvent]:
    """A ticket first seen after the baseline: issued, then checked in if already scanned,
    then voided/refunded/canceled/resold if it already is: a subscriber to those events must
    hear of a ticket bought and refunded between two polls."""
    unscanned = replace(TicketState.of(record), checked_in_at=None, checked_out_at=None)
    if record.status in _STATUS_EVENTS:
        unscanned = replace(unscanned, status=TicketStatus.VALID)
    builder = _EventBuilder(record, context, sequence=0)
    yield builder.build(ev.TicketIssued, None, unscanned, record.updated_at)
    state = unscanned
    if record.checked_in_at is not None:
        after = replace(state, checked_in_at=record.checked_in_at)
        yield builder.build(ev.TicketCheckedIn, state, after, record.checked_in_at)
        state = after
    if record.checked_out_at is not None:
        after = replace(state, checked_out_at=record.checked_out_at)
        yield builder.build(ev.TicketCheckedOut, state, after, record.checked_out_at)
        state = after
    if record.status is not state.status:
        after = replace(state, status=record.status)
        occurred = record.status_changed_at or record.updated_at
        yield builder.build(_STATUS_EVENTS[record.status], state, after, occurred)


def _transition_events(
    before: TicketState, record: TicketRecord, context: DiffContext
) -> Iterator[ev.TicketEvent]:
    """Walk from the stored state to the record one tracked field at a time."""
    builder = _EventBuilder(record, context, sequence=before.sequence)
    state = before
    if record.checked_in_at is not None and record.checked_in_at != state.checked_in_at:
        after = replace(state, checked_in_at=record.checked_in_at)
        yield builder.build(ev.TicketCheckedIn, state, after, record.checked_in_at)
        state = after
    if record.checked_out_at is not None and record.checked_out_at != state.checked_out_at:
        after = replace(state, checked_out_at=record.checked_out_at)
        yield builder.build(ev.TicketCheckedOut, state, after, record.checked_out_at)
        state = after
    if record.status is not state.status:
        after = replace(state, status=record.status)
        occurred = record.status_changed_at or record.updated_at
        yield builder.build(_status_event(state.status, record.status), state, after, occurred)
        state = after
    if record.checked_in_at is None and state.checked_in_at is not None:
        after = replace(state, checked_in_at=None, checked_out_at=record.checked_out_at)
        yield builder.build(ev.TicketCheckInReverted, state, after, record.updated_at)
        state = after
    if record.holder != state.holder:
        after = replace(state, holder=record.holder)
        yield builder.build(ev.TicketHolderChanged, state, after, record.updated_at)
        state = after
    ticket_type = record.ticket_type
    if state.type_id and ticket_type.id and ticket_type.id != state.type_id:
        # Another product (an upgrade, a swap). A renamed type with the same id, a state
        # stored before types were tracked, or a type id an adapter could not read ("")
        # is recorded without an event.
        after = replace(state, type_id=ticket_type.id, type_name=ticket_type.name)
        yield builder.build(ev.TicketTypeChanged, state, after, record.updated_at)


def _status_event(old: TicketStatus, new: TicketStatus) -> type[ev._TicketEvent]:
    if new is TicketStatus.VALID and old in _REINSTATABLE:
        return ev.TicketReinstated
    return _STATUS_EVENTS.get(new, ev.TicketStatusChanged)


class _EventBuilder:
    """Numbers one ticket's events and fills the fields they all share."""

    def __init__(self, record: TicketRecord, context: DiffContext, *, sequence: int) -> None:
        self._record = record
        self._context = context
        self._sequence = sequence
        # Built on the first event only: most tickets a poll reads yield none.
        self._common: dict[str, Any] | None = None

    def build(
        self,
        model: type[ev._TicketEvent],
        before: TicketState | None,
        after: TicketState,
        occurred_at: datetime | None,
    ) -> ev.TicketEvent:
        self._sequence += 1
        if self._common is None:
            self._common = _common_fields(self._record, self._context)
        event = model(
            **self._common,
            sequence=self._sequence,
            occurred_at=occurred_at,
            before=None if before is None else snapshot(before),
            after=snapshot(after),
        )
        assert isinstance(event, ev.TicketEvent)  # every subclass is in the union
        return event


def _common_fields(record: TicketRecord, context: DiffContext) -> dict[str, Any]:
    ticket_type = record.ticket_type
    return {
        "provider": context.provider,
        "organizer": context.organizer,
        "source": context.source,
        "event_id": record.event_id,
        "ticket_id": record.ticket_id,
        "order_id": record.order_id,
        "ticket_type": ev.TicketTypePayload(
            id=ticket_type.id,
            name=ticket_type.name,
            price_minor=ticket_type.price_minor,
            currency=ticket_type.currency,
        ),
        "holder": holder_payload(record.holder),
        "detected_at": context.detected_at,
        "details": dict(record.raw),
    }


def holder_payload(holder: Holder) -> ev.HolderPayload:
    return ev.HolderPayload(
        first_name=holder.first_name,
        last_name=holder.last_name,
        email=holder.email,
        phone=holder.phone,
    )


def snapshot(state: TicketState) -> ev.TicketSnapshot:
    """The tracked fields of a state, as they appear in ``before``/``after``."""
    return ev.TicketSnapshot(
        status=state.status.value,
        checked_in_at=state.checked_in_at,
        checked_out_at=state.checked_out_at,
        holder=holder_payload(state.holder),
        ticket_type=None
        if state.type_id is None
        else ev.TicketTypeRef(id=state.type_id, name=state.type_name),
    )
