"""A fake of Ticket Tailor's ``/v1`` API faithful to the seed document (docs/design.md §5).

State lives in memory in ``TicketTailorSimulator`` and is driven from Python (orders,
check-ins, voids, cancels, refunds, transfers, inventory). The HTTP side keeps the real
API's shapes: Basic auth with the key as user, ``{data, links}`` envelopes, newest-first
cursor paging by object id (``starting_after``/``ending_before``, the latter winning),
``limit`` up to 100, relative ``links``, ``created_at`` filters in unix seconds, the
``{status, error_code, message}`` error body, and ``X-Rate-Limit-*`` headers counted over a
real window with 429 + ``Retry-After`` once it is spent.

Choices where the real API is unconfirmed (providers-research §5): a check-in moves the
issued ticket's ``updated_at`` (a back-dated check-in sets it to the scan time); a void
cannot be undone; ``X-Rate-Limit-Reset`` is the
seconds until the window resets; next links keep the request's filters.
"""

from __future__ import annotations

import base64
import binascii
import random
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from notifier.simulators.faults import Fault, FaultQueue, fault_response
from notifier.simulators.serving import start_app

__all__ = [
    "Fault",
    "FaultQueue",
    "SeenRequest",
    "TicketTailorSimulator",
    "TicketTypeSpec",
    "build_app",
    "serve",
]

MAX_LIMIT = 100
RATE_LIMIT = 5000
RATE_WINDOW = timedelta(minutes=30)
_CREATED_FILTERS = (
    "created_at",
    "created_at.gt",
    "created_at.gte",
    "created_at.lt",
    "created_at.lte",
)

