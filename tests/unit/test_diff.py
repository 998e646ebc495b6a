"""diff_tickets: the catalogue of docs/design.md §4 as before/after tables, plus properties."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from notifier.diff import TicketDiff, diff_tickets, snapshot
from notifier.envelope import to_outbox_event
from notifier.events import TicketEvent
from notifier.model import Holder, TicketId, TicketRecord, TicketStatus, TicketType
from notifier.state import TicketState, record_fingerprint
from tests.strategies import (
    BOB,
    CONTEXT,
    record,
    records_from,
    state_of,
    ticket_records,
    ticket_states,
)

UPDATED = datetime(2025, 6, 1, 19, 0, tzinfo=UTC)
SCAN = datetime(2025, 6, 1, 21, 0, 0, 123456, tzinfo=UTC)
RESCAN = datetime(2025, 6, 1, 21, 30, tzinfo=UTC)
EXIT = datetime(2025, 6, 1, 23, 0, tzinfo=UTC)
CHANGED = datetime(2025, 6, 1, 20, 15, tzinfo=UTC)
T1 = TicketId("T1")
S = TicketStatus
VIP = TicketType(id="TT9", name="VIP", price_minor=4500, currency="EUR")


def diff(
    previous: Mapping[TicketId, TicketState],
    records: Sequence[TicketRecord],
    *,
    emit_new: bool = True,
) -> TicketDiff:
    return diff_tickets(previous, records, context=CONTEXT, emit_new=emit_new)


def kinds(result: TicketDiff) -> list[tuple[str, datetime | None]]:
    return [(event.type, event.occurred_at) for event in result.events]


# (before, after record, expected [(type, occurred_at)]); before None = not in the state.
TRANSITIONS: dict[
    str, tuple[TicketRecord | None, TicketRecord, list[tuple[str, datetime | None]]]
] = {
    "new ticket after baseline": (None, record(), [("ticket.issued", UPDATED)]),
    "new ticket already scanned": (
        None,
        record(checked_in_at=SCAN),
        [("ticket.issued", UPDATED), ("ticket.checked_in", SCAN)],
    ),
    "new ticket scanned in and out": (
        None,
        record(checked_in_at=SCAN, checked_out_at=EXIT),
        [("ticket.issued", UPDATED), ("ticket.checked_in", SCAN), ("ticket.checked_out", EXIT)],
    ),
    "scan": (record(), record(checked_in_at=SCAN), [("ticket.checked_in", SCAN)]),
    "unscan": (
        record(checked_in_at=SCAN),
        record(checked_in_at=None),
        [("ticket.check_in_reverted", UPDATED)],
    ),
    "re-scan at another time": (
        record(checked_in_at=SCAN),
        record(checked_in_at=RESCAN),
        [("ticket.checked_in", RESCAN)],
    ),
    "exit scan": (
        record(checked_in_at=SCAN),
        record(checked_in_at=SCAN, checked_out_at=EXIT),
        [("ticket.checked_out", EXIT)],
    ),
    "void with its own time": (
        record(),
        record(status=S.VOID, status_changed_at=CHANGED),
        [("ticket.voided", CHANGED)],
    ),
    "void without its own time": (
        record(),
        record(status=S.VOID),
        [("ticket.voided", UPDATED)],
    ),
    "refunded": (
        record(),
        record(status=S.REFUNDED, status_changed_at=CHANGED),
        [("ticket.refunded", CHANGED)],
    ),
    "canceled": (
        record(),
        record(status=S.CANCELED, status_changed_at=CHANGED),
        [("ticket.canceled", CHANGED)],
    ),
    "resold": (record(), record(status=S.RESOLD), [("ticket.resold", UPDATED)]),
    "void to valid": (record(status=S.VOID), record(), [("ticket.reinstated", UPDATED)]),
    "refunded to valid": (record(status=S.REFUNDED), record(), [("ticket.reinstated", UPDATED)]),
    "canceled to valid": (record(status=S.CANCELED), record(), [("ticket.reinstated", UPDATED)]),
    "resold to valid": (record(status=S.RESOLD), record(), [("ticket.status_changed", UPDATED)]),
    "pending to valid": (record(status=S.PENDING), record(), [("ticket.status_changed", UPDATED)]),
    "pending to rejected": (
        record(status=S.PENDING),
        record(status=S.REJECTED),
        [("ticket.status_changed", UPDATED)],
    ),
    "valid to unknown": (
        record(),
        record(status=S.UNKNOWN, status_raw="limbo"),
        [("ticket.status_changed", UPDATED)],
    ),
    "holder change": (record(), record(holder=BOB), [("ticket.holder_changed", UPDATED)]),
    "refund that undid the scan": (
        record(checked_in_at=SCAN),
        record(status=S.REFUNDED, status_changed_at=CHANGED),
        [("ticket.refunded", CHANGED), ("ticket.check_in_reverted", UPDATED)],
    ),
    "upgrade to another type": (
        record(),
        record(ticket_type=VIP),
        [("ticket.type_changed", UPDATED)],
    ),
    "swap given to another holder": (
        record(),
        record(holder=BOB, ticket_type=VIP),
        [("ticket.holder_changed", UPDATED), ("ticket.type_changed", UPDATED)],
    ),
    "scanned on the new type": (
        record(),
        record(checked_in_at=SCAN, ticket_type=VIP),
        [("ticket.checked_in", SCAN), ("ticket.type_changed", UPDATED)],
    ),
}


@pytest.mark.parametrize(
    ("before", "after", "expected"), list(TRANSITIONS.values()), ids=list(TRANSITIONS)
)
def test_transition_emits_the_catalogued_events(
    before: TicketRecord | None,
    after: TicketRecord,
    expected: list[tuple[str, datetime | None]],
) -> None:
    """Each catalogued transition yields its event types, in order, with occurred_at."""
    previous = {} if before is None else {T1: state_of(before, sequence=4)}
    assert kinds(diff(previous, [after])) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"), list(TRANSITIONS.values()), ids=list(TRANSITIONS)
)
def test_transition_numbers_events_after_the_stored_sequence(
    before: TicketRecord | None,
    after: TicketRecord,
    expected: list[tuple[str, datetime | None]],
) -> None:
    """Sequences continue contiguously from the stored state's sequence (0 for new tickets)."""
    stored = 0 if before is None else 41
    previous = {} if before is None else {T1: state_of(before, sequence=stored)}
    result = diff(previous, [after])
    numbers = [event.sequence for event in result.events]
    assert numbers == list(range(stored + 1, stored + 1 + len(expected)))
    assert result.states[T1].sequence == numbers[-1]


