"""The Nuweb simulator's records and their wire shapes (admin OpenAPI schemas).

Bodies validate against the official OpenAPI schemas, which declare plain ``string``
fields: a value the real API would send as ``null`` is omitted. Where the order-items
schema contradicts its own example (``data`` a list, ``replacedOrderItem`` one object),
the example's shape is served.

Every entry ticket is an order item with the same id: the spec's examples pair entry
ticket 1 and order item 1 on id, barcode (97WG2VGJK2), customer (1) and order (RO3PMNGE1N).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from notifier.timeparse import format_nuweb_time

TICK = timedelta(microseconds=1)
# Page maxima: admin OpenAPI, the ``limit`` parameter of each endpoint ("The maximum (and
# default) is ..."); more is answered 422 (Assumption: the spec names no status for it).
ENTRY_MAX = 100
INVENTORY_MAX = 25
ORDER_ITEMS_MAX = 100
EVENTS_MAX = 100
EVENT_TICKETS, SALE_ITEMS, ENTRY = "/v1/event-tickets", "/v1/sale-items", "/v1/entry/tickets"
ORDER_ITEMS, EVENTS = "/v1/order-items", "/v1/events"
# Admin OpenAPI changelog, 9 March 2023: "a temporary cache in front of GET /orders, GET
# /activated-events, ..., GET /events, GET /event, GET /future-events, GET /sale-items,
# ... Identical requests sent within a 60-second timeframe will be retrieved from cache."
# Of what this simulator serves, /v1/events and /v1/sale-items are on that list.
CACHED_PATHS = (SALE_ITEMS, EVENTS)
# The spec's examples give every link on another scheme and host than the API's
# (``http://api.willms.com/v1/event-tickets?page=5``, admin OpenAPI examples of
# GET /v1/event-tickets, /v1/events, /v1/order-items): links are served that way.
SPEC_LINK_ORIGIN = "http://api.willms.com"


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert headers and the query)."""

    path: str
    query: dict[str, str]
    authorization: str | None
    company_header: str | None


@dataclass(slots=True)
class SaleItem:
    """A ticket type: GET /v1/event-tickets ("Retrieve Event Tickets": ``tickets``) and
    GET /v1/sale-items (``saleItems``)."""

    event_id: int
    # What ``lastUpdated`` compares: "associated database records (sale items, inventory
    # item and pricing)" (admin OpenAPI, GET /v1/sale-items), so a sale (stock) counts.
    changed_at: datetime
    wire: dict[str, Any]


@dataclass(slots=True)
class EntryTicket:
    """An entry ticket (admin OpenAPI, GET /v1/entry/tickets: ``const``, ``stable``,
    ``variable``, and ``zoneData`` "when ``includeZones`` is true")."""

    event_id: int
    type_id: int
    # The "last modified at time": "the latest date/time from when the customer details
    # were last edited, when the ticket was last updated, ..." (``startTime``).
    modified_at: datetime
    const: dict[str, Any]
    stable: dict[str, Any]
    variable: dict[str, Any]
    scans: list[dict[str, Any]] = field(default_factory=list)

    def wire(self, *, zones: bool, ticket_id: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "const": self.const,
            "id": ticket_id,
            "itemType": "ticket",
            "stable": self.stable,
            "variable": self.variable,
        }
        if zones:
            item["zoneData"] = {"accessToZones": [{"id": 1}], "scans": list(self.scans)}
        return item


@dataclass(slots=True)
class OrderItemRow:
    """The order item behind an entry ticket (same id)."""

    event_id: int
    order_id: int
    sale_item_id: int
    customer_id: int
    name: str
    price: int
    currency: str
    created_at: datetime
    # What ``lastUpdated`` sees: "database records (order items, orders and data capture
    # responses) that have been updated on or after" it (GET /v1/order-items).
    changed_at: datetime
    refunded: int = 0
    # "The named_holder override set at the order item level" (admin OpenAPI,
    # GET /v1/order-items; changelog of 29 August 2024); omitted when not set.
    named_holder: str | None = None
    cancelled_at: datetime | None = None
    deleted_at: datetime | None = None
    replaced: dict[str, Any] | None = None

    @property
    def closed(self) -> bool:
        """Cancelled, refunded or replaced: no longer valid for entry."""
        return self.cancelled_at is not None or self.deleted_at is not None

    def wire(self, item_id: int) -> dict[str, Any]:
        stamp = format_nuweb_time(self.changed_at)
        attributes: dict[str, Any] = {
            "customerId": self.customer_id,
            "eventId": self.event_id,
            "barcode": barcode(item_id),
            "saleName": self.name,
            "name": self.name,
            "type": "ticket",
            "typeName": "Ticket",
            "saleItemId": self.sale_item_id,
            "basePrice": self.price,
            "currencyId": 1,
            "currencySymbol": symbol(self.currency),
            "currencyCode": self.currency,
            "processingFee": 0,
            "resellerFee": 0,
            "hideProcessingFee": False,
            "hideResellerFee": False,
            "discount": 0,
            "total": self.price,
            "refunded": self.refunded,
            "protection_status": "unprotected",
            "deferredPayment": False,
            "requiresApproval": False,
            "replacedOrderItem": self.replaced,
            "createdAt": format_nuweb_time(self.created_at),
            "updatedAt": stamp,
        }
        if self.named_holder is not None:
            attributes["namedHolder"] = self.named_holder
        for name, moment in (("cancelledAt", self.cancelled_at), ("deletedAt", self.deleted_at)):
            if moment is not None:
                attributes[name] = format_nuweb_time(moment)
        # The spec's example envelope: type, id, attributes, meta.lastUpdated, relationships.
        return {
            "type": "orderItems",
            "id": item_id,
            "attributes": attributes,
            "meta": {"lastUpdated": stamp},
            "relationships": self._relationships(),
        }

    def _relationships(self) -> dict[str, Any]:
        related = {
            "customers": self.customer_id,
            "events": self.event_id,
            "orders": self.order_id,
            "saleItems": self.sale_item_id,
        }
        return {kind: {"data": {"type": kind, "id": id_}} for kind, id_ in related.items()}


