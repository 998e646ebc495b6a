"""A fake of Nuweb's Admin API: inventory, entry tickets and order items (docs/design.md §5).

Serves ``GET /v1/event-tickets`` (the seed, deprecated), ``GET /v1/sale-items`` (same data,
``saleItems`` instead of ``tickets``), ``GET /v1/entry/tickets`` and ``GET /v1/order-items``,
with the spec's parameters and envelopes. Bodies validate against the official OpenAPI
schemas, which declare plain ``string`` fields: a value the real API would send as ``null``
is omitted. Where the order-items schema contradicts its own example (``data`` a list,
``replacedOrderItem`` one object), the example's shape is served.

Every entry ticket is an order item with the same id (the spec's examples pair them on
id, barcode, customer and order). ``cancel``, ``resell`` and ``refund`` change both. What
the entry list shows of a cancellation or a resale is not documented; it is modelled on
the manual ("cancelled items are removed from the order") and the spec's entry statuses
(sold/scanned/refunded/locked, none for them):
- cancel (no refund): the item gets ``cancelledAt`` and is removed from its order
  (soft-deleted: ``deletedAt``, listed only with ``withTrashed=true``); its unit goes back
  on sale; the entry ticket is modified now (its last update), its status unchanged.
- resell: the seller's item is removed from its order; the buyer's new item (new order,
  new entry ticket, ``sold``) carries ``replacedOrderItem {type: "resale"}``; the old entry
  ticket is modified now, its status unchanged. Stock does not move.
- refund: the entry status ``refunded``; the item's ``refunded`` amount, ``cancelledAt`` (a
  refund cancels the item) and its removal from the order; the unit back on sale.
A cancelled, refunded or replaced ticket is refused at the gate: scans and refunds do
nothing.

Faithful quirks:
- Bearer token plus ``X-NU-COMPANY-ID`` (missing: the token's first company, Nuweb's
  "last selected company"); 401 / 403 / 422 with ``{"message": ...}`` bodies.
- A rolling per-company limit (default 60/min) with ``X-Remaining-Requests`` and
  ``X-Available-In-Seconds`` on every answer, and a 429 without ``Retry-After``.
- A 60 s cache of identical GETs on ``/v1/sale-items`` (switchable per path).
- Inventory's ``lastUpdated`` filters on any associated change (a sale changes the stock,
  not the sale item's ``updatedAt``); ``withTrashed=true`` is needed to see deleted types.
- Entry tickets: ``startTime`` is "modified at or after"; ``listEndTime`` is the time of
  the answer; ``limit`` ≤ 100 and inventory ``limit`` ≤ 25, more is a 422.
- Order items: ``lastUpdated`` is "on or after"; ``eventIds`` and ``type`` take a comma
  separated list; ``isResale``, ``orderId``, ``customerId`` filter; ``limit`` ≤ 100;
  ``offset`` takes precedence over ``page``; ordered by id.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from notifier.providers.nuweb import format_nuweb_time
from notifier.simulators.faults import Fault, FaultQueue, fault_response
from notifier.simulators.serving import start_app
from notifier.timeparse import parse_timestamp

__all__ = [
    "Fault",
    "FaultQueue",
    "NuwebSimulator",
    "SeenRequest",
    "build_app",
    "serve",
]

Clock = Callable[[], datetime]
_TICK = timedelta(microseconds=1)
ENTRY_MAX = 100
INVENTORY_MAX = 25
ORDER_ITEMS_MAX = 100
EVENT_TICKETS, SALE_ITEMS, ENTRY = "/v1/event-tickets", "/v1/sale-items", "/v1/entry/tickets"
ORDER_ITEMS = "/v1/order-items"


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert headers and the query)."""

    path: str
    query: dict[str, str]
    authorization: str | None
    company_header: str | None


@dataclass(slots=True)
class _SaleItem:
    event_id: int
    changed_at: datetime  # newest change of the item, its stock or its price
    wire: dict[str, Any]


