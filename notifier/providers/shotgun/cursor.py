"""Shotgun's opaque cursor (pure): one ``after`` position per stream, in the API's sort
order (``ticket_updated_at``, ``ticket_id``), and the events the adapter watches
(``events``), under one JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from notifier.errors import FatalProviderError
from notifier.model import TicketRecord
from notifier.providers.shotgun.events import EventWatch, decode_watches, encode_watches
from notifier.timeparse import format_shotgun_time, parse_timestamp

__all__ = [
    "Position",
    "after_param",
    "decode_cursor",
    "decode_state",
    "encode_cursor",
    "position_of",
]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a stream stands: the last ticket read, in the provider's sort order."""

    updated_at: datetime
    ticket_id: int

    @classmethod
    def parse(cls, text: str) -> Position:
        stamp, _, ticket_id = text.rpartition("_")
        updated_at = parse_timestamp(stamp)
        if updated_at is None:
            raise ValueError("empty position")
        return cls(updated_at, int(ticket_id))

    def text(self) -> str:
        return format_shotgun_time(self.updated_at) + "_" + str(self.ticket_id)


_WATCHES = "~events"  # the cursor key of the watched events; stream keys never start with ~


def decode_cursor(cursor: str | None) -> dict[str, Position]:
    """The per-stream positions of an opaque cursor; ``FatalProviderError`` if corrupt."""
    return decode_state(cursor)[0]


def decode_state(cursor: str | None) -> tuple[dict[str, Position], dict[str, EventWatch]]:
    """The per-stream positions and watched events of an opaque cursor (``FatalProviderError``
    if corrupt); a cursor written before events were watched has none."""
    if cursor is None:
        return {}, {}
    try:
        loaded = orjson.loads(cursor)
        if not isinstance(loaded, dict):
            raise TypeError("cursor is not an object")
        watches = decode_watches(loaded.pop(_WATCHES, None))
        return {str(key): Position.parse(value) for key, value in loaded.items()}, watches
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise FatalProviderError("corrupt Shotgun cursor: " + type(exc).__name__) from exc


def encode_cursor(
    positions: Mapping[str, Position], watches: Mapping[str, EventWatch] | None = None
) -> str | None:
    """Opaque cursor text, ``{stream_key: "YYYY-MM-DD HH:MM:SS.ffffff_<id>"}`` and the
    watched events under ``~events``; sorted keys."""
    if not positions and not watches:
        return None
    texts: dict[str, object] = {key: positions[key].text() for key in sorted(positions)}
    if watches:
        texts[_WATCHES] = encode_watches(watches)
    return orjson.dumps(texts).decode()


def position_of(record: TicketRecord) -> Position | None:
    if record.updated_at is None or not record.ticket_id.isdigit():
        return None
    return Position(record.updated_at, int(record.ticket_id))


def after_param(position: Position, lookback: timedelta) -> str:
    if not lookback:
        return position.text()
    # Re-read a window before the position; id 0 takes in every ticket at that instant.
    return Position(position.updated_at - lookback, 0).text()
