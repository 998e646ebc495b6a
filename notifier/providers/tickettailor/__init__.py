"""Ticket Tailor: adapter (``adapter``), wire parsing (``parse``), cursor (``cursor``) and
the request budget its sweeps keep to (``budget``)."""

from __future__ import annotations

from notifier.providers.tickettailor.adapter import (
    DEFAULT_BASE_URL,
    MAX_PAGES_PER_STEP,
    TicketTailorProvider,
)
from notifier.providers.tickettailor.budget import RequestShare, sweep_interval, sweep_latency
from notifier.providers.tickettailor.cursor import CursorState, decode_cursor, encode_cursor
from notifier.providers.tickettailor.events import EventWindow, parse_events
from notifier.providers.tickettailor.parse import (
    PROVIDER,
    CheckIn,
    OrderState,
    apply_order,
    parse_check_ins,
    parse_issued_ticket,
    parse_issued_tickets,
    parse_order,
    parse_orders,
    rate_limit_pause,
    void_status,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_PAGES_PER_STEP",
    "PROVIDER",
    "CheckIn",
    "CursorState",
    "EventWindow",
    "OrderState",
    "RequestShare",
    "TicketTailorProvider",
    "apply_order",
    "decode_cursor",
    "encode_cursor",
    "parse_check_ins",
    "parse_events",
    "parse_issued_ticket",
    "parse_issued_tickets",
    "parse_order",
    "parse_orders",
    "rate_limit_pause",
    "sweep_interval",
    "sweep_latency",
    "void_status",
]
