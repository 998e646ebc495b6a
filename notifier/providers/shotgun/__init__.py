"""Shotgun: wire parsing and the cursor (pure), the watched events and their cancellation
probes (pure), and the adapter, the only module that reads pages (docs/providers.md)."""

from notifier.providers.shotgun.adapter import DEFAULT_BASE_URL, ShotgunProvider
from notifier.providers.shotgun.cursor import (
    Position,
    decode_cursor,
    decode_state,
    encode_cursor,
)
from notifier.providers.shotgun.events import CLOSE_OUT, PROBE_INTERVAL, EventWatch
from notifier.providers.shotgun.wire import (
    PROVIDER,
    TRACKED_WIRE_FIELDS,
    parse_page,
    parse_ticket,
    ticket_parser,
    wire_page,
)

__all__ = [
    "CLOSE_OUT",
    "DEFAULT_BASE_URL",
    "PROBE_INTERVAL",
    "PROVIDER",
    "TRACKED_WIRE_FIELDS",
    "EventWatch",
    "Position",
    "ShotgunProvider",
    "decode_cursor",
    "decode_state",
    "encode_cursor",
    "parse_page",
    "parse_ticket",
    "ticket_parser",
    "wire_page",
]
