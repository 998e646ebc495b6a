"""A fake of Shotgun's ``GET /tickets`` faithful to its public documentation.

Sources, cited at each behaviour below by these names:
- "Shotgun Tickets API": Shotgun's public "Tickets API" page (the ``/tickets`` endpoint,
  its query parameters, ordering and pagination, response shape and ticket fields);
- "observed behaviour": integrators' field notes, listed in docs/providers.md;
- "# Assumption:" marks what no source says; docs/providers.md lists them.

State lives in memory in ``ShotgunSimulator`` and is driven from Python (create, scan,
refund, resell, ...). ``faults`` scripts failures for the next requests.
"""

from __future__ import annotations

import bisect
import random
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from notifier.simulators.faults import Fault, FaultQueue, fault_response
from notifier.simulators.serving import start_app
from notifier.timeparse import format_shotgun_time, parse_timestamp

__all__ = [
    "Fault",
    "FaultQueue",
    "SeenRequest",
    "ShotgunSimulator",
    "build_app",
    "serve",
]

# Shotgun Tickets API, "Ordering & pagination": "Pages contain at most 100 tickets".
PAGE_SIZE = 100
_TICK = timedelta(microseconds=1)
_FIRST_TICKET_ID = 69_246_800
_FIRST_ORDER_ID = 51_000_000

Clock = Callable[[], datetime]


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert, e.g., no token in the query)."""

    path_qs: str
    query: dict[str, str]
    bearer: bool


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class _Event:
    organizer_id: int
    cohost_ids: frozenset[int]
    wire: dict[str, Any]


@dataclass(slots=True)
class _Ticket:
    event_id: int
    updated_at: datetime
    wire: dict[str, Any]

    @property
    def key(self) -> tuple[datetime, int]:
        return self.updated_at, int(self.wire["ticket_id"])


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed ``/tickets`` request."""

    organizer_id: int
    event_id: int | None
    cohosted: bool
    after: tuple[datetime, int] | None


@dataclass(slots=True)
class _Index:
    """Tickets sorted by (updated_at, id), rebuilt lazily after mutations."""

    keys: list[tuple[datetime, int]] = field(default_factory=list)
    dirty: bool = True