@dataclass(slots=True)
class _Entry:
    event_id: int
    type_id: int
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
class _OrderItem:
    """The order item behind an entry ticket (same id)."""

    event_id: int
    order_id: int
    sale_item_id: int
    customer_id: int
    name: str
    price: int
    currency: str
    created_at: datetime
    changed_at: datetime  # the item, its order or its data capture: what lastUpdated sees
    refunded: int = 0
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
            "barcode": _barcode(item_id),
            "saleName": self.name,
            "name": self.name,
            "type": "ticket",
            "typeName": "Ticket",
            "saleItemId": self.sale_item_id,
            "basePrice": self.price,
            "currencyId": 1,
            "currencySymbol": _symbol(self.currency),
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
        for name, moment in (("cancelledAt", self.cancelled_at), ("deletedAt", self.deleted_at)):
            if moment is not None:
                attributes[name] = format_nuweb_time(moment)
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
class _OrderItemQuery:
    """The filters of one ``GET /v1/order-items``."""

    event_ids: frozenset[int] | None
    since: datetime | None
    trashed: bool
    types: frozenset[str] | None
    is_resale: bool | None
    order_id: int | None
    customer_id: int | None

    def admits(self, item: _OrderItem) -> bool:
        return (
            (self.event_ids is None or item.event_id in self.event_ids)
            and (self.since is None or item.changed_at >= self.since)
            and (self.trashed or item.deleted_at is None)
            and (self.types is None or "ticket" in self.types)
            and (self.is_resale is None or self.is_resale == _is_resale(item))
            and (self.order_id is None or item.order_id == self.order_id)
            and (self.customer_id is None or item.customer_id == self.customer_id)
        )


def _is_resale(item: _OrderItem) -> bool:
    return item.replaced is not None and item.replaced.get("type") == "resale"