Clock = Callable[[], datetime]
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert the key never rides in a URL)."""

    path_qs: str
    query: dict[str, str]
    authorization: str | None


@dataclass(frozen=True, slots=True)
class TicketTypeSpec:
    """A ticket type to create with an event."""

    name: str
    price: int = 1500
    quantity_total: int = 100
    status: str = "on_sale"


DEFAULT_TYPES = (TicketTypeSpec("General Admission", 1500, 500), TicketTypeSpec("VIP", 4500, 50))


@dataclass(slots=True)
class _Window:
    """A fixed rate-limit window: requests counted since ``started``."""

    started: datetime | None = None
    used: int = 0


# --------------------------------------------------------------------------- state


class TicketTailorSimulator:
    """The in-memory Ticket Tailor: one or more box offices and their objects."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int = RATE_LIMIT,
        rate_window: timedelta = RATE_WINDOW,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.faults = FaultQueue()
        self.requests_served = 0
        self.seen: deque[SeenRequest] = deque(maxlen=10_000)
        self._keys: dict[str, str] = {}
        self._windows: dict[str, _Window] = {}
        self.events: dict[str, Row] = {}
        self.orders: dict[str, Row] = {}
        self.tickets: dict[str, Row] = {}
        self._owner: dict[str, str] = {}  # object id -> box office id
        self._ids = {"ev": 40_980, "it": 50_198, "or": 737_352, "tt": 230_625, "li": 1_505_167}
        self._pages: dict[str, int] = {}
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
        now = self._now()
        types = [self._ticket_type_wire(spec, sort) for sort, spec in enumerate(ticket_types)]
        self.events[event_id] = _event_wire(
            event_id, name, start, end or start + timedelta(hours=5), currency, now, types
        )
        self._owner[event_id] = box_office or self._default_box_office()
        return event_id

    def ticket_type_ids(self, event_id: str) -> list[str]:
        return [t["id"] for t in self.events[event_id]["ticket_types"]]

    def set_ticket_type_status(self, ticket_type_id: str, status: str) -> None:
        """E.g. ``hidden`` or ``members_only``; ``on_sale`` stays on even when sold out."""
        self._ticket_type(ticket_type_id)["status"] = status

    def hold(self, ticket_type_id: str, count: int) -> None:
        """Box-office holds: unavailable, yet not subtracted from ``quantity``."""
        self._ticket_type(ticket_type_id)["quantity_held"] += count
        self._refresh_event(self._event_of_type(ticket_type_id))

    def add_to_baskets(self, ticket_type_id: str, count: int) -> None:
        tt = self._ticket_type(ticket_type_id)
        tt["quantity_in_baskets"] += count
        _recount(tt)

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
        when = _unix(at or self._now())
        order_id = self._new_id("or")
        holder = {"first_name": first_name, "last_name": last_name, "email": email}
        ticket_ids = [self._issue(event, tt, order_id, holder, when) for _ in range(quantity)]
        buyer = " ".join(part for part in (first_name, last_name) if part)
        self.orders[order_id] = self._order_wire(order_id, event, tt, quantity, when)
        self.orders[order_id]["buyer_details"].update(name=buyer, email=email, phone=phone)
        self._owner[order_id] = self._owner[event_id]
        self._refresh_event(event_id)
        return order_id, ticket_ids

    def check_in(self, ticket_id: str, at: datetime | None = None) -> None:
        """Check the ticket in; ``at`` back-dates it (an offline scanner syncing late).

        The issued ticket has no check-in time, so its ``updated_at`` carries the scan time.
        """
        self._touch_ticket(ticket_id, checked_in="true")
        if at is not None:
            self.tickets[ticket_id]["updated_at"] = _unix(at)

    def undo_check_in(self, ticket_id: str) -> None:
        self._touch_ticket(ticket_id, checked_in="false")

    def void(self, ticket_id: str) -> None:
        """Void the ticket (``voided_at`` set) and put its place back on sale."""
        ticket = self.tickets[ticket_id]
        if ticket["status"] == "voided":
            return
        now = _unix(self._now())
        self._touch_ticket(ticket_id, status="voided", voided_at=now)
        tt = self._ticket_type(ticket["ticket_type_id"])
        tt["quantity_issued"] -= 1
        _recount(tt)
        order = self.orders[ticket["order_id"]]
        order["line_items"].append(self._line_item("void", ticket["description"], 0))
        self._touch_order(order["id"])
        self._refresh_event(ticket["event_id"])

    def cancel_order(self, order_id: str, message: str | None = None) -> None:
        self._touch_order(order_id, status="cancelled", status_message=message)

    def refund_order(self, order_id: str, amount: int) -> None:
        """Refund ``amount`` (minor units) of the order; its tickets stay as they are."""
        order = self.orders[order_id]
        self._touch_order(order_id, refund_amount=order["refund_amount"] + amount)

    def transfer(
        self,
        ticket_id: str,
        *,
        first_name: str | None,
        last_name: str | None,
        email: str | None,
    ) -> None:
        """Give the ticket to another attendee (same id, new name and email)."""
        self._touch_ticket(
            ticket_id,
            first_name=first_name,
            last_name=last_name,
            full_name=" ".join(p for p in (first_name, last_name) if p) or None,
            email=email,
        )

    def seed(self, api_key: str, tickets: int, rng_seed: int = 0) -> list[str]:
        """Realistic data: a box office with a live, a future and a past event."""
        rng = random.Random(rng_seed)
        self.add_box_office(api_key)
        now = self._now()
        events = [
            self.add_event(now - timedelta(hours=1), name="Tulip Festival (tonight)"),
            self.add_event(now + timedelta(days=14), name="Spring Social"),
            self.add_event(now - timedelta(days=10), name="Winter Market"),
        ]
        issued: list[str] = []
        while len(issued) < tickets:
            issued.extend(_seed_order(self, rng, rng.choice(events), tickets - len(issued)))
        return issued

    def redirect_next_to(self, origin: str) -> None:
        """The next page served gets an absolute ``links.next`` on ``origin`` (once)."""
        self._redirect = origin

    # -- reading (used by the HTTP handlers)

    def box_office_for(self, api_key: str) -> str | None:
        return self._keys.get(api_key)

    def owned(self, rows: Iterable[Row], box_office: str) -> list[Row]:
        return [row for row in rows if self._owner.get(row["id"]) == box_office]

    def order_view(self, order: Row) -> Row:
        """An order with its issued tickets as they are now."""
        tickets = [dict(t) for t in self.tickets.values() if t["order_id"] == order["id"]]
        return {**order, "issued_tickets": tickets}

    def count_request(self, api_key: str) -> tuple[int, int]:
        """Count one request in the key's window: (remaining, seconds to reset); -1 if over."""
        window = self._windows.setdefault(self._keys.get(api_key, api_key), _Window())
        now = self._now()
        if window.started is None or now - window.started >= self.rate_window:
            window.started, window.used = now, 0
        reset = max(int((window.started + self.rate_window - now).total_seconds()), 0)
        if window.used >= self.rate_limit:
            return -1, reset
        window.used += 1
        return self.rate_limit - window.used, reset

    def page_number(self, key: str) -> int:
        return self._pages.get(key, 1)

    def page_served(self, key: str) -> None:
        # Forgotten once answered, so a retry of a failed page still counts as that page.
        self._pages.pop(key, None)

    def remember_next(self, key: str, page: int) -> None:
        self._pages[key] = page

    def take_redirect(self) -> str | None:
        origin, self._redirect = self._redirect, None
        return origin

    # -- internals

    def _now(self) -> datetime:
        return self._clock()

    def _new_id(self, prefix: str) -> str:
        self._ids[prefix] += 1
        return prefix + "_" + str(self._ids[prefix])

    def _default_box_office(self) -> str:
        if not self._keys:
            raise ValueError("add_box_office first")
        return next(iter(self._keys.values()))

    def _ticket_type(self, ticket_type_id: str) -> Row:
        for event in self.events.values():
            for tt in event["ticket_types"]:
                if tt["id"] == ticket_type_id:
                    found: Row = tt
                    return found
        raise KeyError(ticket_type_id)

    def _event_of_type(self, ticket_type_id: str) -> str:
        for event_id, event in self.events.items():
            if any(tt["id"] == ticket_type_id for tt in event["ticket_types"]):
                return event_id
        raise KeyError(ticket_type_id)

    def _ticket_type_wire(self, spec: TicketTypeSpec, sort: int) -> Row:
        return {
            "object": "ticket_type",
            "id": self._new_id("tt"),
            "access_code": None,
            "booking_fee": 0,
            "description": None,
            "group_id": None,
            "max_per_order": 10,
            "min_per_order": 1,
            "name": spec.name,
            "price": spec.price,
            "status": spec.status,
            "sort_order": 50_050 + sort,
            "type": "paid" if spec.price else "free",
            "quantity_total": spec.quantity_total,
            "quantity_issued": 0,
            "quantity_held": 0,
            "quantity_in_baskets": 0,
            "quantity": spec.quantity_total,
        }

    def _issue(self, event: Row, tt: Row, order_id: str, holder: Row, when: int) -> str:
        ticket_id = self._new_id("it")
        self.tickets[ticket_id] = _ticket_wire(ticket_id, event["id"], tt, order_id, when)
        self.tickets[ticket_id].update(holder)
        full = " ".join(p for p in (holder["first_name"], holder["last_name"]) if p)
        self.tickets[ticket_id]["full_name"] = full or None
        self._owner[ticket_id] = self._owner[event["id"]]
        tt["quantity_issued"] += 1
        _recount(tt)
        return ticket_id

    def _order_wire(self, order_id: str, event: Row, tt: Row, quantity: int, when: int) -> Row:
        value = tt["price"] * quantity
        return {
            "object": "order",
            "id": order_id,
            "buyer_details": {
                "address": {
                    "address_1": "The Queen's Walk",
                    "address_2": None,
                    "address_3": "London",
                    "postal_code": "SE1 7PB",
                },
                "custom_questions": [],
                "email": None,
                "name": None,
                "phone": None,
            },
            "created_at": when,
            "updated_at": when,
            "currency": {"base_multiplier": 100, "code": event["currency"]},
            "event_summary": {
                "id": event["id"],
                "end_date": event["end"],
                "name": event["name"],
                "start_date": event["start"],
            },
            "line_items": [self._line_item("ticket", tt["name"], value, quantity)],
            "payment_method": {
                "external_id": None,
                "id": "pm_6687",
                "instructions": None,
                "name": None,
                "type": "stripe" if value else "no_cost",
            },
            "refund_amount": 0,
            "status": "completed",
            "status_message": None,
            "subtotal": value,
            "tax": 0,
            "total": value,
            "txn_id": "ch_" + secrets.token_hex(8) if value else None,
        }

    def _line_item(self, kind: str, description: str, value: int, quantity: int = 1) -> Row:
        return {
            "object": "line_item",
            "id": self._new_id("li"),
            "booking_fee": 0,
            "description": description,
            "type": kind,
            "total": value,
            "value": value,
            "quantity": quantity,
        }

    def _touch_ticket(self, ticket_id: str, **fields: Any) -> None:
        ticket = self.tickets[ticket_id]
        ticket.update(fields)
        ticket["updated_at"] = _unix(self._now())

    def _touch_order(self, order_id: str, **fields: Any) -> None:
        order = self.orders[order_id]
        order.update(fields)
        order["updated_at"] = _unix(self._now())

    def _refresh_event(self, event_id: str) -> None:
        event = self.events[event_id]
        types = event["ticket_types"]
        for tt in types:
            _recount(tt)
        issued = [t for t in self.tickets.values() if t["event_id"] == event_id]
        event["total_issued_tickets"] = sum(1 for t in issued if t["status"] == "valid")
        event["total_orders"] = len({t["order_id"] for t in issued})
        event["total_holds"] = sum(tt["quantity_held"] for tt in types)
        available = any(_available(tt) > 0 and tt["status"] == "on_sale" for tt in types)
        event["tickets_available"] = "true" if available else "false"