class ShotgunSimulator:
    """The in-memory Shotgun: organizers, events, tickets, and the request log."""

    def __init__(self, *, clock: Clock | None = None, page_size: int = PAGE_SIZE) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.page_size = page_size
        self.faults = FaultQueue()
        # A test hook, not a provider behaviour. One-shot: the next ``pagination.next`` link
        # points to this origin (a token thief).
        self.next_origin: str | None = None
        self.requests_served = 0
        self.seen: deque[SeenRequest] = deque(maxlen=10_000)
        self._tokens: dict[str, int] = {}
        self._events: dict[int, _Event] = {}
        self._tickets: dict[int, _Ticket] = {}
        self._index = _Index()
        self._last_tick: datetime | None = None
        self._next_ticket_id = _FIRST_TICKET_ID
        self._next_order_id = _FIRST_ORDER_ID
        self._next_event_id = 410_000
        self._pages: dict[str, int] = {}

    # -- control API: organizers and events

    def add_organizer(self, organizer_id: int, token: str) -> None:
        self._tokens[token] = organizer_id

    def add_event(
        self,
        organizer_id: int,
        event_id: int | None = None,
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        cohost_ids: Iterable[int] = (),
    ) -> int:
        """Create an event (times default to tomorrow 18:00 for 8 hours); returns its id."""
        if event_id is None:
            event_id = self._next_event_id
            self._next_event_id += 1
        now = self._tick()
        start = start_time or (now + timedelta(days=1)).replace(
            hour=18, minute=0, second=0, microsecond=0
        )
        self._events[event_id] = _Event(
            organizer_id, frozenset(cohost_ids), _event_wire(event_id, now, start, end_time)
        )
        return event_id

    def cancel_event(self, event_id: int) -> None:
        """The organizer cancels the event: ``event_canceled_at`` set on all its tickets.

        Shotgun Tickets API, ticket fields: every ticket carries ``event_canceled_at``, "the
        event cancelation date if the organizer cancels it".
        """
        # Assumption: cancelling the event changes neither its tickets' ``ticket_status``
        # nor their ``ticket_updated_at`` (the page does not say it does; the safer case,
        # since an ``after`` read then never sees the cancellation).
        self._events[event_id].wire["event_canceled_at"] = format_shotgun_time(self._tick())

    # -- control API: tickets

    def create_ticket(
        self,
        event_id: int,
        *,
        first_name: str | None = "Alex",
        last_name: str | None = "Martin",
        email: str | None = "alex.martin@example.com",
        phone: str | None = None,
        status: str = "valid",
        deal_id: int = 12_345_678,
        deal_title: str = "Early Bird",
        deal_sub_category: str | None = None,
        deal_price: int = 3999,
        currency: str = "eur",
        deal_channel: str = "online",
        order_id: int | None = None,
        user_id: int | None = None,
    ) -> int:
        """Issue a ticket on ``event_id``; returns the new ticket id."""
        if event_id not in self._events:
            raise KeyError(event_id)
        now = self._tick()
        ticket_id = self._new_ticket_id()
        wire = _ticket_wire(ticket_id, now)
        wire.update(
            ticket_status=status,
            deal_id=deal_id,
            deal_title=deal_title,
            deal_sub_category=deal_sub_category,
            deal_price=deal_price,
            currency=currency,
            deal_channel=deal_channel,
            order_id=order_id if order_id is not None else self._new_order_id(),
            user_id=user_id,
        )
        wire.update(_contact(ticket_id, first_name, last_name, email, phone))
        self._tickets[ticket_id] = _Ticket(event_id, now, wire)
        self._index.dirty = True
        return ticket_id

    def scan(self, ticket_id: int, at: datetime | None = None) -> None:
        """Check the ticket in; ``at`` back-dates the scan (offline scanners sync late).

        Shotgun Tickets API: ``ticket_scanned_at`` "when the ticket was scanned";
        ``ticket_updated_at`` "last time the ticket was updated".
        """
        # Assumption: a scan synced late keeps the scanner's time, not the sync's.
        now = self._tick()
        self._update(ticket_id, now, ticket_scanned_at=format_shotgun_time(at or now))

    def unscan(self, ticket_id: int) -> None:
        # Assumption: an undone scan sets ``ticket_scanned_at`` back to null (the page
        # documents null only for "not scanned").
        self._update(ticket_id, self._tick(), ticket_scanned_at=None)

    def refund(self, ticket_id: int) -> None:
        # Shotgun Tickets API: ``ticket_status`` "refunded". Assumption: a refund also sets
        # ``ticket_canceled_at`` (documented for cancelled tickets only).
        now = self._tick()
        self._update(
            ticket_id, now, ticket_status="refunded", ticket_canceled_at=format_shotgun_time(now)
        )

    def cancel(self, ticket_id: int) -> None:
        # Shotgun Tickets API: ``ticket_status`` "canceled"; ``ticket_canceled_at`` "if the
        # ticket was canceled, this is set to the cancelation date & time".
        now = self._tick()
        self._update(
            ticket_id, now, ticket_status="canceled", ticket_canceled_at=format_shotgun_time(now)
        )

    def resell(
        self,
        ticket_id: int,
        *,
        first_name: str | None,
        last_name: str | None,
        email: str | None,
        phone: str | None = None,
    ) -> int:
        """Mark the ticket resold and issue a replacement to the new holder; returns its id.

        Shotgun Tickets API: ``ticket_status`` "resold"; observed behaviour: "resold means
        another ticket has been issued to replace this one" (an integrator's notes).
        """
        original = self._tickets[ticket_id]
        self._update(ticket_id, self._tick(), ticket_status="resold")
        old = original.wire
        return self.create_ticket(
            original.event_id,
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            deal_id=old["deal_id"],
            deal_title=old["deal_title"],
            deal_sub_category=old["deal_sub_category"],
            deal_price=old["deal_price"],
            currency=old["currency"],
            deal_channel=old["deal_channel"],
        )

    def transfer(
        self,
        ticket_id: int,
        first_name: str | None,
        last_name: str | None,
        email: str | None,
        phone: str | None = None,
    ) -> None:
        """Give the same ticket to another holder (a new contact on the same ticket id)."""
        # Assumption: a name transfer changes the contact fields of the same ticket id and
        # moves ``ticket_updated_at`` (the page lists the contact fields only).
        contact = _contact(ticket_id + 7, first_name, last_name, email, phone)
        self._update(ticket_id, self._tick(), **contact)

    def approve(self, ticket_id: int) -> None:
        """A pending ticket (approval or payment plan) becomes valid."""
        # Shotgun Tickets API: statuses payment_plan_pending, pending_approval, valid,
        # rejected. Assumption: approval changes the status in place on the same ticket.
        self._require_status(ticket_id, {"pending_approval", "payment_plan_pending"})
        self._update(ticket_id, self._tick(), ticket_status="valid")

    def reject(self, ticket_id: int) -> None:
        self._require_status(ticket_id, {"pending_approval"})
        self._update(ticket_id, self._tick(), ticket_status="rejected")

    def change_deal(
        self, ticket_id: int, *, deal_id: int, deal_title: str, deal_price: int | None = None
    ) -> None:
        """Move a ticket to another deal (an upgrade, a swap).

        Shotgun Tickets API: ``deal_id`` "the organizer event ticket (product) ID",
        ``deal_title`` "the name of the ticket".
        """
        # Assumption: an upgrade keeps the ticket id and changes its deal fields in place,
        # moving ``ticket_updated_at`` (the page does not describe upgrades).
        fields: dict[str, Any] = {"deal_id": deal_id, "deal_title": deal_title}
        if deal_price is not None:
            fields["deal_price"] = deal_price
        self._update(ticket_id, self._tick(), **fields)

    def touch(self, *ticket_ids: int, at: datetime | None = None) -> datetime:
        """Give several tickets one identical update time (to exercise the id tie-breaker).

        Shotgun Tickets API: ``after`` "can also be a tuple of [date]_[ticket id] to specify
        from which ticket to start when multiple tickets have the exact same update date".
        """
        when = at or self._tick()
        for ticket_id in ticket_ids:
            self._touch(self._tickets[ticket_id], when)
        return when

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket exactly as the API would render it: the ticket, deal, order, event and
        contact fields of the Shotgun Tickets API's ticket table, in one flat object."""
        ticket = self._tickets[ticket_id]
        return {**ticket.wire, **self._events[ticket.event_id].wire}

    def seed(self, organizer_id: int, token: str, n_tickets: int, rng_seed: int = 0) -> list[int]:
        """Realistic data: an organizer with three events and ``n_tickets`` in mixed states."""
        rng = random.Random(rng_seed)
        self.add_organizer(organizer_id, token)
        events = [self.add_event(organizer_id) for _ in range(3)]
        return [_seed_ticket(self, rng, rng.choice(events)) for _ in range(n_tickets)]

    # -- reading (used by the HTTP handler)

    def organizer_for(self, token: str) -> int | None:
        return self._tokens.get(token)

    def select(self, query: Query, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` visible tickets strictly after ``query.after``, in API order.

        Shotgun Tickets API, "Ordering & pagination": "ordered by update date/time
        ascending, then ID ascending"; ``after`` returns "tickets updated after it".
        """
        keys = self._sorted_keys()
        start = 0 if query.after is None else bisect.bisect_right(keys, query.after)
        page: list[dict[str, Any]] = []
        for _, ticket_id in _islice_from(keys, start):
            ticket = self._tickets[ticket_id]
            if self._visible(ticket, query):
                page.append(self.ticket(ticket_id))
                if len(page) == limit:
                    break
        return page

    def page_number(self, key: str) -> int:
        """Which page of a read a request is: the one its ``next`` link led to, else 1."""
        return self._pages.get(key, 1)

    def page_served(self, key: str) -> None:
        # Forgotten once answered, so a later read starting at the same position is page 1
        # while a retry of a failed page still counts as that page.
        self._pages.pop(key, None)

    def remember_next(self, key: str, page: int) -> None:
        self._pages[key] = page

    # -- internals

    def _visible(self, ticket: _Ticket, query: Query) -> bool:
        # Shotgun Tickets API: ``event_id`` "if you only want the tickets for a given
        # event"; ``include_cohosted_events`` "set to 1 or true to include events of which
        # you are a cohost".
        if query.event_id is not None and ticket.event_id != query.event_id:
            return False
        event = self._events[ticket.event_id]
        if event.organizer_id == query.organizer_id:
            return True
        return query.cohosted and query.organizer_id in event.cohost_ids

    def _sorted_keys(self) -> list[tuple[datetime, int]]:
        if self._index.dirty:
            self._index.keys = sorted(ticket.key for ticket in self._tickets.values())
            self._index.dirty = False
        return self._index.keys

    def _tick(self) -> datetime:
        """Now, but strictly after the previous mutation so update order is total."""
        # Assumption: times are UTC (the page shows them without an offset), and no two
        # mutations share a microsecond unless ``touch`` makes them (the id tie-breaker).
        now = self._clock()
        if self._last_tick is not None and now <= self._last_tick:
            now = self._last_tick + _TICK
        self._last_tick = now
        return now

    def _touch(self, ticket: _Ticket, when: datetime) -> None:
        ticket.updated_at = when
        ticket.wire["ticket_updated_at"] = format_shotgun_time(when)
        self._index.dirty = True

    def _update(self, ticket_id: int, when: datetime, **fields: Any) -> None:
        ticket = self._tickets[ticket_id]
        ticket.wire.update(fields)
        self._touch(ticket, when)

    def _require_status(self, ticket_id: int, allowed: set[str]) -> None:
        status = self._tickets[ticket_id].wire["ticket_status"]
        if status not in allowed:
            raise ValueError("ticket " + str(ticket_id) + " is " + status)

    def _new_ticket_id(self) -> int:
        self._next_ticket_id += 1
        return self._next_ticket_id

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id


def _islice_from(keys: list[tuple[datetime, int]], start: int) -> Iterator[tuple[datetime, int]]:
    for position in range(start, len(keys)):
        yield keys[position]


def _event_wire(
    event_id: int, now: datetime, start: datetime, end: datetime | None
) -> dict[str, Any]:
    # Shotgun Tickets API, ticket fields event_*: times as "2025-06-07 18:00:00" (space,
    # optional microseconds, no offset).
    return {
        "event_id": event_id,
        "event_start_time": format_shotgun_time(start),
        "event_end_time": format_shotgun_time(end or start + timedelta(hours=8)),
        "event_created_at": format_shotgun_time(now - timedelta(days=30)),
        "event_published_at": format_shotgun_time(now - timedelta(days=29)),
        "event_launched_at": format_shotgun_time(now - timedelta(days=25)),
        "event_canceled_at": None,
    }


def _ticket_wire(ticket_id: int, now: datetime) -> dict[str, Any]:
    """Every documented field of a ticket (Shotgun Tickets API, ticket fields) except the
    event's and the contact's."""
    stamp = format_shotgun_time(now)
    return {
        "ticket_id": ticket_id,
        "ticket_scan_code": str(42_564_997_260_000 + ticket_id),
        "ticket_scanned_at": None,
        "ticket_updated_at": stamp,
        "ticket_canceled_at": None,
        "ticket_status": "valid",
        "ticket_seating": None,
        "user_id": None,
        "deal_visibilities": ["public"],
        "deal_service_fee": 99,
        "deal_user_service_fee": 0,
        "deal_producer_cost": 0,
        "deal_vat_rate": 0.055,
        "payment_method": "card",
        "utm_source": "shotgun",
        "utm_medium": "app",
        "ordered_at": stamp,
    }


def _contact(
    contact_id: int,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    phone: str | None,
) -> dict[str, Any]:
    return {
        "contact_id": contact_id + 100_000_000,
        "contact_email": email,
        "contact_phone": phone,
        "contact_first_name": first_name,
        "contact_last_name": last_name,
        "contact_gender": None,
        "contact_company_name": None,
        "contact_birthday": None,
        "contact_newsletter_optin": None,
        "contact_country": "France",
        "contact_postal_code": "31000",
        "contact_locality": "Toulouse",
    }


_FIRST_NAMES = ("Antoine", "Camille", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Inès")
_LAST_NAMES = ("Rousseau", "Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Simon", "Michel")
_DEALS = (
    (12_345_678, "Early Bird", 2999),
    (12_345_679, "Regular", 3999),
    (12_345_680, "VIP", 8999),
)


def _seed_ticket(sim: ShotgunSimulator, rng: random.Random, event_id: int) -> int:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    deal_id, title, price = rng.choice(_DEALS)
    status = rng.choices(["valid", "pending_approval", "payment_plan_pending"], [90, 5, 5])[0]
    ticket_id = sim.create_ticket(
        event_id,
        first_name=first,
        last_name=last,
        email=(first + "." + last + "@example.com").lower(),
        phone=rng.choice([None, "+3361234" + str(rng.randrange(1000, 9999))]),
        status=status,
        deal_id=deal_id,
        deal_title=title,
        deal_price=price,
        deal_channel=rng.choice(["online", "online", "online", "invitation"]),
        user_id=rng.randrange(40_000, 90_000),
    )
    _seed_history(sim, rng, ticket_id, status)
    return ticket_id


def _seed_history(sim: ShotgunSimulator, rng: random.Random, ticket_id: int, status: str) -> None:
    if status != "valid":
        return
    roll = rng.random()
    if roll < 0.3:
        sim.scan(ticket_id)
    elif roll < 0.34:
        sim.refund(ticket_id)
    elif roll < 0.36:
        sim.cancel(ticket_id)


# --------------------------------------------------------------------------- HTTP


_SIM_KEY: web.AppKey[ShotgunSimulator] = web.AppKey("shotgun_simulator", ShotgunSimulator)


def build_app(sim: ShotgunSimulator) -> web.Application:
    """The aiohttp application serving ``GET /tickets`` from ``sim``."""
    app = web.Application()
    app[_SIM_KEY] = sim
    app.router.add_get("/tickets", _tickets_handler)
    return app


async def serve(sim: ShotgunSimulator, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


async def _tickets_handler(request: web.Request) -> web.StreamResponse:
    # Shotgun Tickets API, "Endpoint URL": GET https://api.shotgun.live/tickets.
    sim = request.app[_SIM_KEY]
    sim.requests_served += 1
    token, bearer = _token_of(request)
    sim.seen.append(SeenRequest(request.path_qs, dict(request.query), bearer))
    page_key = _page_key(request)
    page = sim.page_number(page_key)
    fault = sim.faults.take(page)
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    organizer = None if token is None else sim.organizer_for(token)
    if organizer is None:
        # Assumption: an unknown or missing token is refused with 401 and a JSON body (the
        # page documents neither the status nor the body).
        return _error(401, "invalid or missing token")
    query = _parse_query(request)
    if isinstance(query, web.Response):
        return query
    response = _page_response(request, sim, query, organizer, page=page, token_in_query=not bearer)
    sim.page_served(page_key)
    return response


def _token_of(request: web.Request) -> tuple[str | None, bool]:
    # Shotgun Tickets API, "Authentication": an organizer adds the token "either as a
    # header (Authorization: Bearer [token]) or in the query string as token".
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip(), True
    return request.query.get("token"), False


def _page_key(request: web.Request) -> str:
    # Identifies a request by its filters and position, so a retry of page 3 is page 3.
    return _key_of(request.query.items())


def _key_of(query: Iterable[tuple[str, str]]) -> str:
    # Next links drop include_cohosted_events (see ``_next_url``): it is no part of a key.
    return "&".join(
        name + "=" + value
        for name, value in sorted(query)
        if name not in ("token", "include_cohosted_events")
    )


def _parse_query(request: web.Request) -> Query | web.Response:
    params = request.query
    if "organizer_id" not in params:
        # Shotgun Tickets API: organizer_id is "required". Assumption: without it, a 400.
        return _error(400, "organizer_id is required")
    try:
        return Query(
            organizer_id=int(params["organizer_id"]),
            event_id=int(params["event_id"]) if params.get("event_id") else None,
            cohosted=params.get("include_cohosted_events", "").lower() in ("1", "true"),
            after=_parse_after(params.get("after")),
        )
    except ValueError:
        return _error(400, "invalid parameter")


def _parse_after(value: str | None) -> tuple[datetime, int] | None:
    """``after`` as a sort key: a bare date is after every id at that instant.

    Shotgun Tickets API: ``after`` is an "ISO date" or "a tuple of [date]_[ticket id]".
    """
    if not value:
        return None
    stamp, sep, ticket_id = value.rpartition("_")
    if not sep:
        when = parse_timestamp(value)
        return None if when is None else (when, sys.maxsize)
    when = parse_timestamp(stamp)
    if when is None:
        raise ValueError("empty after")
    return when, int(ticket_id)


def _page_response(
    request: web.Request,
    sim: ShotgunSimulator,
    query: Query,
    organizer: int,
    *,
    page: int,
    token_in_query: bool,
) -> web.Response:
    # Observed behaviour: a valid token of another organizer is not refused, just empty
    # (HTTP 200 with 0 tickets; see docs/providers.md).
    rows = sim.select(query, sim.page_size) if organizer == query.organizer_id else []
    next_url = None
    # Shotgun Tickets API: "if the page is full, the result contains a link to the next
    # page for your convenience (in pagination.next)".
    if len(rows) == sim.page_size:
        after = rows[-1]["ticket_updated_at"] + "_" + str(rows[-1]["ticket_id"])
        next_url = _next_url(request, after, keep_token=token_in_query)
        if sim.next_origin is not None:
            next_url = str(URL(sim.next_origin).join(URL(next_url).relative()))
            sim.next_origin = None
        sim.remember_next(_page_key_of(next_url), page + 1)
    # Shotgun Tickets API, "Response shape": "your params, the pagination infos, and a list
    # of tickets in data". Assumption: ``next`` is null on the last page (the page says the
    # link is present only when the page is full).
    body = {"params": _echo_params(query), "pagination": {"next": next_url}, "data": rows}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _next_url(request: web.Request, after: str, *, keep_token: bool) -> str:
    # Shotgun Tickets API, the example response: pagination.next is an absolute URL that
    # keeps token, organizer_id and event_id, replaces ``after`` with the last ticket's
    # "<ticket_updated_at>_<ticket_id>", and drops include_cohosted_events although the
    # request (and the echoed params) had it.
    params = {
        name: value
        for name, value in request.query.items()
        if name not in ("after", "include_cohosted_events") and (keep_token or name != "token")
    }
    params["after"] = after
    base = request.url.with_query(None)
    return str(base.with_query(params))


def _page_key_of(url: str) -> str:
    return _key_of(URL(url).query.items())


def _echo_params(query: Query) -> dict[str, Any]:
    # Shotgun Tickets API, the example response: ``params`` echoes organizer_id, event_id
    # and include_cohosted_events (a boolean).
    params: dict[str, Any] = {"organizer_id": query.organizer_id}
    if query.event_id is not None:
        params["event_id"] = query.event_id
    params["include_cohosted_events"] = query.cohosted
    return params


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"error": message, "status": status})
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )
