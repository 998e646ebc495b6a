"""Nuweb: check-ins from ``GET /v1/entry/tickets``, cancellations, resales and named
holders from ``GET /v1/order-items``, inventory from ``/v1/event-tickets`` (or
``/v1/sale-items``), the followed events from ``GET /v1/events``.

Modules by job: ``wire`` and ``orders`` parse (pure), ``events`` chooses the events to
follow (pure), ``cursor`` keeps positions and schedules (pure), ``streams`` keeps each
stream's back-off, ``pacing`` follows Nuweb's rate headers, ``reads`` / ``collect`` /
``step`` / ``adapter`` do the reading (the only I/O).
"""

from notifier.providers.nuweb.adapter import DEFAULT_BASE_URL, PAGES_PER_STEP, NuwebProvider
from notifier.providers.nuweb.collect import INVENTORY_PATHS
from notifier.providers.nuweb.cursor import (
    DEEP_INTERVAL,
    EVENTS_INTERVAL,
    INVENTORY_INTERVAL,
    ORDER_ITEMS_INTERVAL,
    ORDER_ITEMS_OVERLAP,
    RECONCILE_INTERVAL,
    NuwebCursor,
    OrderItemsWindow,
    Resume,
    decode_cursor,
    deep_read_due,
    encode_cursor,
    events_due,
    inventory_due,
    order_items_due,
    order_items_position,
    order_items_window,
    sweep_due,
)
from notifier.providers.nuweb.events import CLOSE_OUT, EventSpan
from notifier.providers.nuweb.pacing import RETRY_POLICY, RatePacer
from notifier.providers.nuweb.reads import link_target
from notifier.providers.nuweb.step import InventoryEndpoint
from notifier.providers.nuweb.wire import (
    PROVIDER,
    EntryPage,
    InventoryPage,
    parse_entry_page,
    parse_entry_ticket,
    parse_inventory_page,
)
from notifier.timeparse import format_nuweb_time

__all__ = [
    "CLOSE_OUT",
    "DEEP_INTERVAL",
    "DEFAULT_BASE_URL",
    "EVENTS_INTERVAL",
    "INVENTORY_INTERVAL",
    "INVENTORY_PATHS",
    "ORDER_ITEMS_INTERVAL",
    "ORDER_ITEMS_OVERLAP",
    "PAGES_PER_STEP",
    "PROVIDER",
    "RECONCILE_INTERVAL",
    "RETRY_POLICY",
    "EntryPage",
    "EventSpan",
    "InventoryEndpoint",
    "InventoryPage",
    "NuwebCursor",
    "NuwebProvider",
    "OrderItemsWindow",
    "RatePacer",
    "Resume",
    "decode_cursor",
    "deep_read_due",
    "encode_cursor",
    "events_due",
    "format_nuweb_time",
    "inventory_due",
    "link_target",
    "order_items_due",
    "order_items_position",
    "order_items_window",
    "parse_entry_page",
    "parse_entry_ticket",
    "parse_inventory_page",
    "sweep_due",
]
