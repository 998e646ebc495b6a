"""A fake of Eventpop's public API, faithful to its Swagger file (docs/design.md §5).

Serves ``GET /api/public/organizers/{org}/events/{event}/tickets`` (``organizer`` scope),
``GET /api/public/organizers/{org}/tickets`` (the token user's own tickets, ``public``
scope) and ``POST /oauth/token`` (refresh-token grant). State lives in memory in
``EventpopSimulator`` and is driven from Python (create, use, unuse, revoke, transfer).

Choices where the real API is undocumented (providers-research §5), each the harder
case for a client:
- ``updated_after`` / ``updated_before`` are *exclusive* (``inclusive_bounds=True``
  flips both), and times are stored to the microsecond but rendered to the millisecond
  with a +07:00 offset (Rails' default JSON for a Bangkok app: an inference), so a
  client that pages on the rendered time meets ties and truncation.
- Paging is by ``page`` offset over a live ordering: a ticket updated between two pages
  moves, shifting the others, exactly the instability a client must survive.
  ``on_page_served`` lets a test mutate tickets between pages.
- ``per_page`` defaults to 10 and is capped at 100 (the cap is echoed in ``per_page``).
- Access tokens expire ``expires_in`` (7200 s) after issue by the injectable clock; a
  refresh rotates the refresh token (the old one is dead at once).
- An offset-less time in a query is read as Bangkok time, as Rails does with its zone.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from aiohttp import web

from notifier.simulators.faults import Fault, FaultQueue, fault_response
from notifier.simulators.serving import start_app

__all__ = [
    "EventpopSimulator",
    "Fault",
    "FaultQueue",
    "PageServed",
    "SeenRequest",
    "TicketQuery",
    "build_app",
    "serve",
]

API_PREFIX = "/api/public"
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
TOKEN_LIFETIME = 7200
BANGKOK = timezone(timedelta(hours=7), "ICT")  # no DST in Thailand: a fixed offset is exact
ORDER_FIELDS = ("id", "created_at", "updated_at", "used_at", "reference_code")
USER_ORDER_FIELDS = ("id", "created_at", "updated_at", "used_at")
_TICK = timedelta(microseconds=1)

Clock = Callable[[], datetime]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the simulator saw of one request (to assert, e.g., no token in the query)."""

    method: str
    path: str
    query: dict[str, str]
    bearer: bool
    token_in_query: bool


@dataclass(frozen=True, slots=True)
class PageServed:
    """A tickets page just answered: which path, its page of the read, the ids on it."""

    path: str
    read_page: int
    ticket_ids: tuple[int, ...]


@dataclass(slots=True)
class _Token:
    user_id: int
    scopes: frozenset[str]
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    user_id: int
    scopes: frozenset[str]


@dataclass(slots=True)
class _TicketType:
    id: int
    name: str
    satangs: int

    def wire(self) -> dict[str, Any]:
        # The spec types id and price_satangs as strings; a real client sees numbers:
        # we follow the spec, the adapter accepts both.
        return {
            "id": str(self.id),
            "name": self.name,
            "price": _baht(self.satangs),
            "price_satangs": str(self.satangs),
            "kind": "free" if self.satangs == 0 else "paid",
        }