class _Limiter:
    """A rolling window per company: each answered request counts for ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[int, deque[float]] = {}

    def hit(self, company: int, now: float) -> tuple[bool, int, int]:
        """(allowed, remaining, seconds until the oldest counted request expires)."""
        hits = self._hits.setdefault(company, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        available = math.ceil(hits[0] + self.window - now) if hits else 0
        return allowed, self.limit - len(hits), max(available, 0)


class NuwebSimulator:
    """The in-memory Nuweb: companies, events, sale items, entry tickets, request log."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int = 60,
        window_seconds: float = 60.0,
        cached_paths: Iterable[str] = (SALE_ITEMS,),
        cache_seconds: float = 60.0,
        entry_page_size: int = ENTRY_MAX,
        inventory_page_size: int = INVENTORY_MAX,
        order_items_page_size: int = ORDER_ITEMS_MAX,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.limiter = _Limiter(rate_limit, window_seconds)
        self.cached_paths = frozenset(cached_paths)
        self.cache_seconds = cache_seconds
        self.entry_page_size = entry_page_size
        self.inventory_page_size = inventory_page_size
        self.order_items_page_size = order_items_page_size
        self.faults = FaultQueue()
        self.requests_served = 0
        self.rate_limited = 0
        self.seen: deque[SeenRequest] = deque(maxlen=10_000)
        self.next_origin: str | None = None
        self._tokens: dict[str, list[int]] = {}
        self._events: dict[int, int] = {}
        self._items: dict[int, _SaleItem] = {}
        self._entries: dict[int, _Entry] = {}
        self._order_items: dict[int, _OrderItem] = {}
        self._cache: dict[tuple[int, str], tuple[datetime, bytes]] = {}
        self._last_tick: datetime | None = None
        self._ids = {"event": 5, "item": 1, "entry": 1, "order": 1000}

    # -- control API: companies, events, ticket types

    def add_company(self, company_id: int, token: str) -> None:
        self._tokens.setdefault(token, []).append(company_id)

    def add_event(self, company_id: int, event_id: int | None = None) -> int:
        event_id = event_id if event_id is not None else self._new_id("event")
        self._events[event_id] = company_id
        return event_id

    def add_ticket_type(
        self,
        event_id: int,
        name: str = "General Admission",
        *,
        price_minor: int = 2500,
        total_stock: int = 500,
        currency: str = "GBP",
        on_sale: bool = True,
    ) -> int:
        """A sale item of type ticket on ``event_id``; returns its id."""
        now = self._tick()
        item_id = self._new_id("item")
        wire = _sale_item_wire(item_id, event_id, name, price_minor, total_stock, currency, now)
        wire["onSale"] = on_sale
        self._items[item_id] = _SaleItem(event_id, now, wire)
        return item_id

    def set_on_sale(
        self,
        ticket_type_id: int,
        on_sale: bool,
        *,
        sale_from: datetime | None = None,
        sale_until: datetime | None = None,
    ) -> None:
        fields: dict[str, Any] = {"onSale": on_sale}
        if sale_from is not None:
            fields["onSaleFrom"] = format_nuweb_time(sale_from)
        if sale_until is not None:
            fields["onSaleUntil"] = format_nuweb_time(sale_until)
        self._edit_item(ticket_type_id, own=True, **fields)

    def set_price(self, ticket_type_id: int, price_minor: int) -> None:
        self._edit_item(ticket_type_id, own=True, basePrice=price_minor, totalPrice=price_minor)

    def delete_ticket_type(self, ticket_type_id: int) -> None:
        self._edit_item(ticket_type_id, own=True, deletedAt=format_nuweb_time(self._tick()))

    def sell_out(self, ticket_type_id: int) -> None:
        """Every remaining unit sold elsewhere (box office): current stock 0."""
        wire = self._items[ticket_type_id].wire
        self._edit_item(ticket_type_id, sold=wire["totalStock"] - wire["reserved"], currentStock=0)

    def ticket_type(self, ticket_type_id: int) -> dict[str, Any]:
        return dict(self._items[ticket_type_id].wire)

    # -- control API: entry tickets

    def sell(
        self,
        ticket_type_id: int,
        customer_name: str = "Walton Buckridge",
        email: str = "walton.buckridge@example.com",
    ) -> int:
        """Sell one ticket of the type (stock moves); returns the entry ticket id."""
        wire = self._items[ticket_type_id].wire
        self._edit_item(
            ticket_type_id, sold=wire["sold"] + 1, currentStock=wire["currentStock"] - 1
        )
        return self._issue(ticket_type_id, customer_name, email)

    def _issue(
        self,
        ticket_type_id: int,
        customer_name: str,
        email: str,
        replaced: dict[str, Any] | None = None,
    ) -> int:
        """A new order with one item and its entry ticket (same id); returns that id."""
        sale_item = self._items[ticket_type_id]
        wire, now = sale_item.wire, self._tick()
        ticket_id, order_id = self._new_id("entry"), self._new_id("order")
        self._entries[ticket_id] = _Entry(
            event_id=sale_item.event_id,
            type_id=ticket_type_id,
            modified_at=now,
            const=_const(ticket_id, order_id, ticket_type_id, wire["name"]),
            stable=_stable(customer_name, email, wire["basePrice"]),
            variable=_variable("sold"),
        )
        self._order_items[ticket_id] = _OrderItem(
            event_id=sale_item.event_id,
            order_id=order_id,
            sale_item_id=ticket_type_id,
            customer_id=_customer_id(ticket_id),
            name=wire["name"],
            price=wire["basePrice"],
            currency=wire["currencyCode"],
            created_at=now,
            changed_at=now,
            replaced=replaced,
        )
        return ticket_id

    def cancel(self, ticket_id: int) -> None:
        """Cancel the ticket without a refund: its unit goes back on sale (no-op if closed)."""
        item = self._order_items[ticket_id]
        if item.closed:
            return
        self._restock(ticket_id)
        now = self._tick()
        item.cancelled_at = item.deleted_at = item.changed_at = now
        self._entries[ticket_id].modified_at = now

    def resell(
        self,
        ticket_id: int,
        customer_name: str = "Rhea Okafor",
        email: str = "rhea.okafor@example.com",
    ) -> int:
        """Resell the ticket to a buyer through Nuweb's resale; returns the buyer's ticket id.

        No-op (returns ``ticket_id``) when the ticket is already cancelled or replaced.
        """
        item = self._order_items[ticket_id]
        if item.closed:
            return ticket_id
        now = self._tick()
        item.deleted_at = item.changed_at = now
        self._entries[ticket_id].modified_at = now
        link = {"type": "resale", "orderItemId": ticket_id, "orderId": item.order_id}
        return self._issue(item.sale_item_id, customer_name, email, replaced=link)

    def edit_order(self, ticket_id: int) -> None:
        """Staff edit the ticket's order (a note, a data-capture answer): its items count as
        updated for ``lastUpdated``, whatever became of them."""
        order_id = self._order_items[ticket_id].order_id
        now = self._tick()
        for item in self._order_items.values():
            if item.order_id == order_id:
                item.changed_at = now

    def order_item(self, ticket_id: int) -> dict[str, Any]:
        """The order item behind an entry ticket, as ``GET /v1/order-items`` shows it."""
        return self._order_items[ticket_id].wire(ticket_id)

    def scan_in(self, ticket_id: int, at: datetime | None = None, zone: int = 1) -> None:
        """Admit the ticket (status scanned) with an ``in`` scan; ``at`` back-dates it."""
        if self._order_items[ticket_id].closed:
            return  # refused at the gate
        entry, when = self._entries[ticket_id], self._tick()
        stamp = format_nuweb_time(at or when)
        if entry.variable["status"] == "sold":
            entry.variable.update(status="scanned", scannedOn=stamp, scannedBy="Gate 1")
        entry.scans.append(_scan("in", stamp, zone))
        entry.modified_at = when

    def scan_out(self, ticket_id: int, at: datetime | None = None, zone: int = 1) -> None:
        if self._order_items[ticket_id].closed:
            return
        entry, when = self._entries[ticket_id], self._tick()
        entry.scans.append(_scan("out", format_nuweb_time(at or when), zone))
        entry.modified_at = when

    def unscan(self, ticket_id: int) -> None:
        """Undo the admission (whether Nuweb can is unconfirmed): back to sold."""
        entry = self._entries[ticket_id]
        entry.variable = _variable("sold")
        entry.modified_at = self._tick()

    def refund(self, ticket_id: int) -> None:
        """Refund the ticket in full; its unit goes back into stock (no-op if closed)."""
        item = self._order_items[ticket_id]
        if item.closed:
            return
        self._restock(ticket_id)
        self._set_status(ticket_id, "refunded")
        item.refunded = item.price
        item.cancelled_at = item.deleted_at = item.changed_at = self._tick()

    def lock(self, ticket_id: int) -> None:
        """The order is being modified: temporarily invalid for scanning."""
        self._set_status(ticket_id, "locked")

    def unlock(self, ticket_id: int) -> None:
        entry = self._entries[ticket_id]
        self._set_status(ticket_id, "scanned" if "scannedOn" in entry.variable else "sold")

    def transfer(self, ticket_id: int, customer_name: str, email: str) -> None:
        entry = self._entries[ticket_id]
        entry.stable.update(customerName=customer_name, customerEmail=email)
        entry.modified_at = self._tick()

    def entry_ticket(self, ticket_id: int) -> dict[str, Any]:
        return self._entries[ticket_id].wire(zones=True, ticket_id=ticket_id)

    def seed(self, company_id: int, token: str, n: int, *, event_id: int = 5) -> list[int]:
        """A company with one event, three ticket types and ``n`` tickets in mixed states."""
        self.add_company(company_id, token)
        self.add_event(company_id, event_id)
        types = [
            self.add_ticket_type(event_id, name, price_minor=price, total_stock=max(n, 1) * 2)
            for name, price in (("Early Bird", 1500), ("General Admission", 2500), ("VIP", 6000))
        ]
        tickets = [
            self.sell(types[k % 3], "Guest " + str(k), f"guest{k}@example.com") for k in range(n)
        ]
        for k, ticket_id in enumerate(tickets):
            if k % 3 == 0:
                self.scan_in(ticket_id)
            if k % 9 == 0:
                self.scan_out(ticket_id)
            if k % 17 == 5:
                self.refund(ticket_id)
        return tickets

    # -- reading (used by the HTTP handlers)

    def now(self) -> datetime:
        return self._clock()

    def list_end_time(self) -> datetime:
        # Strictly after every modification so far: a ticket changed later is "at or after".
        return self._tick()

    def company_for(self, token: str, header: str | None) -> int | web.Response:
        companies = self._tokens.get(token)
        if not companies:
            return _error(401, "Unauthenticated.")
        if header is None:
            return companies[0]  # the user's "last selected company"
        if not header.isdigit() or int(header) not in companies:
            return _error(403, "This action is unauthorized.")
        return int(header)

    def sale_items(
        self, company: int, event_id: int | None, since: datetime | None, trashed: bool
    ) -> list[dict[str, Any]]:
        rows = [
            item.wire
            for item in sorted(self._items.values(), key=lambda i: i.wire["id"])
            if self._events.get(item.event_id) == company
            and (event_id is None or item.event_id == event_id)
            and (since is None or item.changed_at > since)
            and (trashed or "deletedAt" not in item.wire)
        ]
        return [dict(row) for row in rows]

    def entries(
        self, company: int, event_id: int, since: datetime | None
    ) -> list[tuple[int, _Entry]]:
        rows = [
            (ticket_id, entry)
            for ticket_id, entry in self._entries.items()
            if entry.event_id == event_id
            and self._events.get(event_id) == company
            and (since is None or entry.modified_at >= since)
        ]
        return sorted(rows, key=lambda row: (row[1].modified_at, row[0]))

    def order_items(self, company: int, query: _OrderItemQuery) -> list[tuple[int, _OrderItem]]:
        return [
            (item_id, item)
            for item_id, item in sorted(self._order_items.items())
            if self._events.get(item.event_id) == company and query.admits(item)
        ]

    def has_event(self, event_id: int) -> bool:
        return event_id in self._events

    def cached(self, company: int, key: str) -> bytes | None:
        hit = self._cache.get((company, key))
        if hit is None or (self.now() - hit[0]).total_seconds() >= self.cache_seconds:
            return None
        return hit[1]

    def store(self, company: int, key: str, body: bytes) -> None:
        self._cache[(company, key)] = (self.now(), body)

    # -- internals

    def _edit_item(self, item_id: int, *, own: bool = False, **fields: Any) -> None:
        item, now = self._items[item_id], self._tick()
        item.wire.update(fields)
        item.changed_at = now
        if own:  # a change of the sale item itself, not only of its stock
            item.wire["updatedAt"] = format_nuweb_time(now)

    def _restock(self, ticket_id: int) -> None:
        type_id = self._entries[ticket_id].type_id
        wire = self._items[type_id].wire
        self._edit_item(type_id, sold=wire["sold"] - 1, currentStock=wire["currentStock"] + 1)

    def _set_status(self, ticket_id: int, status: str) -> None:
        entry = self._entries[ticket_id]
        entry.variable["status"] = status
        entry.modified_at = self._tick()

    def _tick(self) -> datetime:
        """Now, but strictly after the previous mutation so modification order is total."""
        now = self._clock()
        if self._last_tick is not None and now <= self._last_tick:
            now = self._last_tick + _TICK
        self._last_tick = now
        return now

    def _new_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind] - 1


