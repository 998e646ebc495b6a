"""Inventory counts settle before they are reported (notifier.inventory_diff, pure)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given, strategies as st

from notifier.diff import DiffContext
from notifier.inventory_diff import diff_ticket_types
from notifier.model import SourceId, TicketTypeId, TicketTypeRecord
from notifier.state import TicketTypeState
from notifier.store.codec import decode_type_state, encode_type_state

TYPE = TicketTypeId("tt_1")
START = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
TOTAL = 3


def reading(sold: int) -> TicketTypeRecord:
    """The ticket type as one read shows it: ``sold`` of three issued."""
    return TicketTypeRecord(
        provider="tickettailor",
        source=SourceId("tt"),
        ticket_type_id=TYPE,
        event_id="ev_1",
        name="Door",
        price_minor=900,
        currency="GBP",
        total_stock=TOTAL,
        sold=sold,
        reserved=0,
        current_stock=TOTAL - sold,
        on_sale=True,
        deleted_at=None,
        updated_at=None,
    )


def run(
    reads: Sequence[tuple[timedelta, int]], settle: timedelta
) -> list[tuple[datetime, str, int | None]]:
    """Diff the reads in turn (the first is the baseline): (time, type, sold after)."""
    states = {TYPE: TicketTypeState.of(reading(reads[0][1]))}
    now = START
    out: list[tuple[datetime, str, int | None]] = []
    for gap, sold in reads[1:]:
        now += gap
        context = DiffContext("tickettailor", "acme", SourceId("tt"), now)
        result = diff_ticket_types(states, [reading(sold)], context=context, settle=settle)
        # Through the store's codec, as a restart would read it back.
        states.update(
            {k: decode_type_state(encode_type_state(v)) for k, v in result.states.items()}
        )
        out.extend((now, e.type, e.after.sold) for e in result.events)
    return out


def test_the_observed_swing_after_a_void_yields_one_restock() -> None:
    """Sold out at 3 of 3; a void leaves 2, read swinging 3, 1, 0, 1 for ten minutes
    (observed of Ticket Tailor, docs/providers.md), then 2: one sold_changed and one
    back_in_stock, at the settled value, once 2 has held ten minutes. Unsettled, the same
    reads flap between sold out and back in stock."""
    shape = [3, 1, 0, 1, 3, 1, 0, 1, 3, 1]
    swing = [(timedelta(0), 3), *[(timedelta(minutes=1), sold) for sold in shape]]
    settled = [(timedelta(minutes=1), 2)] * 12
    events = run(swing + settled, WINDOW)
    assert [(kind, sold) for _, kind, sold in events] == [
        ("ticket_type.sold_changed", 2),
        ("ticket_type.back_in_stock", 2),
    ]
    assert events[0][0] == START + timedelta(minutes=21)
    flapping = [kind for _, kind, _ in run(swing + settled, timedelta(0))]
    assert flapping.count("ticket_type.sold_out") == 2
    assert flapping.count("ticket_type.back_in_stock") == 3


READS = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=400).map(lambda s: timedelta(seconds=s)),
        st.integers(min_value=0, max_value=TOTAL),
    ),
    min_size=2,
    max_size=40,
)


@given(READS, st.integers(min_value=0, max_value=900).map(lambda s: timedelta(seconds=s)))
def test_only_counts_that_held_for_the_window_are_reported(
    reads: list[tuple[timedelta, int]], settle: timedelta
) -> None:
    """Every count event reports a reading that every read of the window before it showed;
    sold_out and back_in_stock alternate; a reading held past the window is reached."""
    events = run(reads, settle)
    times = [START]
    for gap, _ in reads[1:]:
        times.append(times[-1] + gap)
    seen = list(zip(times, [sold for _, sold in reads], strict=True))
    for at, _, reported in events:
        window = [sold for t, sold in seen if at - settle <= t <= at]
        assert window
        assert set(window) == {reported}
        # ...from a read at least the window earlier: it held the whole of it.
        prior = [sold for t, sold in seen if t <= at - settle]
        assert prior
        assert prior[-1] == reported
    stock_events = [kind for _, kind, _ in events if kind != "ticket_type.sold_changed"]
    assert all(a != b for a, b in itertools.pairwise(stock_events))
    final = reads[-1][1]
    held = run([*reads, (settle, final), (timedelta(seconds=1), final)], settle)
    changes = [sold for _, kind, sold in held if kind == "ticket_type.sold_changed"]
    if final != reads[0][1]:
        assert changes
        assert changes[-1] == final


def test_a_state_written_before_settling_existed_decodes() -> None:
    """A stored state of the older twelve-field form reads back with nothing pending."""
    state = replace(TicketTypeState.of(reading(1)), pending=(2, 0, 3, 1), pending_since=START)
    blob = encode_type_state(state)
    assert decode_type_state(blob) == state
    old = orjson.dumps(orjson.loads(blob)[:12])
    assert decode_type_state(old) == replace(state, pending=None, pending_since=None)
