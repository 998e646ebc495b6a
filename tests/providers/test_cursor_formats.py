"""Cursors of the deep-read adapters (Eventpop, Nuweb): the current format round-trips,
and text written by the version before deep reads still decodes after an upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.errors import FatalProviderError
from notifier.providers import eventpop, nuweb

T = datetime(2026, 4, 27, 3, 5, 0, 250000, tzinfo=UTC)
MINUTE = timedelta(seconds=60)

# Exactly what the previous version wrote (its encode_cursor, for these values).
EVENTPOP_BEFORE_DEEP_READS = (
    '{"event:71001":["2026-04-27T03:05:00.250000Z",8800123],'
    '"event:71002":["2026-04-27T03:05:00.250000Z",1]}'
)
NUWEB_BEFORE_DEEP_READS = (
    '{"entry":{"5":"2026-04-27T03:05:00.250000Z"},'
    '"inventory":{"5":"2026-04-27T03:05:00.250000Z"},'
    '"inventory_read_at":"2026-04-27T03:05:00.250000Z"}'
)


def test_an_older_eventpop_cursor_decodes_without_deep_state() -> None:
    """The older text gives the same positions and no anchor, so the next read is deep."""
    state = eventpop.decode_state(EVENTPOP_BEFORE_DEEP_READS)
    assert state.positions == {
        "event:71001": eventpop.Position(T, 8800123),
        "event:71002": eventpop.Position(T, 1),
    }
    assert state.anchors == {}
    assert state.deep_read_at is None


def test_the_eventpop_cursor_round_trips_with_its_deep_state() -> None:
    """Positions, anchors and the deep read's time survive as opaque text."""
    state = eventpop.CursorState(
        positions={"event:71001": eventpop.Position(T + MINUTE, 8800200)},
        anchors={"event:71001": eventpop.Position(T, 8800123)},
        deep_read_at=T + MINUTE,
    )
    text = eventpop.encode_state(state)
    assert text is not None
    assert eventpop.decode_state(text) == state
    assert eventpop.decode_cursor(text) == state.positions


def test_eventpop_positions_alone_keep_the_older_format() -> None:
    """Without deep state (lookback 0) the text is what the older version wrote."""
    state = eventpop.decode_state(EVENTPOP_BEFORE_DEEP_READS)
    assert eventpop.encode_state(eventpop.CursorState(state.positions)) == (
        EVENTPOP_BEFORE_DEEP_READS
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"deep": [], "event:1": ["2026-04-27T03:05:00Z", 1]}',
        '{"deep": {"anchors": {"event:1": "x"}}, "event:1": ["2026-04-27T03:05:00Z", 1]}',
        '{"deep": {"read_at": "not a time"}, "event:1": ["2026-04-27T03:05:00Z", 1]}',
    ],
)
def test_a_corrupt_eventpop_deep_state_is_fatal(text: str) -> None:
    """A deep state that is not ours fails loudly, like a corrupt position."""
    with pytest.raises(FatalProviderError):
        eventpop.decode_state(text)


def test_an_older_nuweb_cursor_decodes_without_deep_state() -> None:
    """The older text gives the same positions and no anchor, so the next read is deep."""
    state = nuweb.decode_cursor(NUWEB_BEFORE_DEEP_READS)
    assert state == nuweb.NuwebCursor(entry={"5": T}, inventory={"5": T}, inventory_read_at=T)
    assert nuweb.deep_read_due(state, T + timedelta(seconds=5), ["5"], MINUTE)


def test_the_nuweb_cursor_round_trips_with_its_deep_state() -> None:
    """listEndTimes, inventory watermarks, anchors and times survive as opaque text."""
    state = nuweb.NuwebCursor(
        entry={"5": T + MINUTE},
        inventory={"5": T},
        inventory_read_at=T,
        deep_anchors={"5": T},
        deep_read_at=T + MINUTE,
    )
    assert nuweb.decode_cursor(nuweb.encode_cursor(state)) == state


@pytest.mark.parametrize(
    ("seconds_since", "anchored", "due"),
    [
        (None, True, True),  # never read deep
        (10, True, False),
        (59.9, True, False),
        (60, True, True),
        (-1, True, True),  # the clock went back: do not trust the schedule
        (10, False, True),  # an event without an anchor yet
    ],
)
def test_a_nuweb_deep_read_is_due_once_a_minute(
    seconds_since: float | None, anchored: bool, due: bool
) -> None:
    """Deep when never done, a minute on, on a clock gone back, or for an unanchored event."""
    read_at = None if seconds_since is None else T - timedelta(seconds=seconds_since)
    state = nuweb.NuwebCursor(
        entry={"5": T}, deep_anchors={"5": T} if anchored else {}, deep_read_at=read_at
    )
    assert nuweb.deep_read_due(state, T, ["5"], MINUTE) is due