def _sale_item_wire(
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
        "currencySymbol": _symbol(currency),
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


def _barcode(ticket_id: int) -> str:
    return "NW" + format(ticket_id * 7919, "08X")


def _customer_id(ticket_id: int) -> int:
    return 50_000 + ticket_id


def _symbol(currency: str) -> str:
    return {"GBP": "£", "EUR": "€"}.get(currency, currency)


def _const(ticket_id: int, order: int, type_id: int, type_name: str) -> dict[str, Any]:
    return {
        "barcode": _barcode(ticket_id),
        "customerId": _customer_id(ticket_id),
        "transactionId": "RO" + format(order * 104_729, "08X"),
        "type": type_name,
        "typeDuringSale": type_name,
        "typeId": type_id,
    }


def _stable(name: str, email: str, price: int) -> dict[str, Any]:
    return {"customerName": name, "customerEmail": email, "dataCaptureAnswers": [], "price": price}


def _variable(status: str) -> dict[str, Any]:
    return {"status": status, "ticketsInOrderCount": 1, "ticketsInOrderScanned": 0}


def _scan(direction: str, stamp: str, zone: int) -> dict[str, Any]:
    return {"zoneId": zone, "scan": direction, "scannedOn": stamp, "uuid": str(uuid.uuid4())}


# --------------------------------------------------------------------------- HTTP

_SIM_KEY: web.AppKey[NuwebSimulator] = web.AppKey("nuweb_simulator", NuwebSimulator)


def build_app(sim: NuwebSimulator) -> web.Application:
    """The aiohttp application serving the four endpoints from ``sim``."""
    app = web.Application()
    app[_SIM_KEY] = sim
    app.router.add_get(EVENT_TICKETS, _inventory_handler)
    app.router.add_get(SALE_ITEMS, _inventory_handler)
    app.router.add_get(ENTRY, _entry_handler)
    app.router.add_get(ORDER_ITEMS, _order_items_handler)
    return app


async def serve(sim: NuwebSimulator, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"message": message}),
        content_type="application/json",
        headers=headers or {},
    )


