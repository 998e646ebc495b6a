"""The webhooks the Nuweb simulator sends when doors scan and orders are refunded.

Payload shapes follow Nuweb's webhook reference (webhook OpenAPI, "Attendee Check In",
"Attendee Check Out" with ``visitDuration``, "Order Refunded"): a ``scans`` list of
company, event, zone, customer, item and ``scannedAt``; a refund mirrors the order
completed webhook (company, order, customer, tickets). Only the fields that identify the
change are filled; receivers treat a webhook as a trigger, not as data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from notifier.dev.simulators.nuweb.records import barcode, customer_id_of

if TYPE_CHECKING:
    from notifier.dev.simulators.nuweb.store import NuwebStore


def scan_payload(store: NuwebStore, ticket_id: int, *, stamp: str, zone: int) -> dict[str, Any]:
    """``{"scans": [...]}`` for one scan of ``ticket_id`` (check in or check out)."""
    entry = store._entries[ticket_id]
    event = store._events[entry.event_id]
    return {
        "scans": [
            {
                "company": {"id": event.company},
                "event": {"id": entry.event_id, "name": event.name},
                "zone": {"id": zone},
                "customer": {
                    "id": customer_id_of(ticket_id),
                    "name": entry.stable.get("customerName"),
                    "email": entry.stable.get("customerEmail"),
                },
                "item": {
                    "id": ticket_id,
                    "saleItemId": entry.type_id,
                    "barcode": barcode(ticket_id),
                },
                "scannedAt": stamp,
            }
        ]
    }


def refund_payload(store: NuwebStore, ticket_id: int) -> dict[str, Any]:
    """The order refunded webhook for the order of ``ticket_id``."""
    item = store._order_items[ticket_id]
    event = store._events[item.event_id]
    return {
        "company": {"id": event.company},
        "order": {"id": item.order_id, "status": "refunded"},
        "customer": {"id": item.customer_id},
        "tickets": [
            {"id": ticket_id, "saleItemId": item.sale_item_id, "barcode": barcode(ticket_id)}
        ],
    }
