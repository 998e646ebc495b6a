"""The in-memory Ticket Tailor box offices the simulator serves, driven from Python.

Every behaviour the adapter depends on names its source: the Ticket Tailor API reference
("Issued tickets", "Orders", "Events" objects), secondary sources on
``/v1/check_ins`` (the Fivetran connector schema, the check-ins tool description), or an
observation recorded in docs/providers.md. Where the sources are silent the choice is
marked ``# Assumption:``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from notifier.dev.simulators.common import FixedWindow, PageBook, request_log
from notifier.dev.simulators.faults import FaultQueue
from notifier.dev.simulators.tickettailor import webhooks as hooks, wire
from notifier.dev.simulators.tickettailor.seeding import seed_box_office
from notifier.dev.simulators.tickettailor.wire import (
    DEFAULT_TYPES,
    Row,
    SeenRequest,
    TicketTypeSpec,
    unix,
)

# Secondary sources (rate-limit notes of the public API description): 5,000 requests per
# 30 minutes per box office, X-Rate-Limit-* headers, 429 with Retry-After.
RATE_LIMIT = 5000
RATE_WINDOW = timedelta(minutes=30)
# Observed behaviour (docs/providers.md, "quantity_issued swings after a void"): for about
# ten minutes after a void, quantity_issued oscillated 3 -> 1 -> 0 -> 1 where 2 were left.
SWING_DURATION = timedelta(minutes=10)
# Assumption: one step of the oscillation a minute (its period was not reported).
SWING_STEP = timedelta(minutes=1)

if TYPE_CHECKING:
    from notifier.dev.simulators.webhook_sender import WebhookSender

Clock = Callable[[], datetime]


class TicketTailorSimulator:
    """One or more box offices and their events, orders, issued tickets and check-ins.

    ``swing_after_void`` reproduces the observed swing of ``quantity_issued`` after a void.
    With ``webhooks`` set, sales, voids, cancellations, refunds and transfers also send the
    box office's webhooks (``webhooks`` module; signed and retried by ``WebhookSender``).
    """

    webhooks: WebhookSender | None = None

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int = RATE_LIMIT,
        rate_window: timedelta = RATE_WINDOW,
        swing_after_void: bool = False,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.swing_after_void = swing_after_void
        self.faults = FaultQueue()
        self.requests_served = 0
        self.seen: deque[SeenRequest] = request_log()
        self._keys: dict[str, str] = {}
        self._windows: dict[str, FixedWindow] = {}
        self.events: dict[str, Row] = {}
        self.orders: dict[str, Row] = {}
        self.tickets: dict[str, Row] = {}
        self.check_ins: dict[str, Row] = {}
        self._order_tickets: dict[str, list[str]] = {}
        self._event_orders: dict[str, int] = {}
        self._types: dict[str, tuple[str, Row]] = {}  # ticket type id -> (event id, row)
        self._swings: dict[str, datetime] = {}  # ticket type id -> when its swing began
        self._owner: dict[str, str] = {}  # object id -> box office id
        self._ids = {"ev": 40_980, "it": 50_198, "or": 737_352, "tt": 230_625, "li": 1_505_167}
        self._ids["ch"] = 880_000
        self.pages = PageBook()
        self._redirect: str | None = None

    # -- control API: box offices and events

    def add_box_office(self, api_key: str) -> str:
        """A box office reachable with ``api_key``; returns its id."""
        box_office = "bo_" + str(len(set(self._keys.values())) + 1)
        self._keys[api_key] = box_office
        return box_office

    def add_key(self, api_key: str, box_office: str) -> None:
        """Another key of an existing box office."""
        self._keys[api_key] = box_office

    def add_event(
        self,
        start: datetime,
        end: datetime | None = None,
        *,
        name: str = "Hackney Downs Tulip Festival",
        ticket_types: Sequence[TicketTypeSpec] = DEFAULT_TYPES,
        currency: str = "gbp",
        box_office: str | None = None,
    ) -> str:
        """Create a published event with its ticket types; returns the event id."""
        event_id = self._new_id("ev")
        types = [
            wire.ticket_type_wire(
                self._new_id("tt"), s.name, s.price, s.quantity_total, s.status, sort
            )
            for sort, s in enumerate(ticket_types)
        ]
        for tt in types:
            self._types[tt["id"]] = (event_id, tt)
        self.events[event_id] = wire.event_wire(
            event_id, name, start, end or start + timedelta(hours=5), currency, self.now(), types
        )
        self._owner[event_id] = box_office or self._default_box_office()
        return event_id

    def ticket_type_ids(self, event_id: str) -> list[str]:
        return [t["id"] for t in self.events[event_id]["ticket_types"]]

    def set_ticket_type_status(self, ticket_type_id: str, status: str) -> None:
        """E.g. ``hidden`` or ``members_only``; ``on_sale`` stays on even when sold out
        (observed behaviour: the status does not say sold out, docs/providers.md)."""
        self._ticket_type(ticket_type_id)["status"] = status

    def hold(self, ticket_type_id: str, count: int) -> None:
        """Box-office holds: unavailable, yet not subtracted from ``quantity`` (observed)."""
        self._ticket_type(ticket_type_id)["quantity_held"] += count
        self._refresh_event(self._types[ticket_type_id][0])

    def add_to_baskets(self, ticket_type_id: str, count: int) -> None:
        tt = self._ticket_type(ticket_type_id)
        tt["quantity_in_baskets"] += count
        wire.recount(tt)

    def sell_out(self, ticket_type_id: str) -> None:
        """Hold everything left, so it is sold out while ``status`` still says on_sale."""
        tt = self._ticket_type(ticket_type_id)
        left = tt["quantity_total"] - tt["quantity_issued"] - tt["quantity_held"]
        self.hold(ticket_type_id, max(left - tt["quantity_in_baskets"], 0))

    # -- control API: orders and tickets

    def create_order(
        self,
        event_id: str,
        *,
        quantity: int = 1,
        ticket_type_id: str | None = None,
        first_name: str | None = "John",
        last_name: str | None = "Doe",
        email: str | None = "john@example.com",
        phone: str | None = "07123456789",
        at: datetime | None = None,
    ) -> tuple[str, list[str]]:
        """A completed order issuing ``quantity`` tickets; returns (order id, ticket ids)."""
        event = self.events[event_id]
        tt = self._ticket_type(ticket_type_id or event["ticket_types"][0]["id"])
        when = unix(at or self.now())
        order_id = self._new_id("or")
        holder = {"first_name": first_name, "last_name": last_name, "email": email}
        ticket_ids = [self._issue(event, tt, order_id, holder, when) for _ in range(quantity)]
        value = tt["price"] * quantity
        item = wire.line_item_wire(self._new_id("li"), "ticket", tt["name"], value, quantity)
        order = wire.order_wire(order_id, event, item, value, when)
        buyer = " ".join(part for part in (first_name, last_name) if part)
        order["buyer_details"].update(name=buyer, email=email, phone=phone)
        self.orders[order_id] = order
        self._order_tickets[order_id] = ticket_ids
        self._event_orders[event_id] = self._event_orders.get(event_id, 0) + 1
        self._owner[order_id] = self._owner[event_id]
        self._refresh_event(event_id)
        for ticket_id in ticket_ids:
            hooks.ticket_webhook(self, hooks.TICKET_CREATED, ticket_id)
        return order_id, ticket_ids

    def check_in(self, ticket_id: str, at: datetime | None = None) -> str:
        """Check the ticket in at the door; ``at`` back-dates the scan (an offline scanner
        syncing late). Returns the check-in record's id.

        The issued ticket's ``checked_in`` becomes "true" (API reference, "Issued tickets")
        and a check-in record with its own ``check_in_at`` is created (GET /v1/check_ins,
        Fivetran connector schema).
        """
        # Assumption: a check-in moves the issued ticket's updated_at (unconfirmed).
        self._touch_ticket(ticket_id, checked_in="true")
        now = unix(self.now())
        record_id = self._new_id("ch")
        ticket = self.tickets[ticket_id]
        self.check_ins[record_id] = wire.check_in_wire(
            record_id, ticket, unix(at) if at else now, now
        )
        self._owner[record_id] = self._owner[ticket_id]
        return record_id

    def undo_check_in(self, ticket_id: str) -> None:
        """The issued ticket reads ``checked_in`` "false" again.

        Assumption: an undo leaves the check-in records as they are (how the API shows an
        undo is unconfirmed); only the issued ticket tells.
        """
        self._touch_ticket(ticket_id, checked_in="false")

    def void(self, ticket_id: str) -> None:
        """Void the ticket (``voided_at`` set, a ``void`` line item on its order) and put
        its place back on sale (API reference: status valid/voided, voided_at, line item
        type void)."""
        ticket = self.tickets[ticket_id]
        if ticket["status"] == "voided":
            return
        # Assumption: a void cannot be undone (whether voided -> valid exists is unconfirmed).
        self._touch_ticket(ticket_id, status="voided", voided_at=unix(self.now()))
        tt = self._ticket_type(ticket["ticket_type_id"])
        tt["quantity_issued"] -= 1
        wire.recount(tt)
        if self.swing_after_void:
            self._swings[tt["id"]] = self.now()
        order = self.orders[ticket["order_id"]]
        order["line_items"].append(
            wire.line_item_wire(self._new_id("li"), "void", ticket["description"], 0)
        )
        self._refresh_event(ticket["event_id"])
        hooks.ticket_webhook(self, hooks.TICKET_UPDATED, ticket_id)

    def cancel_order(self, order_id: str, message: str | None = None) -> None:
        """Cancel the order without a refund: status ``cancelled`` (API reference, order
        status completed/pending/cancelled) with ``status_message``.

        Assumption: cancelling voids the order's valid tickets, as a refund does.
        """
        for ticket_id in self._order_tickets[order_id]:
            self.void(ticket_id)
        self.orders[order_id].update(status="cancelled", status_message=message)
        hooks.order_webhook(self, order_id)

    def refund_order(
        self, order_id: str, amount: int | None = None, *, ticket_ids: Sequence[str] | None = None
    ) -> None:
        """Refund ``amount`` (minor units; the order's total by default).

        Observed behaviour (docs/providers.md, Ticket Tailor refunds): a refund voids the
        issued tickets it covers and raises the order's ``refund_amount``; the order reads
        ``cancelled`` once nothing valid is left. ``ticket_ids`` picks the tickets covered
        (a partial refund); ``()`` refunds fees only, voiding nothing; None covers every
        valid ticket of the order. The order has no ``updated_at`` to move.
        """
        order = self.orders[order_id]
        covered = self._order_tickets[order_id] if ticket_ids is None else list(ticket_ids)
        order["refund_amount"] += order["total"] if amount is None else amount
        for ticket_id in covered:
            self.void(ticket_id)
        if all(self.tickets[t]["status"] == "voided" for t in self._order_tickets[order_id]):
            order["status"] = "cancelled"
        hooks.order_webhook(self, order_id)

    def transfer(
        self,
        ticket_id: str,
        *,
        first_name: str | None,
        last_name: str | None,
        email: str | None,
    ) -> None:
        """Give the ticket to another attendee: same id, new name and email (an edit of the
        issued ticket's holder fields, API reference "Issued tickets")."""
        self._touch_ticket(
            ticket_id,
            first_name=first_name,
            last_name=last_name,
            full_name=" ".join(p for p in (first_name, last_name) if p) or None,
            email=email,
        )
        hooks.ticket_webhook(self, hooks.TICKET_UPDATED, ticket_id)

    def seed(self, api_key: str, tickets: int, rng_seed: int = 0) -> list[str]:
        """Realistic data: a box office with a live, a future and a past event."""
        return seed_box_office(self, api_key, tickets, rng_seed)

    def redirect_next_to(self, origin: str) -> None:
        """The next page served gets an absolute ``links.next`` on ``origin`` (once)."""
        self._redirect = origin

    # -- reading (used by the HTTP handlers)

    def box_office_for(self, api_key: str) -> str | None:
        return self._keys.get(api_key)

    def owned(self, rows: Iterable[Row], box_office: str) -> list[Row]:
        return [row for row in rows if self._owner.get(row["id"]) == box_office]

    def order_view(self, order: Row) -> Row:
        """An order with its issued tickets as they are now (API reference, "Orders")."""
        tickets = [dict(self.tickets[t]) for t in self._order_tickets.get(order["id"], [])]
        return {**order, "issued_tickets": tickets}

    def event_view(self, event: Row) -> Row:
        """An event as read now: a ticket type in its swing after a void shows the
        observed oscillating ``quantity_issued`` (3 -> 1 -> 0 -> 1 where 2 are left)."""
        now = self.now()
        types = []
        for tt in event["ticket_types"]:
            began = self._swings.get(tt["id"])
            if began is None or now - began >= SWING_DURATION:
                types.append(tt)
                continue
            true = tt["quantity_issued"]
            # Assumption: the observed readings relative to the count left (3, 1, 0, 1
            # around 2) hold for any count.
            shape = (true + 1, true - 1, 0, true - 1)
            step = int((now - began) / SWING_STEP)
            swung = {**tt, "quantity_issued": max(shape[step % len(shape)], 0)}
            wire.recount(swung)
            types.append(swung)
        return {**event, "ticket_types": types}

    def count_request(self, api_key: str) -> tuple[int, int]:
        """Count one request in the key's window: (remaining, seconds to reset); -1 if over.

        Assumption: X-Rate-Limit-Reset is the seconds until the window resets (a live
        observation read 877, which looks like seconds; the docs do not say).
        """
        window = self._windows.setdefault(self._keys.get(api_key, api_key), FixedWindow())
        return window.count(self.now(), self.rate_limit, self.rate_window)

    def take_redirect(self) -> str | None:
        origin, self._redirect = self._redirect, None
        return origin

    # -- internals

    def now(self) -> datetime:
        """The simulator's clock."""
        return self._clock()

    def _new_id(self, prefix: str) -> str:
        self._ids[prefix] += 1
        return prefix + "_" + str(self._ids[prefix])

    def _default_box_office(self) -> str:
        if not self._keys:
            raise ValueError("add_box_office first")
        return next(iter(self._keys.values()))

    def _ticket_type(self, ticket_type_id: str) -> Row:
        return self._types[ticket_type_id][1]

    def _issue(self, event: Row, tt: Row, order_id: str, holder: Row, when: int) -> str:
        ticket_id = self._new_id("it")
        self.tickets[ticket_id] = wire.ticket_wire(ticket_id, event["id"], tt, order_id, when)
        self.tickets[ticket_id].update(holder)
        full = " ".join(p for p in (holder["first_name"], holder["last_name"]) if p)
        self.tickets[ticket_id]["full_name"] = full or None
        self._owner[ticket_id] = self._owner[event["id"]]
        tt["quantity_issued"] += 1
        wire.recount(tt)
        return ticket_id

    def _touch_ticket(self, ticket_id: str, **fields: Any) -> None:
        # API reference, "Issued tickets": updated_at is when the ticket was last updated.
        ticket = self.tickets[ticket_id]
        ticket.update(fields)
        ticket["updated_at"] = unix(self.now())

    def _refresh_event(self, event_id: str) -> None:
        event = self.events[event_id]
        types = event["ticket_types"]
        for tt in types:
            wire.recount(tt)
        # Counted from the ticket types, not by scanning every ticket: a 10,000-ticket
        # bench event would otherwise cost a scan per order created.
        event["total_issued_tickets"] = sum(tt["quantity_issued"] for tt in types)
        event["total_orders"] = self._event_orders.get(event_id, 0)
        event["total_holds"] = sum(tt["quantity_held"] for tt in types)
        left = any(wire.available(tt) > 0 and tt["status"] == "on_sale" for tt in types)
        event["tickets_available"] = "true" if left else "false"