def _recount(tt: Row) -> None:
    # ``quantity`` = total - issued - baskets; holds are not subtracted (observed).
    tt["quantity"] = max(
        tt["quantity_total"] - tt["quantity_issued"] - tt["quantity_in_baskets"], 0
    )


def _available(tt: Row) -> int:
    return int(tt["quantity"]) - int(tt["quantity_held"])


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment_wire(moment: datetime) -> Row:
    utc = moment.astimezone(UTC)
    return {
        "date": utc.strftime("%Y-%m-%d"),
        "formatted": utc.strftime("%a %-d %b %Y %-I:%M %p"),
        "iso": utc.isoformat(timespec="seconds"),
        "time": utc.strftime("%H:%M"),
        "timezone": "+00:00",
        "unix": _unix(utc),
    }


def _event_wire(
    event_id: str,
    name: str,
    start: datetime,
    end: datetime,
    currency: str,
    now: datetime,
    types: list[Row],
) -> Row:
    number = event_id.removeprefix("ev_")
    return {
        "object": "event",
        "id": event_id,
        "access_code": None,
        "call_to_action": "Buy tickets",
        "created_at": _unix(now),
        "currency": currency,
        "description": None,
        "end": _moment_wire(end),
        "event_series_id": "es_" + number,
        "images": {"header": None, "thumbnail": None},
        "name": name,
        "online_event": "false",
        "payment_methods": [],
        "private": "false",
        "start": _moment_wire(start),
        "status": "published",
        "ticket_groups": [],
        "ticket_types": types,
        "tickets_available": "true",
        "timezone": "UTC",
        "total_holds": 0,
        "total_issued_tickets": 0,
        "total_orders": 0,
        "url": "https://www.tickettailor.com/events/simulated/" + number,
        "venue": {"name": None, "postal_code": None},
    }