@pytest.mark.parametrize(
    ("before", "after", "expected"), list(TRANSITIONS.values()), ids=list(TRANSITIONS)
)
def test_transition_records_the_new_state(
    before: TicketRecord | None,
    after: TicketRecord,
    expected: list[tuple[str, datetime | None]],
) -> None:
    """The state to commit holds the record's tracked fields."""
    previous = {} if before is None else {T1: state_of(before, sequence=3)}
    state = diff(previous, [after]).states[T1]
    assert state.same_tracked_fields(state_of(after))


@pytest.mark.parametrize(
    ("before", "after", "expected"), list(TRANSITIONS.values()), ids=list(TRANSITIONS)
)
def test_transition_snapshots_chain(
    before: TicketRecord | None,
    after: TicketRecord,
    expected: list[tuple[str, datetime | None]],
) -> None:
    """Each event's ``after`` is the next event's ``before``."""
    previous = {} if before is None else {T1: state_of(before)}
    events = diff(previous, [after]).events
    for earlier, later in itertools.pairwise(events):
        assert later.before == earlier.after


def test_new_ticket_issued_has_no_before() -> None:
    """``ticket.issued`` carries ``before: null`` and an unscanned ``after``."""
    (issued, _) = diff({}, [record(checked_in_at=SCAN)]).events
    assert issued.before is None
    assert issued.after.checked_in_at is None
    assert issued.after.status == "valid"


def test_existing_ticket_event_before_is_the_stored_state() -> None:
    """The first event's ``before`` is the stored state, its ``after`` the new fields."""
    (event,) = diff({T1: state_of(record())}, [record(checked_in_at=SCAN)]).events
    assert event.before is not None
    assert event.before.checked_in_at is None
    assert event.after.checked_in_at == SCAN


def test_event_carries_the_context_and_record_fields() -> None:
    """Events name provider, organizer, source, ids and detected_at from the poll context."""
    (event,) = diff({}, [record(raw={"ticket_scan_code": "X9"})]).events
    assert (event.provider, event.organizer, event.source) == ("shotgun", "fabric", CONTEXT.source)
    assert (event.ticket_id, event.event_id, event.order_id) == ("T1", "410006", "O1")
    assert event.detected_at == CONTEXT.detected_at
    assert event.details == {"ticket_scan_code": "X9"}


def test_baseline_emits_nothing_but_records_states() -> None:
    """emit_new=False records every new ticket's state at sequence 0 and emits no event."""
    records = [record("T1", checked_in_at=SCAN), record("T2", status=S.VOID)]
    result = diff({}, records, emit_new=False)
    assert result.events == []
    assert result.states == {
        TicketId("T1"): state_of(records[0]),
        TicketId("T2"): state_of(records[1]),
    }