def _invalid(field_name: str, message: str) -> web.Response:
    body = {"message": "The given data was invalid.", "errors": {field_name: [message]}}
    return web.Response(status=422, body=orjson.dumps(body), content_type="application/json")


@dataclass(frozen=True, slots=True)
class _Admitted:
    sim: NuwebSimulator
    company: int
    rate_headers: dict[str, str]


async def _admit(request: web.Request, page: int) -> _Admitted | web.Response:
    """Log, faults, auth and the rate limit: who may be served, or the response that ends
    the request."""
    known = await _authenticate(request, page)
    if isinstance(known, web.Response):
        return known
    sim, company = known
    rate = _rate_headers(sim, company)
    if isinstance(rate, web.Response):
        return rate
    return _Admitted(sim, company, rate)


async def _authenticate(
    request: web.Request, page: int
) -> tuple[NuwebSimulator, int] | web.Response:
    sim = request.app[_SIM_KEY]
    sim.requests_served += 1
    header = request.headers.get("Authorization")
    company_header = request.headers.get("X-NU-COMPANY-ID")
    sim.seen.append(SeenRequest(request.path, dict(request.query), header, company_header))
    fault = sim.faults.take(page)
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    if header is None or not header.startswith("Bearer "):
        return _error(401, "Unauthenticated.")
    company = sim.company_for(header[len("Bearer ") :].strip(), company_header)
    if isinstance(company, web.Response):
        return company
    return sim, company