def _ticket_wire(ticket_id: str, event_id: str, tt: Row, order_id: str, when: int) -> Row:
    number = ticket_id.removeprefix("it_")
    token = secrets.token_hex(10)
    return {
        "object": "issued_ticket",
        "id": ticket_id,
        "barcode": secrets.token_urlsafe(4)[:5],
        "barcode_url": "https://www.tickettailor.com/userfiles/cache/barcode/qr/attendee/"
        + number
        + "/"
        + token,
        "checked_in": "false",
        "created_at": when,
        "custom_questions": [],
        "description": tt["name"],
        "email": None,
        "event_id": event_id,
        "event_series_id": "es_" + event_id.removeprefix("ev_"),
        "full_name": None,
        "first_name": None,
        "last_name": None,
        "reference": None,
        "reservation": None,
        "status": "valid",
        "ticket_type_id": tt["id"],
        "updated_at": when,
        "voided_at": None,
        "order_id": order_id,
        "qr_code_url": "https://www.tickettailor.com/userfiles/cache/barcode/st/attendee/"
        + number
        + "/"
        + token,
    }


_FIRST = ("Olivia", "Amelia", "Isla", "Noah", "Oliver", "George", "Leo", "Freya", "Arthur")
_LAST = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Davies")


def _seed_order(
    sim: TicketTailorSimulator, rng: random.Random, event_id: str, left: int
) -> list[str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    order_id, ticket_ids = sim.create_order(
        event_id,
        quantity=min(rng.choice((1, 1, 2, 3)), left),
        ticket_type_id=rng.choice(sim.ticket_type_ids(event_id)),
        first_name=first,
        last_name=last,
        email=(first + "." + last + "@example.com").lower(),
    )
    roll = rng.random()
    if roll < 0.3:
        sim.check_in(ticket_ids[0])
    elif roll < 0.33:
        sim.void(ticket_ids[0])
    elif roll < 0.35:
        sim.cancel_order(order_id, "Customer request")
    elif roll < 0.37:
        sim.refund_order(order_id, sim.orders[order_id]["total"])
    return ticket_ids


# --------------------------------------------------------------------------- HTTP


_SIM_KEY: web.AppKey[TicketTailorSimulator] = web.AppKey("tt_simulator", TicketTailorSimulator)
_KEY: web.RequestKey[str] = web.RequestKey("tt_api_key", str)


def build_app(sim: TicketTailorSimulator) -> web.Application:
    """The aiohttp application serving ``sim``'s ``/v1`` endpoints."""
    app = web.Application(middlewares=[_gate])
    app[_SIM_KEY] = sim
    app.router.add_get("/v1/ping", _ping)
    app.router.add_get("/v1/events", _list_handler(_events_rows, {"status"}))
    app.router.add_get("/v1/orders", _list_handler(_orders_rows, {"event_id", "status"}))
    app.router.add_get(
        "/v1/issued_tickets", _list_handler(_tickets_rows, {"event_id", "status", "order_id"})
    )
    return app


async def serve(
    sim: TicketTailorSimulator, host: str = "127.0.0.1", port: int = 0
) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, fault, authenticate and rate-limit every request, in the real API's order."""
    sim = request.app[_SIM_KEY]
    sim.requests_served += 1
    authorization = request.headers.get("Authorization")
    sim.seen.append(SeenRequest(request.path_qs, dict(request.query), authorization))
    page_key = _page_key(request.path, request.query)
    fault = sim.faults.take(sim.page_number(page_key))
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    api_key = _basic_user(authorization)
    if api_key is None or sim.box_office_for(api_key) is None:
        return _error(401, "Invalid API key", {}, "UNAUTHORIZED")
    remaining, reset = sim.count_request(api_key)
    limits = {"X-Rate-Limit-Limit": str(sim.rate_limit), "X-Rate-Limit-Reset": str(reset)}
    if remaining < 0:
        limits.update({"X-Rate-Limit-Remaining": "0", "Retry-After": str(max(reset, 1))})
        return _error(429, "Too many requests", limits, "TOO_MANY_REQUESTS")
    request[_KEY] = api_key
    response = await handler(request)
    response.headers.update(limits)
    response.headers["X-Rate-Limit-Remaining"] = str(remaining)
    sim.page_served(page_key)
    return response


def _basic_user(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[len("Basic ") :], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    # ``-u 'sk_…:'`` sends "key:"; the docs also allow base64(key) alone.
    return decoded.partition(":")[0] or None


async def _ping(request: web.Request) -> web.Response:
    sim = request.app[_SIM_KEY]
    box_office = sim.box_office_for(request[_KEY])
    return _json({"box_office_id": box_office, "box_office_name": "Simulated box office"})


RowSource = Callable[[TicketTailorSimulator, str], list[Row]]


def _list_handler(rows: RowSource, filters: set[str]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        sim = request.app[_SIM_KEY]
        query = request.query
        limit = _limit(query.get("limit"))
        if limit is None:
            return _error(400, "limit must be an integer between 1 and 100", {}, "BAD_REQUEST")
        try:
            selected = _filtered(rows(sim, sim.box_office_for(request[_KEY]) or ""), query, filters)
        except ValueError:
            return _error(400, "Invalid filter value", {}, "BAD_REQUEST")
        page, has_before, has_after = _window(selected, query, limit)
        links = _links(request, page, has_before=has_before, has_after=has_after)
        _remember_next(sim, request, links["next"])
        return _json({"data": page, "links": links})

    return handle


def _events_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    return _newest_first(sim.owned(sim.events.values(), box_office))


def _orders_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    orders = sim.owned(sim.orders.values(), box_office)
    return _newest_first([sim.order_view(order) for order in orders])


def _tickets_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    return _newest_first(sim.owned(sim.tickets.values(), box_office))


def _newest_first(rows: list[Row]) -> list[Row]:
    # Reverse chronological; the numeric id breaks ties within one second.
    return sorted(rows, key=lambda row: (row["created_at"], _number(row["id"])), reverse=True)


def _number(object_id: str) -> int:
    return int(object_id.rpartition("_")[2])


def _limit(value: str | None) -> int | None:
    if value is None:
        return MAX_LIMIT
    try:
        limit = int(value)
    except ValueError:
        return None
    return limit if 1 <= limit <= MAX_LIMIT else None


def _filtered(rows: list[Row], query: Mapping[str, str], filters: set[str]) -> list[Row]:
    for name in filters & set(query):
        rows = [row for row in rows if _field(row, name) == query[name]]
    for name in _CREATED_FILTERS:
        if name in query:
            bound = int(query[name])
            rows = [row for row in rows if _compare(name, row["created_at"], bound)]
    return rows


def _field(row: Row, name: str) -> object:
    if name == "event_id" and row.get("object") == "order":
        return row["event_summary"]["id"]
    return row.get(name)


def _compare(name: str, value: int, bound: int) -> bool:
    op = name.partition(".")[2]
    if op == "gt":
        return value > bound
    if op == "gte":
        return value >= bound
    if op == "lt":
        return value < bound
    if op == "lte":
        return value <= bound
    return value == bound


def _window(rows: list[Row], query: Mapping[str, str], limit: int) -> tuple[list[Row], bool, bool]:
    """The page of ``rows`` the cursor asks for, and whether rows lie before/after it."""
    ids = [row["id"] for row in rows]
    before_id, after_id = query.get("ending_before"), query.get("starting_after")
    if before_id:  # ending_before wins when both are given
        end = ids.index(before_id) if before_id in ids else len(ids)
        start = max(end - limit, 0)
    else:
        start = ids.index(after_id) + 1 if after_id in ids else 0
        end = start + limit
    return rows[start:end], start > 0, end < len(rows)


def _links(
    request: web.Request, page: list[Row], *, has_before: bool, has_after: bool
) -> dict[str, str | None]:
    kept = {k: v for k, v in request.query.items() if k not in ("starting_after", "ending_before")}
    next_link = previous = None
    if page and has_after:
        next_link = str(URL(request.path).with_query({**kept, "starting_after": page[-1]["id"]}))
        origin = request.app[_SIM_KEY].take_redirect()
        if origin is not None:
            next_link = origin.rstrip("/") + next_link
    if page and has_before:
        previous = str(URL(request.path).with_query({**kept, "ending_before": page[0]["id"]}))
    return {"next": next_link, "previous": previous}


def _remember_next(sim: TicketTailorSimulator, request: web.Request, link: str | None) -> None:
    if link is None:
        return
    target = URL(link)
    page = sim.page_number(_page_key(request.path, request.query))
    sim.remember_next(_page_key(target.path, target.query), page + 1)


def _page_key(path: str, query: Mapping[str, str]) -> str:
    # A request by path, filters and position: a retry of page 3 is page 3.
    return path + "?" + "&".join(k + "=" + v for k, v in sorted(query.items()))


def _json(body: object) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    error_code: str | None = None,
) -> web.Response:
    body = {
        "status": status,
        "error_code": error_code or _ERROR_CODES.get(status, "ERROR"),
        "message": message,
    }
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers or {},
    )


_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
}
