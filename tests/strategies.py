"""Hypothesis strategies and plain builders shared by the unit and contract tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from notifier.diff import DiffContext
from notifier.model import Holder, SourceId, TicketId, TicketRecord, TicketStatus, TicketType
from notifier.state import TicketState

SOURCE = SourceId("shotgun-main")
DETECTED_AT = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
CONTEXT = DiffContext(
    provider="shotgun", organizer="fabric", source=SOURCE, detected_at=DETECTED_AT
)
ALICE = Holder(first_name="Alice", last_name="Liddell", email="alice@example.com", phone="+4471")
BOB = Holder(first_name="Bob", last_name="Builder", email="bob@example.com", phone="+4472")

statuses = st.sampled_from(TicketStatus)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
optional_moments = st.none() | moments
_names = st.none() | st.text(max_size=12)
holders = st.builds(
    Holder,
    first_name=_names,
    last_name=_names,
    email=st.none() | st.emails(),
    phone=st.none() | st.from_regex(r"\+[0-9]{6,12}", fullmatch=True),
)
# A small pool makes "holder unchanged" likely enough for hypothesis to explore it.
few_holders = st.sampled_from([Holder(), ALICE, BOB]) | holders
# Two ids and a rename: "type changed", "renamed only" and "unchanged" all come up often.
ticket_types = st.builds(
    TicketType,
    id=st.sampled_from(["TT1", "TT2"]),
    name=st.sampled_from(["Early bird", "VIP", None]),
    price_minor=st.none() | st.integers(min_value=0, max_value=10**6),
)
ticket_states = st.builds(
    TicketState,
    status=statuses,
    checked_in_at=optional_moments,
    checked_out_at=optional_moments,
    holder=few_holders,
    sequence=st.integers(min_value=0, max_value=10_000),
    type_id=st.sampled_from(["TT1", "TT2"]),
    type_name=st.sampled_from(["Early bird", "VIP", None]),
)


def record(ticket_id: str = "T1", **changes: Any) -> TicketRecord:
    """A valid, unscanned ticket held by Alice, with any field overridden."""
    fields: dict[str, Any] = {
        "provider": "shotgun",
        "source": SOURCE,
        "ticket_id": TicketId(ticket_id),
        "event_id": "410006",
        "order_id": "O1",
        "ticket_type": TicketType(id="TT1", name="Early bird", price_minor=1500, currency="EUR"),
        "holder": ALICE,
        "status": TicketStatus.VALID,
        "checked_in_at": None,
        "updated_at": datetime(2025, 6, 1, 19, 0, tzinfo=UTC),
    }
    fields.update(changes)
    return TicketRecord(**fields)


def state_of(rec: TicketRecord, sequence: int = 0) -> TicketState:
    """The stored state a record would leave behind."""
    return TicketState.of(rec, sequence)


@st.composite
def records_from(draw: st.DrawFn, state: TicketState, ticket_id: str = "T1") -> TicketRecord:
    """A record of the ticket: each tracked field either kept from ``state`` or redrawn."""

    def pick(kept: Any, fresh: st.SearchStrategy[Any]) -> Any:
        return draw(st.just(kept) | fresh)

    return record(
        ticket_id,
        status=pick(state.status, statuses),
        checked_in_at=pick(state.checked_in_at, optional_moments),
        checked_out_at=pick(state.checked_out_at, optional_moments),
        holder=pick(state.holder, few_holders),
        ticket_type=pick(_type_of(state), ticket_types),
        status_changed_at=draw(optional_moments),
        updated_at=draw(optional_moments),
    )


def _type_of(state: TicketState) -> TicketType:
    return TicketType(id=state.type_id or "TT1", name=state.type_name)


ticket_records = st.builds(
    record,
    ticket_type=ticket_types,
    status=statuses,
    checked_in_at=optional_moments,
    checked_out_at=optional_moments,
    holder=few_holders,
    updated_at=optional_moments,
)
