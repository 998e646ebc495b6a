"""Eventpop: wire parsing and the cursor (pure), OAuth with stored rotating tokens, event
discovery, and the adapter, the only module that reads pages (docs/providers.md)."""

from notifier.providers.eventpop.adapter import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_PAGES,
    EventpopProvider,
    Scope,
)
from notifier.providers.eventpop.cursor import (
    DEEP_INTERVAL,
    CursorState,
    Position,
    decode_cursor,
    decode_state,
    encode_cursor,
    encode_state,
)
from notifier.providers.eventpop.discovery import DEFAULT_CLOSE_OUT, DISCOVERY_INTERVAL
from notifier.providers.eventpop.oauth import GrantBook
from notifier.providers.eventpop.wire import PROVIDER, parse_events, parse_page, parse_ticket

__all__ = [
    "DEEP_INTERVAL",
    "DEFAULT_BASE_URL",
    "DEFAULT_CLOSE_OUT",
    "DEFAULT_MAX_PAGES",
    "DISCOVERY_INTERVAL",
    "PROVIDER",
    "CursorState",
    "EventpopProvider",
    "GrantBook",
    "Position",
    "Scope",
    "decode_cursor",
    "decode_state",
    "encode_cursor",
    "encode_state",
    "parse_events",
    "parse_page",
    "parse_ticket",
]