def _rate_headers(sim: NuwebSimulator, company: int) -> dict[str, str] | web.Response:
    now = sim.now().timestamp()
    allowed, remaining, available = sim.limiter.hit(company, now)
    headers = {"X-Remaining-Requests": str(remaining), "X-Available-In-Seconds": str(available)}
    if not allowed:
        sim.rate_limited += 1
        return _error(429, "Too Many Attempts.", headers)  # no Retry-After, as documented
    return headers


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    return int(text)  # ValueError: the handler answers 422


def _time_param(request: web.Request, name: str) -> datetime | None:
    return parse_timestamp(request.query.get(name) or None)


def _page_of(request: web.Request, size: int) -> int:
    try:
        offset = _int_param(request, "offset")
        if offset is not None:
            return offset // max(size, 1) + 1
        return _int_param(request, "page") or 1
    except ValueError:
        return 1


def _limit(request: web.Request, maximum: int) -> int:
    limit = _int_param(request, "limit")
    if limit is None:
        return maximum
    if not 1 <= limit <= maximum:
        raise ValueError("limit")
    return limit


def _links(request: web.Request, sim: NuwebSimulator, page: int, pages: int) -> dict[str, str]:
    """First/last/prev/next/self as absolute URLs carrying the request's other parameters."""
    query = {k: v for k, v in request.query.items() if k not in ("page", "offset")}
    base = request.url.with_query(None)

    def at(number: int, *, origin: str | None = None) -> str:
        url = base.with_query({**query, "page": str(number)})
        return str(url) if origin is None else origin.rstrip("/") + url.path_qs

    links = {"first": at(1), "last": at(pages), "self": at(page)}
    if page > 1:
        links["prev"] = at(page - 1)
    if page < pages:
        links["next"] = at(page + 1, origin=sim.next_origin)
        sim.next_origin = None
    return links


def _window(rows: list[Any], request: web.Request, limit: int) -> tuple[list[Any], int, int]:
    """The rows of the requested page: offset takes precedence over page (as documented)."""
    offset = _int_param(request, "offset")
    page = _int_param(request, "page")
    start = offset if offset is not None else ((page or 1) - 1) * limit
    pages = max(math.ceil(len(rows) / limit), 1)
    return rows[max(start, 0) : max(start, 0) + limit], start // limit + 1, pages


