"""A fake of Nuweb's Admin API: the control API tests and the demo drive (docs/design.md §5).

Serves (``app``) ``GET /v1/event-tickets`` ("Retrieve Event Tickets", deprecated),
``GET /v1/sale-items`` (same data, ``saleItems`` instead of ``tickets``),
``GET /v1/entry/tickets``, ``GET /v1/order-items`` and ``GET /v1/events`` with the spec's
parameters and envelopes.

What the entry list shows of a cancellation or a resale is not documented. Assumption,
modelled on the manual ("cancelled items are removed from the order") and the spec's
entry statuses (sold/scanned/refunded/locked, none for them):
- cancel (no refund): the item gets ``cancelledAt`` and is removed from its order
  (soft-deleted: ``deletedAt``, listed only with ``withTrashed=true``); its unit goes back
  on sale; the entry ticket is modified now (its last update), its status unchanged.
- resell: the seller's item is removed from its order; the buyer's new item (new order,
  new entry ticket, ``sold``) carries ``replacedOrderItem {type: "resale"}`` (admin
  OpenAPI, GET /v1/order-items example); the old entry ticket is modified now, its status
  unchanged. Stock does not move.
- refund: the entry status ``refunded`` (admin OpenAPI, entry ``variable.status``); the
  item's ``refunded`` amount, ``cancelledAt`` (a refund cancels the item) and its removal
  from the order; the unit back on sale.
A cancelled, refunded or replaced ticket is refused at the gate: scans and refunds do
nothing (Assumption).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notifier.dev.simulators.nuweb.records import (
    EntryTicket,
    OrderItemRow,
    SaleItem,
    const,
    customer_id_of,
    sale_item_wire,
    scan_wire,
    stable,
    variable,
)
from notifier.dev.simulators.nuweb.store import NuwebStore
from notifier.dev.simulators.nuweb.webhooks import refund_payload, scan_payload
from notifier.dev.simulators.webhook_sender import WebhookSender
from notifier.timeparse import format_nuweb_time

__all__ = ["NuwebSimulator"]


class NuwebSimulator(NuwebStore):
    """The in-memory Nuweb and what happens to it: sales, scans, refunds, resales.

    With ``webhooks`` set, a check in, a check out and a refund also send Nuweb's webhook
    for it (signed, three attempts: ``WebhookSender``), as a company that subscribed would
    receive them.
    """

    webhooks: WebhookSender | None = None

    def _notify(self, event: str, payload: dict[str, Any]) -> None:
        if self.webhooks is not None:
            self.webhooks.send(event, payload)

    # -- control API: ticket types

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
        wire = sale_item_wire(item_id, event_id, name, price_minor, total_stock, currency, now)
        wire["onSale"] = on_sale
        self._items[item_id] = SaleItem(event_id, now, wire)
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
        """Sell one ticket of the type; returns the entry ticket id. Stock moves (``sold``,
        ``currentStock``: "Retrieve Event Tickets"), which inventory's ``lastUpdated`` sees."""
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
        self._entries[ticket_id] = EntryTicket(
            event_id=sale_item.event_id,
            type_id=ticket_type_id,
            modified_at=now,
            const=const(ticket_id, order_id, ticket_type_id, wire["name"]),
            stable=stable(customer_name, email, wire["basePrice"]),
            variable=variable("sold"),
        )
        self._order_items[ticket_id] = OrderItemRow(
            event_id=sale_item.event_id,
            order_id=order_id,
            sale_item_id=ticket_type_id,
            customer_id=customer_id_of(ticket_id),
            name=wire["name"],
            price=wire["basePrice"],
            currency=wire["currencyCode"],
            created_at=now,
            changed_at=now,
            replaced=replaced,
        )
        return ticket_id

    def name_holder(self, ticket_id: int, name: str | None) -> None:
        """Staff name (or un-name) the ticket's holder on its order item (``namedHolder``).

        Assumption: the entry ticket is not modified by it (the spec lists customer-detail
        edits among its modifications, not the order item's named holder): the adapter
        learns it from order items alone.
        """
        item = self._order_items[ticket_id]
        item.named_holder = name
        item.changed_at = self._tick()

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
        """Admit the ticket with an ``in`` scan; ``at`` back-dates it (an offline scanner).

        Entry ``variable.status`` sold → scanned with ``scannedOn`` / ``scannedBy``, and a
        ``zoneData.scans[]`` entry with ``scan: "in"`` (admin OpenAPI, GET
        /v1/entry/tickets); "the last scan" modifies the ticket (``startTime``).
        Assumption: a back-dated scan is modified now (it syncs now) with its own time.
        """
        if self._order_items[ticket_id].closed:
            return  # refused at the gate
        entry, when = self._entries[ticket_id], self._tick()
        stamp = format_nuweb_time(at or when)
        if entry.variable["status"] == "sold":
            entry.variable.update(status="scanned", scannedOn=stamp, scannedBy="Gate 1")
        entry.scans.append(scan_wire("in", stamp, zone))
        entry.modified_at = when
        self._notify("attendee_check_in", scan_payload(self, ticket_id, stamp=stamp, zone=zone))

    def scan_out(self, ticket_id: int, at: datetime | None = None, zone: int = 1) -> None:
        """A zone exit: a ``scan: "out"`` entry in ``zoneData.scans[]`` (admin OpenAPI)."""
        if self._order_items[ticket_id].closed:
            return
        entry, when = self._entries[ticket_id], self._tick()
        stamp = format_nuweb_time(at or when)
        entry.scans.append(scan_wire("out", stamp, zone))
        entry.modified_at = when
        self._notify("attendee_check_out", scan_payload(self, ticket_id, stamp=stamp, zone=zone))

    def unscan(self, ticket_id: int) -> None:
        """Undo the admission: back to sold.

        Assumption: whether Nuweb can un-scan is not documented; this is what it would
        look like (``variable.status`` scanned → sold, ``scannedOn`` gone).
        """
        entry = self._entries[ticket_id]
        entry.variable = variable("sold")
        entry.modified_at = self._tick()

    def refund(self, ticket_id: int) -> None:
        """Refund the ticket in full: entry status ``refunded`` and the item's ``refunded``
        amount (admin OpenAPI); Assumption: the item is cancelled and removed from its order
        too, and its unit goes back into stock (no-op if closed)."""
        item = self._order_items[ticket_id]
        if item.closed:
            return
        self._restock(ticket_id)
        self._set_status(ticket_id, "refunded")
        item.refunded = item.price
        item.cancelled_at = item.deleted_at = item.changed_at = self._tick()
        self._notify("order_refunded", refund_payload(self, ticket_id))

    def lock(self, ticket_id: int) -> None:
        """The order is being modified: temporarily invalid for scanning (admin OpenAPI
        changelog, 16 October 2025, on entry status ``locked``)."""
        self._set_status(ticket_id, "locked")

    def unlock(self, ticket_id: int) -> None:
        """Assumption: the modification done, the ticket returns to what it was."""
        entry = self._entries[ticket_id]
        self._set_status(ticket_id, "scanned" if "scannedOn" in entry.variable else "sold")

    def transfer(self, ticket_id: int, customer_name: str, email: str) -> None:
        """New customer details: "the customer details were last edited" modifies the entry
        ticket (admin OpenAPI, ``startTime``)."""
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
