"""Pure change detection for ticket-type inventory (docs/design.md §4 ``ticket_type.*``).

Like ``notifier.diff`` for tickets: the clock comes in through the context, events chain
(each one's ``after`` is the next one's ``before``) and are numbered per ticket type, so
ids are deterministic. Fixed order within one poll: removed, price_changed,
sale_state_changed, sold_changed, sold_out / back_in_stock. A ticket type first seen after
the baseline is recorded silently: the catalogue has no "created" event, and its first
sale will show as ``sold_changed``.

Counts settle before they are reported. Some providers' counters swing for a while after
a change (Ticket Tailor's ``quantity_issued`` read 3 -> 1 -> 0 -> 1 for about ten minutes
after a void, docs/providers.md), and each pass through zero would read as a sell-out and
a restock. So a new reading of the counts (sold, reserved, stock) is kept pending until
it has held, unchanged, for the ``settle`` window; only then do ``sold_changed`` and
``sold_out`` / ``back_in_stock`` fire, from the last settled counts to the new ones. A
reading that returns to the settled counts is dropped silently. ``settle`` of zero
reports every reading at once. The pending reading and its first sight are part of the
state, so a restart does not restart the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from notifier import events as ev
from notifier.diff import DiffContext
from notifier.model import TicketTypeId, TicketTypeRecord
from notifier.state import Counts, TicketTypeState

# Settle windows by provider, when the configuration names none. Ticket Tailor: its
# counters were observed swinging for about ten minutes after a void. Nuweb: its inventory
# is served from a 60-second response cache, so a reading is known current once it has
# outlived one cache period. The others report no swing (Shotgun and Eventpop give no
# inventory): every reading counts at once.
DEFAULT_SETTLE: Mapping[str, timedelta] = {
    "tickettailor": timedelta(minutes=10),
    "nuweb": timedelta(seconds=60),
}


def default_settle(provider: str) -> timedelta:
    return DEFAULT_SETTLE.get(provider, timedelta(0))


@dataclass(frozen=True, slots=True)
class TicketTypeDiff:
    events: list[ev.TicketTypeEvent]
    states: dict[TicketTypeId, TicketTypeState]


def diff_ticket_types(
    previous: Mapping[TicketTypeId, TicketTypeState],
    current: Iterable[TicketTypeRecord],
    *,
    context: DiffContext,
    settle: timedelta = timedelta(0),
) -> TicketTypeDiff:
    """Events for every tracked inventory change; states for every type that changed.

    Counts are reported once they have held for ``settle`` (measured on
    ``context.detected_at``); other fields at once.
    """
    latest = {record.ticket_type_id: record for record in current}
    events: list[ev.TicketTypeEvent] = []
    states: dict[TicketTypeId, TicketTypeState] = {}
    for type_id, observed in latest.items():
        before = previous.get(type_id)
        record, pending = observed, None
        if before is not None:
            record, pending = _settled(before, observed, context.detected_at, settle)
        target = replace(
            TicketTypeState.of(record),
            pending=None if pending is None else _counts(observed),
            pending_since=pending,
        )
        if before is not None and before.tracked() == target.tracked():
            continue
        new_events = [] if before is None else list(_transitions(before, record, context))
        sequence = new_events[-1].sequence if new_events else (before.sequence if before else 0)
        states[type_id] = replace(target, sequence=sequence)
        events.extend(new_events)
    return TicketTypeDiff(events=events, states=states)


def _counts(record: TicketTypeRecord) -> Counts:
    return (record.sold, record.reserved, record.total_stock, record.current_stock)


def _settled(
    before: TicketTypeState, observed: TicketTypeRecord, now: datetime, settle: timedelta
) -> tuple[TicketTypeRecord, datetime | None]:
    """The record to report (counts settled or still the last settled ones), and since
    when its new counts have been pending (None: nothing pending)."""
    counts = _counts(observed)
    if counts == before.counts() or settle <= timedelta(0):
        return observed, None
    since = before.pending_since if before.pending == counts else None
    if since is not None and now - since >= settle:
        return observed, None
    held = replace(
        observed,
        sold=before.sold,
        reserved=before.reserved,
        total_stock=before.total_stock,
        current_stock=before.current_stock,
    )
    return held, since or now


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
    after = replace(after, pending=None, pending_since=None)
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


_NOT_IN_SNAPSHOT = frozenset({"sequence", "pending", "pending_since"})


def inventory_snapshot(state: TicketTypeState) -> ev.InventorySnapshot:
    return ev.InventorySnapshot(
        **{f.name: getattr(state, f.name) for f in fields(state) if f.name not in _NOT_IN_SNAPSHOT}
    )