async def _inventory_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, INVENTORY_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    cache_key = request.path_qs
    body = sim.cached(company, cache_key) if request.path in sim.cached_paths else None
    if body is None:
        try:
            body = _inventory_body(request, sim, company)
        except ValueError:
            return _invalid("limit", "Invalid inventory query.")
        if request.path in sim.cached_paths:
            sim.store(company, cache_key, body)
    return web.Response(body=body, content_type="application/json", headers=rate)


def _inventory_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes:
    limit = min(_limit(request, INVENTORY_MAX), sim.inventory_page_size)
    trashed = request.query.get("withTrashed", "") == "true"
    rows = sim.sale_items(
        company, _int_param(request, "eventId"), _time_param(request, "lastUpdated"), trashed
    )
    shown, page, pages = _window(rows, request, limit)
    key = "saleItems" if request.path == SALE_ITEMS else "tickets"
    if key == "tickets":
        for row in shown:  # the deprecated endpoint's older field set
            row.pop("type", None)
            row["processing_fee"] = row.pop("processingFee")
    body = {
        key: shown,
        "timeslots": [],
        "links": _links(request, sim, page, pages),
        "meta": {"total": len(rows)},
    }
    return orjson.dumps(body)


async def _entry_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, ENTRY_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    if not request.query.get("eventId"):
        return _invalid("eventId", "The event id field is required.")
    try:
        body = _entry_body(request, sim, company)
    except ValueError:
        return _invalid("limit", "Invalid entry ticket query.")
    if body is None:
        return _error(404, "No query results for model [Event].")
    return web.Response(body=body, content_type="application/json", headers=rate)


def _entry_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes | None:
    event_id = int(request.query["eventId"])
    if not sim.has_event(event_id):
        return None
    limit = min(_limit(request, ENTRY_MAX), sim.entry_page_size)
    list_end = sim.list_end_time()
    rows = sim.entries(company, event_id, _time_param(request, "startTime"))
    shown, page, pages = _window(rows, request, limit)
    zones = request.query.get("includeZones", "") in ("true", "1")
    body = {
        "content": [entry.wire(zones=zones, ticket_id=ticket_id) for ticket_id, entry in shown],
        "listEndTime": format_nuweb_time(list_end),
        "total": len(rows),
        "pagination": _links(request, sim, page, pages),
        "dataCaptureQuestions": [],
    }
    return orjson.dumps(body)


async def _order_items_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, ORDER_ITEMS_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    try:
        body = _order_items_body(request, sim, company)
    except ValueError:
        return _invalid("limit", "Invalid order items query.")
    return web.Response(body=body, content_type="application/json", headers=rate)


def _order_items_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes:
    limit = min(_limit(request, ORDER_ITEMS_MAX), sim.order_items_page_size)
    rows = sim.order_items(company, _order_item_query(request))
    shown, page, pages = _window(rows, request, limit)
    body = {
        "data": [item.wire(item_id) for item_id, item in shown],
        "links": _links(request, sim, page, pages),
        "meta": {"total": len(rows)},
    }
    return orjson.dumps(body)


def _order_item_query(request: web.Request) -> _OrderItemQuery:
    """The filters of the request; ValueError (a 422) for one that does not parse."""
    events = _list_param(request, "eventIds")
    return _OrderItemQuery(
        event_ids=None if events is None else frozenset(int(event) for event in events),
        since=_time_param(request, "lastUpdated"),
        trashed=request.query.get("withTrashed", "") == "true",
        types=None if (types := _list_param(request, "type")) is None else frozenset(types),
        is_resale=_bool_param(request, "isResale"),
        order_id=_int_param(request, "orderId"),
        customer_id=_int_param(request, "customerId"),
    )


def _list_param(request: web.Request, name: str) -> list[str] | None:
    """A list given as a comma separated string or repeated (``name`` or ``name[]``)."""
    values = request.query.getall(name, []) + request.query.getall(name + "[]", [])
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return parts or None


def _bool_param(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if text not in ("true", "false", "1", "0"):
        raise ValueError(name)
    return text in ("true", "1")