def test_baseline_still_diffs_known_tickets() -> None:
    """emit_new=False only silences new tickets; a known ticket's scan is still an event."""
    result = diff({T1: state_of(record())}, [record(checked_in_at=SCAN)], emit_new=False)
    assert kinds(result) == [("ticket.checked_in", SCAN)]


def test_unchanged_ticket_has_no_event_and_no_state() -> None:
    """A ticket whose tracked fields did not change is left out of events and states."""
    stored = state_of(record(checked_in_at=SCAN), sequence=9)
    later = record(checked_in_at=SCAN, updated_at=RESCAN, raw={"note": "touched"})
    result = diff({T1: stored}, [later])
    assert result.events == []
    assert result.states == {}


def test_ticket_read_twice_counts_once_last_read_wins() -> None:
    """Two reads of one ticket in one poll count once, and the later read wins."""
    result = diff({T1: state_of(record())}, [record(checked_in_at=SCAN), record(status=S.VOID)])
    assert kinds(result) == [("ticket.voided", UPDATED)]
    assert result.states[T1].checked_in_at is None


def test_exit_scan_cleared_is_recorded_without_an_event() -> None:
    """A checked_out_at that goes back to null updates the state silently."""
    stored = state_of(record(checked_in_at=SCAN, checked_out_at=EXIT), sequence=2)
    result = diff({T1: stored}, [record(checked_in_at=SCAN)])
    assert result.events == []
    assert result.states[T1] == replace(stored, checked_out_at=None)


def test_type_change_names_the_old_and_new_type() -> None:
    """``ticket.type_changed`` carries the type before and after, id and name, and the
    top-level ``ticket_type`` is the new one."""
    (event,) = diff({T1: state_of(record(), sequence=2)}, [record(ticket_type=VIP)]).events
    assert event.type == "ticket.type_changed"
    assert event.before is not None
    assert event.before.ticket_type is not None
    assert event.after.ticket_type is not None
    assert (event.before.ticket_type.id, event.before.ticket_type.name) == ("TT1", "Early bird")
    assert (event.after.ticket_type.id, event.after.ticket_type.name) == ("TT9", "VIP")
    assert event.ticket_type.id == "TT9"


def test_a_renamed_type_is_recorded_without_an_event() -> None:
    """Same type id, new name: the organizer renamed the product; nothing to tell."""
    renamed = TicketType(id="TT1", name="Early bird 2026")
    result = diff({T1: state_of(record(), sequence=2)}, [record(ticket_type=renamed)])
    assert result.events == []
    assert result.states[T1].type_name == "Early bird 2026"


def test_a_state_stored_before_types_were_tracked_learns_its_type_silently() -> None:
    """A state without a type (written by an older version) takes the record's, no event."""
    stored = replace(state_of(record(), sequence=5), type_id=None, type_name=None)
    result = diff({T1: stored}, [record(ticket_type=VIP)])
    assert result.events == []
    assert (result.states[T1].type_id, result.states[T1].sequence) == ("TT9", 5)


def test_a_type_id_that_could_not_be_read_is_no_type_change() -> None:
    """An empty type id (a ticket whose type the adapter could not read) on either side
    is recorded silently: no upgrade was seen."""
    unknown = TicketType(id="")
    assert diff({T1: state_of(record(ticket_type=unknown))}, [record()]).events == []
    assert diff({T1: state_of(record())}, [record(ticket_type=unknown)]).events == []


def test_events_of_several_tickets_keep_read_order() -> None:
    """Events come ticket by ticket in the order the tickets were read."""
    previous = {TicketId("A"): state_of(record("A")), TicketId("B"): state_of(record("B"))}
    records = [record("B", checked_in_at=SCAN), record("A", status=S.VOID)]
    assert [e.ticket_id for e in diff(previous, records).events] == ["B", "A"]


# -- properties --------------------------------------------------------------------------


def _apply(state: TicketState, event: TicketEvent) -> TicketState:
    after = event.after
    assert after.ticket_type is not None  # every state the diff builds has a type
    return replace(
        state,
        status=TicketStatus(after.status),
        checked_in_at=after.checked_in_at,
        checked_out_at=after.checked_out_at,
        holder=Holder(**after.holder.model_dump()),
        type_id=after.ticket_type.id,
        type_name=after.ticket_type.name,
    )