@dataclass(slots=True)
class _Ticket:
    id: int
    event_id: int
    order_id: int
    user_id: int | None
    ticket_type: _TicketType
    reference_code: str
    created_at: datetime
    updated_at: datetime
    status: str = "active"
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    phone: str | None = None
    kind: str = "normal"
    external_id: str | None = None
    revoke_note: str | None = None
    used_at: datetime | None = None
    registered_at: datetime | None = None

    def wire(self) -> dict[str, Any]:
        """The ticket as ``PublicAPI_Entities_Ticket`` renders it (nil fields as null)."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "event_id": self.event_id,
            "status": self.status,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "phone": self.phone,
            "email": self.email,
            "reference_code": self.reference_code,
            "kind": self.kind,
            "external_id": self.external_id,
            "revoke_note": self.revoke_note,
            "ticket_type": self.ticket_type.wire(),
            "price_label": "Free"
            if self.ticket_type.satangs == 0
            else _baht(self.ticket_type.satangs),
            "forms": [],
            "created_at": render_time(self.created_at),
            "updated_at": render_time(self.updated_at),
            "used_at": render_time(self.used_at),
            "registered_at": render_time(self.registered_at),
        }


def render_time(moment: datetime | None) -> str | None:
    """Eventpop-style time: ISO 8601, milliseconds, Bangkok offset (µs are truncated)."""
    if moment is None:
        return None
    return moment.astimezone(BANGKOK).isoformat(timespec="milliseconds")


def _baht(satangs: int) -> str:
    return "฿" + f"{satangs / 100:,.2f}"


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """A parsed tickets request."""

    order_by: str = "id"
    descending: bool = False
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    statuses: frozenset[str] | None = None
    ticket_type_id: int | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    min_id: int | None = None
    max_id: int | None = None


# --------------------------------------------------------------------------- state


class EventpopSimulator:
    """The in-memory Eventpop: organizers, tokens, events, tickets, and the request log."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        inclusive_bounds: bool = False,
        expires_in: int = TOKEN_LIFETIME,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.inclusive_bounds = inclusive_bounds
        self.expires_in = expires_in
        self.faults = FaultQueue()  # for the tickets endpoints
        self.token_faults = FaultQueue()  # for POST /oauth/token
        self.on_page_served: Callable[[PageServed], None] | None = None
        self.requests_served = 0
        self.seen: deque[SeenRequest] = deque(maxlen=10_000)
        self.refreshes = 0
        self._organizers: dict[int, set[int]] = {}  # organizer id -> member user ids
        self._events: dict[int, int] = {}  # event id -> organizer id
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._clients: dict[str, str] = {}
        self._tickets: dict[int, _Ticket] = {}
        self._read_pages: dict[str, int] = {}
        self._last_tick: datetime | None = None
        self._next_ids = {"ticket": 8_800_000, "order": 4_400_000, "event": 71_000, "user": 500}

    # -- control API: organizers, tokens, clients

    def add_organizer(
        self,
        organizer_id: int,
        token: str,
        scopes: Iterable[str] = ("organizer", "public"),
        *,
        user_id: int | None = None,
        refresh_token: str | None = None,
        client_id: str | None = None,
    ) -> int:
        """An organizer with a member user holding ``token``; returns the user id."""
        user = user_id if user_id is not None else self._new_id("user")
        self._organizers.setdefault(organizer_id, set()).add(user)
        self._issue(token, user, frozenset(scopes))
        if refresh_token is not None:
            self._refresh_tokens[refresh_token] = _Grant(client_id or "", user, frozenset(scopes))
        return user

    def add_user_token(self, token: str, user_id: int, scopes: Iterable[str] = ("public",)) -> None:
        """A token of a user who is not an organizer member (a ticket buyer)."""
        self._issue(token, user_id, frozenset(scopes))

    def add_client(self, client_id: str, client_secret: str) -> None:
        self._clients[client_id] = client_secret

    def expire_token(self, token: str) -> None:
        """The access token stops working now (as if its two hours had passed)."""
        self._tokens[token].expires_at = self._clock() - _TICK

    def token_valid(self, token: str) -> bool:
        return self._token(token) is not None

    # -- control API: events and tickets

    def add_event(self, organizer_id: int, event_id: int | None = None) -> int:
        if organizer_id not in self._organizers:
            raise KeyError(organizer_id)
        event = event_id if event_id is not None else self._new_id("event")
        self._events[event] = organizer_id
        return event

    def create_ticket(
        self,
        event_id: int,
        *,
        firstname: str | None = "Somchai",
        lastname: str | None = "Jaidee",
        email: str | None = "somchai@example.co.th",
        phone: str | None = None,
        user_id: int | None = None,
        ticket_type: tuple[int, str, int] = (4521, "General Admission", 150_000),
        kind: str = "normal",
        external_id: str | None = None,
    ) -> int:
        """Issue an active ticket on ``event_id``; ``ticket_type`` is (id, name, satangs)."""
        if event_id not in self._events:
            raise KeyError(event_id)
        now = self._tick()
        ticket_id = self._new_id("ticket")
        self._tickets[ticket_id] = _Ticket(
            id=ticket_id,
            event_id=event_id,
            order_id=self._new_id("order"),
            user_id=user_id,
            ticket_type=_TicketType(*ticket_type),
            reference_code=_reference_code(ticket_id),
            created_at=now,
            updated_at=now,
            firstname=firstname,
            lastname=lastname,
            email=email,
            phone=phone,
            kind=kind,
            external_id=external_id,
        )
        return ticket_id

    def use(self, ticket_id: int, at: datetime | None = None) -> None:
        """Check the ticket in; ``at`` back-dates ``used_at`` (offline scanners sync late)."""
        now = self._update(ticket_id, status="used")
        self._tickets[ticket_id].used_at = at or now

    def unuse(self, ticket_id: int) -> None:
        """Revert a check-in (whether Eventpop allows it is unconfirmed; we allow it)."""
        self._update(ticket_id, status="active", used_at=None)

    def revoke(self, ticket_id: int, note: str = "cancelled by organizer") -> None:
        """What ``POST .../tickets/invalidate`` does; refused for used or revoked tickets."""
        if self._tickets[ticket_id].status in ("used", "revoked"):
            raise ValueError("ticket " + str(ticket_id) + " cannot be revoked (422)")
        self._update(ticket_id, status="revoked", revoke_note=note)

    def transfer(
        self, ticket_id: int, name: str, email: str | None, phone: str | None = None
    ) -> None:
        """Give the ticket to another holder; ``name`` is the full name."""
        first, _, last = name.strip().partition(" ")
        self._update(ticket_id, firstname=first, lastname=last or None, email=email, phone=phone)

    def register(self, ticket_id: int) -> None:
        self._update(ticket_id, registered_at=self._clock())

    def set_status(self, ticket_id: int, status: str) -> None:
        """Any raw status, including ones the spec does not list."""
        self._update(ticket_id, status=status)

    def touch(self, *ticket_ids: int, at: datetime | None = None) -> datetime:
        """Give several tickets one identical update time (a bulk ``update_all``)."""
        when = at or self._tick()
        for ticket_id in ticket_ids:
            self._tickets[ticket_id].updated_at = when
        return when

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket exactly as the API renders it."""
        return self._tickets[ticket_id].wire()

    def seed(self, event_id: int, n_tickets: int, rng_seed: int = 0) -> list[int]:
        """Realistic data on ``event_id``: Thai names, three ticket types, mixed states."""
        rng = random.Random(rng_seed)
        return [_seed_ticket(self, rng, event_id) for _ in range(n_tickets)]

    # -- reading (used by the HTTP handlers)

    def authorize(self, token: str | None) -> _Token | None:
        return None if token is None else self._token(token)

    def has_organizer(self, organizer_id: int) -> bool:
        return organizer_id in self._organizers

    def is_member(self, organizer_id: int, user_id: int) -> bool:
        return user_id in self._organizers.get(organizer_id, set())

    def event_organizer(self, event_id: int) -> int | None:
        return self._events.get(event_id)

    def select(
        self,
        query: TicketQuery,
        *,
        event_id: int | None = None,
        organizer_id: int | None = None,
        user_id: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching tickets in the requested order, and the total matching."""
        rows = [
            t
            for t in self._tickets.values()
            if self._matches(t, query, event_id, organizer_id, user_id)
        ]
        rows.sort(key=lambda t: _sort_key(t, query.order_by), reverse=query.descending)
        start = (query.page - 1) * query.per_page
        return [t.wire() for t in rows[start : start + query.per_page]], len(rows)

    def read_page(self, path: str) -> int:
        """Which page of a read a request is: 1 + full pages served on ``path`` since a short."""
        return self._read_pages.get(path, 0) + 1

    def page_served(self, path: str, ids: tuple[int, ...], *, full: bool) -> None:
        page = self.read_page(path)
        self._read_pages[path] = page if full else 0
        if self.on_page_served is not None:
            self.on_page_served(PageServed(path, page, ids))

    def refresh(self, form: dict[str, str]) -> dict[str, Any] | tuple[int, str]:
        """The refresh-token grant: a token response, or (status, OAuth error code)."""
        client_id = form.get("client_id", "")
        secret = self._clients.get(client_id)
        if secret is None or not secrets.compare_digest(secret, form.get("client_secret", "")):
            return 401, "invalid_client"
        if form.get("grant_type") != "refresh_token":
            return 400, "unsupported_grant_type"
        grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id not in ("", client_id):
            return 400, "invalid_grant"
        del self._refresh_tokens[form["refresh_token"]]  # rotation: single use
        return self._token_response(_Grant(client_id, grant.user_id, grant.scopes))

    # -- internals

    def _token_response(self, grant: _Grant) -> dict[str, Any]:
        access, rotated = secrets.token_hex(32), secrets.token_hex(32)
        self._issue(access, grant.user_id, grant.scopes)
        self._refresh_tokens[rotated] = grant
        self.refreshes += 1
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": rotated,
            "scope": " ".join(sorted(grant.scopes)),
            "created_at": int(self._clock().timestamp()),
        }

    def _issue(self, token: str, user_id: int, scopes: frozenset[str]) -> None:
        expires_at = self._clock() + timedelta(seconds=self.expires_in)
        self._tokens[token] = _Token(user_id, scopes, expires_at)

    def _token(self, token: str) -> _Token | None:
        found = self._tokens.get(token)
        if found is None or (found.expires_at is not None and self._clock() >= found.expires_at):
            return None
        return found

    def _matches(
        self,
        ticket: _Ticket,
        query: TicketQuery,
        event_id: int | None,
        organizer_id: int | None,
        user_id: int | None,
    ) -> bool:
        if event_id is not None and ticket.event_id != event_id:
            return False
        if organizer_id is not None and self._events.get(ticket.event_id) != organizer_id:
            return False
        if user_id is not None and ticket.user_id != user_id:
            return False
        return self._filters_match(ticket, query)

    def _filters_match(self, ticket: _Ticket, query: TicketQuery) -> bool:
        if query.statuses is not None and ticket.status not in query.statuses:
            return False
        if query.ticket_type_id is not None and ticket.ticket_type.id != query.ticket_type_id:
            return False
        if query.min_id is not None and ticket.id <= query.min_id:
            return False
        if query.max_id is not None and ticket.id >= query.max_id:
            return False
        return self._in_window(ticket.updated_at, query.updated_after, query.updated_before)

    def _in_window(self, moment: datetime, after: datetime | None, before: datetime | None) -> bool:
        if self.inclusive_bounds:
            return (after is None or moment >= after) and (before is None or moment <= before)
        return (after is None or moment > after) and (before is None or moment < before)

    def _update(self, ticket_id: int, **fields: Any) -> datetime:
        ticket = self._tickets[ticket_id]
        now = self._tick()
        for name, value in fields.items():
            setattr(ticket, name, value)
        ticket.updated_at = now
        return now

    def _tick(self) -> datetime:
        """Now, but strictly after the previous mutation so update order is total."""
        now = self._clock()
        if self._last_tick is not None and now <= self._last_tick:
            now = self._last_tick + _TICK
        self._last_tick = now
        return now

    def _new_id(self, kind: str) -> int:
        self._next_ids[kind] += 1
        return self._next_ids[kind]


