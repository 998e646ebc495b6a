"""A fake of Nuweb's Admin API (docs/design.md §5): ``records`` (wire shapes), ``store``
(data and reads), ``simulator`` (the control API), ``app`` (HTTP)."""

from notifier.dev.simulators.faults import Fault, FaultQueue
from notifier.dev.simulators.nuweb.app import build_app, serve
from notifier.dev.simulators.nuweb.records import (
    CACHED_PATHS,
    ENTRY,
    EVENT_TICKETS,
    EVENTS,
    ORDER_ITEMS,
    SALE_ITEMS,
    SPEC_LINK_ORIGIN,
    SeenRequest,
)
from notifier.dev.simulators.nuweb.simulator import NuwebSimulator

__all__ = [
    "CACHED_PATHS",
    "ENTRY",
    "EVENTS",
    "EVENT_TICKETS",
    "ORDER_ITEMS",
    "SALE_ITEMS",
    "SPEC_LINK_ORIGIN",
    "Fault",
    "FaultQueue",
    "NuwebSimulator",
    "SeenRequest",
    "build_app",
    "serve",
]
