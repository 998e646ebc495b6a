"""The compact ticket-state codec: encode then decode gives back exactly the same state."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, strategies as st

from notifier.model import Holder, TicketStatus
from notifier.state import TicketState
from notifier.store.codec import decode_state, encode_state
from tests.strategies import moments, optional_moments, statuses

_texts = st.none() | st.text()
_states = st.builds(
    TicketState,
    status=statuses,
    checked_in_at=optional_moments,
    checked_out_at=optional_moments,
    holder=st.builds(Holder, first_name=_texts, last_name=_texts, email=_texts, phone=_texts),
    sequence=st.integers(min_value=0, max_value=2**53),
    type_id=_texts,
    type_name=_texts,
)


@given(_states)
def test_round_trip_is_exact(state: TicketState) -> None:
    """decode(encode(state)) == state, microseconds, nulls and unicode included."""
    assert decode_state(encode_state(state)) == state


@given(moments)
def test_decoded_times_are_aware_utc(moment: datetime) -> None:
    """Decoded times are aware UTC datetimes equal to the encoded ones."""
    state = TicketState(TicketStatus.VALID, moment, None, Holder())
    decoded = decode_state(encode_state(state)).checked_in_at
    assert decoded == moment
    assert decoded is not None
    assert decoded.utcoffset() is not None
    assert decoded.utcoffset() == UTC.utcoffset(None)


def test_decoded_status_is_the_enum_member() -> None:
    """The status decodes to the TicketStatus member itself (the differ compares with ``is``)."""
    state = TicketState(TicketStatus.REFUNDED, None, None, Holder())
    assert decode_state(encode_state(state)).status is TicketStatus.REFUNDED


def test_unicode_holder_round_trips() -> None:
    """Non-ASCII names, emoji and astral characters survive unchanged."""
    holder = Holder(first_name="Zoë 🎟", last_name="Ålström-李", email="zoë@exämple.com")
    state = TicketState(TicketStatus.VALID, None, None, holder, sequence=7)
    assert decode_state(encode_state(state)) == state


def test_microsecond_times_round_trip() -> None:
    """Times keep their microseconds, before and after the epoch."""
    early = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    late = datetime(2025, 6, 1, 21, 0, 0, 1, tzinfo=UTC)
    state = TicketState(TicketStatus.VALID, late, early, Holder(), sequence=1)
    assert decode_state(encode_state(state)) == state


def test_a_state_stored_before_types_were_tracked_decodes_without_one() -> None:
    """An 8-field state (no ticket type) still loads; its type is unknown (None)."""
    blob = b'["valid",null,null,"Ann",null,null,null,3]'
    state = decode_state(blob)
    assert (state.sequence, state.type_id, state.type_name) == (3, None, None)
    assert state.holder.first_name == "Ann"
