"""Pure change detection for ticket-type inventory (docs/design.md §4 ``ticket_type.*``).

Like ``notifier.diff`` for tickets: the clock comes in through the context, events chain
(each one's ``after`` is the next one's ``before``) and are numbered per ticket type, so
ids are deterministic. Fixed order within one poll: removed, price_changed,
sale_state_changed, sold_changed, sold_out / back_in_stock. A ticket type first seen after
the baseline is recorded silently: the catalogue has no "created" event, and its first
sale will show as ``sold_changed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from notifier import events as ev
from notifier.diff import DiffContext
from notifier.model import TicketTypeId, TicketTypeRecord
from notifier.state import TicketTypeState as TicketTypeState  # re-exported, as in diff.py


@dataclass(frozen=True, slots=True)
class TicketTypeDiff:
    events: list[ev.TicketTypeEvent]
    states: dict[TicketTypeId, TicketTypeState]


def diff_ticket_types(
    previous: Mapping[TicketTypeId, TicketTypeState],
    current: Iterable[TicketTypeRecord],
    *,
    context: DiffContext,
) -> TicketTypeDiff:
    """Events for every tracked inventory change; states for every type that changed."""
    latest = {record.ticket_type_id: record for record in current}
    events: list[ev.TicketTypeEvent] = []
    states: dict[TicketTypeId, TicketTypeState] = {}
    for type_id, record in latest.items():
        before = previous.get(type_id)
        target = TicketTypeState.of(record)
        if before is not None and before.tracked() == target.tracked():
            continue
        new_events = [] if before is None else list(_transitions(before, record, context))
        sequence = new_events[-1].sequence if new_events else (before.sequence if before else 0)
        states[type_id] = replace(target, sequence=sequence)
        events.extend(new_events)
    return TicketTypeDiff(events=events, states=states)


def _transitions(
    before: TicketTypeState, record: TicketTypeRecord, context: DiffContext
) -> Iterator[ev.TicketTypeEvent]:
    build = _Builder(record, context, sequence=before.sequence)
    state = before
    steps: tuple[tuple[type[ev._TicketTypeEvent], dict[str, Any], datetime | None], ...] = (
        (ev.TicketTypeRemoved, {"deleted_at": record.deleted_at}, record.deleted_at),
        (ev.TicketTypePriceChanged, _price(record), record.updated_at),
        (ev.TicketTypeSaleStateChanged, _sale_state(record), record.updated_at),
        (
            ev.TicketTypeSoldChanged,
            {"sold": record.sold, "reserved": record.reserved},
            record.updated_at,
        ),
    )
    for model, changes, occurred_at in steps:
        if model is ev.TicketTypeRemoved and (record.deleted_at is None or state.deleted_at):
            continue
        after = replace(state, **changes)
        if after.tracked() != state.tracked():
            yield build(model, state, after, occurred_at)
            state = after
    after = replace(
        state,
        total_stock=record.total_stock,
        current_stock=record.current_stock,
        name=record.name,
        deleted_at=record.deleted_at,
    )
    stock_event = _stock_event(state.current_stock, record.current_stock)
    if stock_event is not None:
        yield build(stock_event, state, after, record.updated_at)


def _price(record: TicketTypeRecord) -> dict[str, Any]:
    return {"price_minor": record.price_minor, "currency": record.currency}


def _sale_state(record: TicketTypeRecord) -> dict[str, Any]:
    return {
        "on_sale": record.on_sale,
        "sale_starts_at": record.sale_starts_at,
        "sale_ends_at": record.sale_ends_at,
    }


def _stock_event(old: int | None, new: int | None) -> type[ev._TicketTypeEvent] | None:
    if new is not None and new <= 0 and (old is None or old > 0):
        return ev.TicketTypeSoldOut
    if old is not None and old <= 0 and new is not None and new > 0:
        return ev.TicketTypeBackInStock
    return None


class _Builder:
    def __init__(self, record: TicketTypeRecord, context: DiffContext, *, sequence: int) -> None:
        self._record = record
        self._context = context
        self._sequence = sequence

    def __call__(
        self,
        model: type[ev._TicketTypeEvent],
        before: TicketTypeState,
        after: TicketTypeState,
        occurred_at: datetime | None,
    ) -> ev.TicketTypeEvent:
        self._sequence += 1
        event = model(
            provider=self._context.provider,
            organizer=self._context.organizer,
            source=self._context.source,
            event_id=self._record.event_id,
            ticket_type_id=self._record.ticket_type_id,
            occurred_at=occurred_at,
            detected_at=self._context.detected_at,
            sequence=self._sequence,
            before=inventory_snapshot(before),
            after=inventory_snapshot(after),
        )
        assert isinstance(event, ev.TicketTypeEvent)  # every subclass is in the union
        return event


def inventory_snapshot(state: TicketTypeState) -> ev.InventorySnapshot:
    return ev.InventorySnapshot(
        **{f.name: getattr(state, f.name) for f in fields(state) if f.name != "sequence"}
    )