def _sort_key(ticket: _Ticket, order_by: str) -> tuple[Any, ...]:
    # Ties break by id, as a database's primary key order usually does. Nulls sort last
    # in ascending order, as PostgreSQL does.
    if order_by == "id":
        return (ticket.id,)
    if order_by == "reference_code":
        return (ticket.reference_code, ticket.id)
    value: datetime | None = getattr(ticket, order_by)
    return (value is None, value or datetime.min.replace(tzinfo=UTC), ticket.id)


def _reference_code(ticket_id: int) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code, number = "", ticket_id * 2_654_435_761 % (32**6)
    for _ in range(6):
        number, digit = divmod(number, 32)
        code += alphabet[digit]
    return code


_FIRST_NAMES = ("Somchai", "Suda", "Niran", "Ploy", "Anan", "Kanya", "Wichai", "Mali", "Krit")
_LAST_NAMES = ("Jaidee", "Srisuk", "Wongsawat", "Chaiyaporn", "Rattanakul", "Boonmee")
_TYPES = (
    (4521, "Early Bird", 90_000),
    (4522, "General Admission", 150_000),
    (4523, "VIP", 450_000),
)


def _seed_ticket(sim: EventpopSimulator, rng: random.Random, event_id: int) -> int:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    ticket_id = sim.create_ticket(
        event_id,
        firstname=first,
        lastname=last,
        email=(first + "." + last + "@example.co.th").lower(),
        phone=rng.choice([None, "08" + str(rng.randrange(10_000_000, 99_999_999))]),
        ticket_type=rng.choice(_TYPES),
    )
    roll = rng.random()
    if roll < 0.3:
        sim.use(ticket_id)
    elif roll < 0.34:
        sim.revoke(ticket_id, "refunded")
    elif roll < 0.5:
        sim.register(ticket_id)
    return ticket_id