@st.composite
def transitions(draw: st.DrawFn) -> tuple[TicketState, TicketRecord]:
    before = draw(ticket_states)
    return before, draw(records_from(before))


@given(transitions())
def test_replaying_events_reproduces_the_record(case: tuple[TicketState, TicketRecord]) -> None:
    """Applying the events' ``after`` in order to the old state gives the record's fields."""
    before, rec = case
    state = before
    for event in diff({T1: before}, [rec]).events:
        state = _apply(state, event)
    assert (state.status, state.checked_in_at, state.holder, state.type_id) == (
        rec.status,
        rec.checked_in_at,
        rec.holder,
        rec.ticket_type.id,
    )
    if rec.checked_out_at is not None:
        assert state.checked_out_at == rec.checked_out_at


@given(transitions())
def test_snapshots_chain_from_the_stored_state(case: tuple[TicketState, TicketRecord]) -> None:
    """The first ``before`` is the stored state and each ``after`` is the next ``before``."""
    before, rec = case
    events = diff({T1: before}, [rec]).events
    befores = [event.before for event in events]
    afters = [snapshot(before)] + [event.after for event in events]
    assert befores == afters[: len(befores)]


@given(ticket_records)
def test_replaying_new_ticket_events_reproduces_the_record(rec: TicketRecord) -> None:
    """A new ticket's events, replayed from nothing, end at the record's tracked fields."""
    events = diff({}, [rec]).events
    state = _apply(state_of(rec), events[0])
    for event in events[1:]:
        state = _apply(state, event)
    assert state.same_tracked_fields(state_of(rec))


@given(transitions())
def test_same_inputs_give_the_same_events_and_ids(case: tuple[TicketState, TicketRecord]) -> None:
    """Diffing the same inputs twice yields identical events and outbox ids."""
    before, rec = case
    first = diff({T1: before}, [rec]).events
    second = diff({T1: before}, [rec]).events
    assert first == second
    assert [to_outbox_event(e).id for e in first] == [to_outbox_event(e).id for e in second]


@given(ticket_states)
def test_nothing_tracked_changed_gives_nothing(before: TicketState) -> None:
    """A record with the stored tracked fields yields no event and no state."""
    rec = record(
        status=before.status,
        checked_in_at=before.checked_in_at,
        checked_out_at=before.checked_out_at,
        holder=before.holder,
        ticket_type=TicketType(id=before.type_id or "", name=before.type_name),
    )
    result = diff({T1: before}, [rec])
    assert result.events == []
    assert result.states == {}


@given(transitions())
def test_sequences_are_contiguous_from_the_stored_one(
    case: tuple[TicketState, TicketRecord],
) -> None:
    """Event sequences run n+1, n+2, ... and the committed state keeps the last one."""
    before, rec = case
    result = diff({T1: before}, [rec])
    numbers = [event.sequence for event in result.events]
    assert numbers == list(range(before.sequence + 1, before.sequence + 1 + len(numbers)))
    if T1 in result.states:
        assert result.states[T1].sequence == (numbers[-1] if numbers else before.sequence)


@given(st.lists(ticket_records, max_size=5))
def test_baseline_never_emits(records: list[TicketRecord]) -> None:
    """emit_new=False never yields an event for tickets not in the state."""
    assert diff({}, records, emit_new=False).events == []


@given(ticket_records, st.integers(min_value=0, max_value=2**40))
def test_a_record_and_its_state_share_a_fingerprint(rec: TicketRecord, sequence: int) -> None:
    """The digest covers the tracked fields only: not the sequence, nor untracked fields."""
    assert record_fingerprint(rec) == state_of(rec, sequence).fingerprint


@given(transitions())
def test_fingerprints_differ_exactly_when_tracked_fields_do(
    case: tuple[TicketState, TicketRecord],
) -> None:
    """The poller skips a ticket on equal digests: that must mean 'nothing to emit'."""
    before, rec = case
    same_digest = record_fingerprint(rec) == before.fingerprint
    assert same_digest == before.same_tracked_fields(state_of(rec))
    if same_digest:
        assert diff({T1: before}, [rec]).events == []


@given(transitions())
def test_a_type_change_is_told_exactly_when_the_type_id_changes(
    case: tuple[TicketState, TicketRecord],
) -> None:
    """One ``ticket.type_changed``, last, when the id differs; none for a rename alone."""
    before, rec = case
    types = [event.type for event in diff({T1: before}, [rec]).events]
    changed = bool(before.type_id) and rec.ticket_type.id != before.type_id
    assert types.count("ticket.type_changed") == (1 if changed else 0)
    if changed:
        assert types[-1] == "ticket.type_changed"
