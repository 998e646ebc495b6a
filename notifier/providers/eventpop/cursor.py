"""The Eventpop cursor, pure: per-stream positions plus the deep-read state, as JSON text.

The cursor is opaque JSON ``{"event:<id>": ["<updated_at UTC>", <ticket id>], "deep":
{...}}``: the (updated_at, id) of the newest ticket read per stream, and the deep-read
state (see ``adapter``'s module docstring for why deep reads exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from notifier.errors import FatalProviderError
from notifier.model import TicketRecord
from notifier.timeparse import parse_timestamp

DEEP_KEY = "deep"  # the cursor's deep-read state; no stream key can be this
# The lookback window is re-read by a "deep" poll at most this often (adapter clock);
# polls in between read from the cursor only (adapter module docstring).
DEEP_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """The newest ticket read in a stream, in (updated_at, id) order."""

    updated_at: datetime
    ticket_id: int

    def wire(self) -> list[object]:
        return [wire_time(self.updated_at), self.ticket_id]


@dataclass(frozen=True, slots=True)
class CursorState:
    """Everything the opaque cursor carries.

    ``positions``: the newest ticket read per stream. ``anchors``: each stream's position
    when the last deep read began, and ``deep_read_at`` when that was (adapter clock);
    both absent in cursors written before deep reads existed, which makes the next poll
    deep.
    """

    positions: Mapping[str, Position] = field(default_factory=dict)
    anchors: Mapping[str, Position] = field(default_factory=dict)
    deep_read_at: datetime | None = None


def decode_cursor(cursor: str | None) -> dict[str, Position]:
    """The per-stream positions of an opaque cursor; ``FatalProviderError`` if corrupt."""
    return dict(decode_state(cursor).positions)


def encode_cursor(positions: Mapping[str, Position]) -> str | None:
    """Opaque cursor text ``{stream: ["<UTC ISO time>", <id>]}`` with sorted keys."""
    return encode_state(CursorState(positions))


def decode_state(cursor: str | None) -> CursorState:
    """The whole cursor, of this format or the older one without deep-read state.

    ``FatalProviderError`` if corrupt: restarting silently would re-baseline the source.
    """
    if cursor is None:
        return CursorState()
    try:
        loaded = orjson.loads(cursor)
        if not isinstance(loaded, dict):
            raise TypeError("cursor is not an object")
        deep = loaded.pop(DEEP_KEY, None)
        positions = _positions(loaded)
        if deep is None:
            return CursorState(positions)
        if not isinstance(deep, dict):
            raise TypeError("deep state is not an object")
        return CursorState(
            positions, _positions(deep.get("anchors") or {}), parse_timestamp(deep.get("read_at"))
        )
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise FatalProviderError("corrupt Eventpop cursor: " + type(exc).__name__) from exc


def encode_state(state: CursorState) -> str | None:
    """Opaque cursor text: the positions by stream, plus the deep-read state if any.

    The deep state sits under a key no stream can have (streams are ``event:<id>`` and
    ``user``), so the positions keep the older format's shape.
    """
    if not state.positions:
        return None
    body: dict[str, object] = _wire_positions(state.positions)
    if state.deep_read_at is not None or state.anchors:
        read_at = state.deep_read_at
        body[DEEP_KEY] = {
            "anchors": _wire_positions(state.anchors),
            "read_at": None if read_at is None else wire_time(read_at),
        }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def _positions(value: object) -> dict[str, Position]:
    if not isinstance(value, dict):
        raise TypeError("positions are not an object")
    return {str(key): _position(item) for key, item in value.items()}


def _wire_positions(positions: Mapping[str, Position]) -> dict[str, object]:
    return {key: positions[key].wire() for key in sorted(positions)}


def _position(value: object) -> Position:
    if not isinstance(value, list) or len(value) != 2 or type(value[1]) is not int:
        raise TypeError("position is not [time, id]")
    updated_at = parse_timestamp(value[0])
    if updated_at is None:
        raise ValueError("empty position time")
    return Position(updated_at, value[1])


def position_of(record: TicketRecord) -> Position | None:
    if record.updated_at is None or not record.ticket_id.isdigit():
        return None
    return Position(record.updated_at, int(record.ticket_id))


def wire_time(moment: datetime) -> str:
    # Always UTC with an explicit "Z": a Rails server reads an offset-less time in its own
    # zone (Bangkok), and a "+00:00" would need the "+" escaped in a query string.
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