@dataclass(frozen=True, slots=True)
class OrderItemQuery:
    """The filters of one ``GET /v1/order-items``."""

    event_ids: frozenset[int] | None
    since: datetime | None
    trashed: bool
    types: frozenset[str] | None
    is_resale: bool | None
    order_id: int | None
    customer_id: int | None

    def admits(self, item: OrderItemRow) -> bool:
        return (
            (self.event_ids is None or item.event_id in self.event_ids)
            and (self.since is None or item.changed_at >= self.since)
            and (self.trashed or item.deleted_at is None)
            and (self.types is None or "ticket" in self.types)
            and (self.is_resale is None or self.is_resale == is_resale(item))
            and (self.order_id is None or item.order_id == self.order_id)
            and (self.customer_id is None or item.customer_id == self.customer_id)
        )


def is_resale(item: OrderItemRow) -> bool:
    # ``isResale`` filter and ``replacedOrderItem.type`` "resale" (GET /v1/order-items).
    return item.replaced is not None and item.replaced.get("type") == "resale"


@dataclass(slots=True)
class EventRow:
    """One event of a company, as GET /v1/events lists it (admin OpenAPI, "Retrieve
    Events": id, name, companyId, start, end, isCancelled, deletedAt, timestamps)."""

    company: int
    name: str
    start: datetime
    end: datetime
    created_at: datetime
    updated_at: datetime
    cancelled: bool = False
    deleted_at: datetime | None = None

    def wire(self, event_id: int) -> dict[str, Any]:
        stamp = format_nuweb_time(self.updated_at)
        event: dict[str, Any] = {
            "id": event_id,
            "name": self.name,
            "companyId": self.company,
            "scheduleId": None,
            "start": format_nuweb_time(self.start),
            "end": format_nuweb_time(self.end),
            "isCancelled": self.cancelled,
            "isPublished": True,
            "timezone": "Europe/London",
            "createdAt": format_nuweb_time(self.created_at),
            "updatedAt": stamp,
            "meta": {"lastUpdated": stamp},
        }
        if self.deleted_at is not None:  # the schema's ``deletedAt`` is a plain string
            event["deletedAt"] = format_nuweb_time(self.deleted_at)
        return event


def sale_item_wire(
    item_id: int,
    event_id: int,
    name: str,
    price: int,
    stock: int,
    currency: str,
    now: datetime,
) -> dict[str, Any]:
    stamp = format_nuweb_time(now)
    return {
        "id": item_id,
        "itemId": 100 + item_id,
        "eventId": event_id,
        "type": "ticket",
        "name": name,
        "description": name + " admission",
        "basePrice": price,
        "totalPrice": price,
        "resellerFee": 0,
        "processingFee": 0,
        "totalStock": stock,
        "sold": 0,
        "reserved": 0,
        "minOrderQuantity": 0,
        "maxOrderQuantity": 99,
        "multiplesOf": 0,
        "hideProcessingFee": False,
        "hideResellerFee": False,
        "currencyId": 1,
        "currencySymbol": symbol(currency),
        "currencyCode": currency,
        "hideFromBoxOffice": False,
        "hideFromShop": False,
        "hideWhenOffSale": False,
        "hideWhenOutOfStock": False,
        "onSaleFrom": format_nuweb_time(now - timedelta(days=7)),
        "onSaleUntil": format_nuweb_time(now + timedelta(days=30)),
        "currentStock": stock,
        "onSale": True,
        "seatingPlanAreas": [],
        "createdAt": stamp,
        "updatedAt": stamp,
    }


def barcode(ticket_id: int) -> str:
    return "NW" + format(ticket_id * 7919, "08X")


def customer_id_of(ticket_id: int) -> int:
    return 50_000 + ticket_id


def symbol(currency: str) -> str:
    return {"GBP": "£", "EUR": "€"}.get(currency, currency)


def const(ticket_id: int, order: int, type_id: int, type_name: str) -> dict[str, Any]:
    return {
        "barcode": barcode(ticket_id),
        "customerId": customer_id_of(ticket_id),
        "transactionId": "RO" + format(order * 104_729, "08X"),
        "type": type_name,
        "typeDuringSale": type_name,
        "typeId": type_id,
    }


def stable(name: str, email: str, price: int) -> dict[str, Any]:
    return {"customerName": name, "customerEmail": email, "dataCaptureAnswers": [], "price": price}


def variable(status: str) -> dict[str, Any]:
    return {"status": status, "ticketsInOrderCount": 1, "ticketsInOrderScanned": 0}


def scan_wire(direction: str, stamp: str, zone: int) -> dict[str, Any]:
    # ``zoneData.scans[]``: zoneId, scan "in"/"out", scannedOn, uuid (GET /v1/entry/tickets).
    return {"zoneId": zone, "scan": direction, "scannedOn": stamp, "uuid": str(uuid.uuid4())}