# --------------------------------------------------------------------------- HTTP


_SIM_KEY: web.AppKey[EventpopSimulator] = web.AppKey("eventpop_simulator", EventpopSimulator)


def build_app(sim: EventpopSimulator) -> web.Application:
    """The aiohttp application serving the tickets endpoints and ``/oauth/token``."""
    app = web.Application()
    app[_SIM_KEY] = sim
    app.router.add_get(
        API_PREFIX + "/organizers/{organizer_id}/events/{event_id}/tickets", _event_tickets
    )
    app.router.add_get(API_PREFIX + "/organizers/{organizer_id}/tickets", _user_tickets)
    app.router.add_post("/oauth/token", _oauth_token)
    return app


async def serve(sim: EventpopSimulator, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


async def _event_tickets(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    refused = await _admit(request, sim, "organizer")
    if isinstance(refused, web.Response):
        return refused
    organizer_id, event_id = _path_int(request, "organizer_id"), _path_int(request, "event_id")
    if organizer_id is None or event_id is None or sim.event_organizer(event_id) != organizer_id:
        return _error(404, "Event not found")
    if not sim.is_member(organizer_id, refused.user_id):
        return _error(
            403, "Forbidden - Organizer scope required or application not owned by organizer"
        )
    query = _parse_query(request, ORDER_FIELDS, filters=True)
    if isinstance(query, web.Response):
        return query
    rows, total = sim.select(query, event_id=event_id)
    return _page(request, sim, query, rows, total)


async def _user_tickets(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    refused = await _admit(request, sim, "public")
    if isinstance(refused, web.Response):
        return refused
    organizer_id = _path_int(request, "organizer_id")
    if organizer_id is None or not sim.has_organizer(organizer_id):
        return _error(401, "Unauthorized - Invalid user token or organizer mismatch")
    query = _parse_query(request, USER_ORDER_FIELDS, filters=False)
    if isinstance(query, web.Response):
        return query
    rows, total = sim.select(query, organizer_id=organizer_id, user_id=refused.user_id)
    return _page(request, sim, query, rows, total)


async def _admit(request: web.Request, sim: EventpopSimulator, scope: str) -> _Token | web.Response:
    """Log the request, fire a scripted fault, check the token: the token or a refusal."""
    sim.requests_served += 1
    header = request.headers.get("Authorization", "")
    bearer = header.startswith("Bearer ")
    query_token = request.query.get("access_token")
    sim.seen.append(
        SeenRequest(
            request.method, request.path, dict(request.query), bearer, query_token is not None
        )
    )
    fault = sim.faults.take(sim.read_page(request.path))
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    # Like the real API, a query token is accepted; the log above records that it came.
    token = sim.authorize(header[len("Bearer ") :].strip() if bearer else query_token)
    if token is None:
        return _error(
            401,
            "Unauthorized",
            {"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'},
        )
    if scope not in token.scopes:
        return _error(403, "Forbidden - Missing " + scope + " scope")
    return token


def _page(
    request: web.Request,
    sim: EventpopSimulator,
    query: TicketQuery,
    rows: list[dict[str, Any]],
    total: int,
) -> web.Response:
    body = {
        "success": True,
        "tickets": rows,
        "count": len(rows),
        "total": total,
        "page": query.page,
        "per_page": query.per_page,
    }
    response = web.Response(body=orjson.dumps(body), content_type="application/json")
    # After rendering: a mutation here shows on the *next* page, as between real requests.
    sim.page_served(
        request.path, tuple(row["id"] for row in rows), full=len(rows) == query.per_page
    )
    return response


def _parse_query(
    request: web.Request, order_fields: tuple[str, ...], *, filters: bool
) -> TicketQuery | web.Response:
    params = request.query
    order_by, order = params.get("order_by", "id"), params.get("order", "asc")
    if order_by not in order_fields:
        return _error(400, "order_by does not have a valid value")
    if order not in ("asc", "desc"):
        return _error(400, "order does not have a valid value")
    try:
        base = TicketQuery(
            order_by=order_by,
            descending=order == "desc",
            page=max(_int(params.get("page")) or 1, 1),
            per_page=min(max(_int(params.get("per_page")) or DEFAULT_PER_PAGE, 1), MAX_PER_PAGE),
        )
        return _with_filters(base, params) if filters else base
    except ValueError:
        return _error(400, "invalid parameter")


def _with_filters(base: TicketQuery, params: Any) -> TicketQuery:
    status = params.get("status")
    return TicketQuery(
        order_by=base.order_by,
        descending=base.descending,
        page=base.page,
        per_page=base.per_page,
        statuses=None if not status else frozenset(s.strip() for s in status.split(",")),
        ticket_type_id=_int(params.get("ticket_type_id")),
        updated_after=_query_time(params.get("updated_after")),
        updated_before=_query_time(params.get("updated_before")),
        min_id=_int(params.get("min_id")),
        max_id=_int(params.get("max_id")),
    )


def _int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


def _query_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace(" ", "+")  # a "+" sent unescaped arrives as a space
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=BANGKOK)  # Rails reads it in the app's zone
    return parsed.astimezone(UTC)


def _path_int(request: web.Request, name: str) -> int | None:
    try:
        return int(request.match_info[name])
    except ValueError:
        return None


async def _oauth_token(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    form = {name: str(value) for name, value in (await request.post()).items()}
    sim.seen.append(
        SeenRequest(
            request.method,
            request.path,
            dict(request.query),
            False,
            "access_token" in request.query,
        )
    )
    fault = sim.token_faults.take(1)
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    answer = sim.refresh(form)
    if isinstance(answer, tuple):
        status, code = answer
        body = {"error": code, "error_description": "The provided authorization grant is invalid."}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
    return web.Response(
        body=orjson.dumps(answer),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"success": False, "error": message})
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )
