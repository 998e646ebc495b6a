"""The in-memory Eventpop behind the simulator's HTTP app, driven from Python.

Sources per behaviour are cited where it is defined (see ``records`` for the list);
``# Assumption:`` marks what no source gives.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.dev.simulators.common import request_log
from notifier.dev.simulators.eventpop.records import (
    Event,
    PageServed,
    SeenRequest,
    Ticket,
    TicketQuery,
    TicketType,
    reference_code,
    sort_key,
)
from notifier.dev.simulators.eventpop.tokens import (
    TOKEN_LIFETIME,
    Grant,
    OAuthAnswer,
    Token,
    TokenIssuer,
)
from notifier.dev.simulators.faults import FaultQueue

Clock = Callable[[], datetime]
_TICK = timedelta(microseconds=1)


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
        # Assumption: whether updated_after / updated_before are inclusive is undocumented;
        # exclusive is the default (inclusive_bounds=True flips both).
        self.inclusive_bounds = inclusive_bounds
        self.tokens = TokenIssuer(self._clock, expires_in)
        self.faults = FaultQueue()  # for the API endpoints (a test tool, not a behaviour)
        self.token_faults = FaultQueue()  # for POST /oauth/token
        self.on_page_served: Callable[[PageServed], None] | None = None
        self.requests_served = 0
        self.seen: deque[SeenRequest] = request_log()
        self._organizers: dict[int, set[int]] = {}  # organizer id -> member user ids
        self._events: dict[int, Event] = {}
        self._tickets: dict[int, Ticket] = {}
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
        self.tokens.issue(token, user, frozenset(scopes), client_id or "")
        if refresh_token is not None:
            self.tokens.add_refresh_token(
                refresh_token, Grant(client_id or "", user, frozenset(scopes))
            )
        return user

    def add_user_token(self, token: str, user_id: int, scopes: Iterable[str] = ("public",)) -> None:
        """A token of a user who is not an organizer member (a ticket buyer)."""
        self.tokens.issue(token, user_id, frozenset(scopes))

    def add_client(self, client_id: str, client_secret: str, *, owner: int | None = None) -> None:
        """An API application; ``owner`` is the organizer owning it (needed to list events)."""
        self.tokens.add_client(client_id, client_secret, owner=owner)

    def expire_token(self, token: str) -> None:
        """The access token stops working now (as if its two hours had passed)."""
        self.tokens.expire(token)

    def token_valid(self, token: str) -> bool:
        return self.tokens.find(token) is not None

    @property
    def refreshes(self) -> int:
        return self.tokens.refreshes

    @property
    def expires_in(self) -> int:
        return self.tokens.expires_in

    @expires_in.setter
    def expires_in(self, seconds: int) -> None:
        self.tokens.expires_in = seconds

    # -- control API: events and tickets

    def add_event(
        self,
        organizer_id: int,
        event_id: int | None = None,
        *,
        title: str = "Event",
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        status: str = "active",
    ) -> int:
        if organizer_id not in self._organizers:
            raise KeyError(organizer_id)
        event = event_id if event_id is not None else self._new_id("event")
        now = self._tick()
        # Swagger types start_at and end_at as strings (never null): an event without
        # given times opens a week from now and lasts four hours.
        start = start_at if start_at is not None else now + timedelta(days=7)
        end = end_at if end_at is not None else max(start, now) + timedelta(hours=4)
        self._events[event] = Event(event, organizer_id, title, now, now, start, end, status)
        return event

    def end_event(self, event_id: int, at: datetime | None = None) -> None:
        """The event is over: ``end_at`` (now unless given) and status "ended" (Swagger)."""
        event = self._events[event_id]
        event.end_at = at or self._clock()
        event.status = "ended"
        event.updated_at = self._tick()

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
        self._tickets[ticket_id] = Ticket(
            id=ticket_id,
            event_id=event_id,
            order_id=self._new_id("order"),
            user_id=user_id,
            ticket_type=TicketType(*ticket_type),
            reference_code=reference_code(ticket_id),
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
        """Check the ticket in (Swagger: status "used", ``used_at`` the check-in time);
        ``at`` back-dates ``used_at`` (offline scanners sync late, docs/providers.md)."""
        now = self._update(ticket_id, status="used")
        self._tickets[ticket_id].used_at = at or now

    def unuse(self, ticket_id: int) -> None:
        """Revert a check-in.

        Assumption: whether Eventpop allows un-using a ticket is unconfirmed; allowing it
        is the harder case for a client (a check-in undone).
        """
        self._update(ticket_id, status="active", used_at=None)

    def revoke(self, ticket_id: int, note: str = "cancelled by organizer") -> None:
        """What ``POST .../tickets/invalidate`` does (Swagger): status revoked with the
        reason in ``revoke_note``; refused (422) for used or revoked tickets."""
        if self._tickets[ticket_id].status in ("used", "revoked"):
            raise ValueError("ticket " + str(ticket_id) + " cannot be revoked (422)")
        self._update(ticket_id, status="revoked", revoke_note=note)

    def transfer(
        self, ticket_id: int, name: str, email: str | None, phone: str | None = None
    ) -> None:
        """Give the ticket to another holder (Swagger: firstname, lastname, email, phone
        of the same ticket id); ``name`` is the full name."""
        first, _, last = name.strip().partition(" ")
        self._update(ticket_id, firstname=first, lastname=last or None, email=email, phone=phone)

    def register(self, ticket_id: int) -> None:
        self._update(ticket_id, registered_at=self._clock())  # Swagger: registered_at

    def set_status(self, ticket_id: int, status: str) -> None:
        """Any raw status: Swagger lists only examples ("e.g. active, used, revoked")."""
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
        from notifier.dev.simulators.eventpop.seeding import seed_ticket

        rng = random.Random(rng_seed)
        return [seed_ticket(self, rng, event_id) for _ in range(n_tickets)]

    # -- reading (used by the HTTP handlers)

    def authorize(self, token: str | None) -> Token | None:
        return None if token is None else self.tokens.find(token)

    def refresh(self, form: dict[str, str]) -> OAuthAnswer:
        return self.tokens.answer(form)

    def has_organizer(self, organizer_id: int) -> bool:
        return organizer_id in self._organizers

    def is_member(self, organizer_id: int, user_id: int | None) -> bool:
        return user_id in self._organizers.get(organizer_id, set())

    def event_organizer(self, event_id: int) -> int | None:
        event = self._events.get(event_id)
        return None if event is None else event.organizer_id

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
        return _page_of(rows, query)

    def select_events(
        self, query: TicketQuery, organizer_id: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the organizer's events, every status (Swagger: "events owned by the
        specified organizer"), in the requested order, and the total."""
        rows = [e for e in self._events.values() if e.organizer_id == organizer_id]
        return _page_of(rows, query)

    def read_page(self, path: str) -> int:
        """Which page of a read a request is: 1 + full pages served on ``path`` since a short."""
        return self._read_pages.get(path, 0) + 1

    def page_served(self, path: str, ids: tuple[int, ...], *, full: bool) -> None:
        page = self.read_page(path)
        self._read_pages[path] = page if full else 0
        if self.on_page_served is not None:
            self.on_page_served(PageServed(path, page, ids))

    # -- internals

    def _matches(
        self,
        ticket: Ticket,
        query: TicketQuery,
        event_id: int | None,
        organizer_id: int | None,
        user_id: int | None,
    ) -> bool:
        if event_id is not None and ticket.event_id != event_id:
            return False
        if organizer_id is not None and self.event_organizer(ticket.event_id) != organizer_id:
            return False
        if user_id is not None and ticket.user_id != user_id:
            return False
        return self._filters_match(ticket, query)

    def _filters_match(self, ticket: Ticket, query: TicketQuery) -> bool:
        # Swagger filters: status (comma list), ticket_type_id, min_id ("greater than"),
        # max_id ("less than"), updated_after / updated_before.
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
        # Assumption: every change touches updated_at (Rails' timestamps; the Swagger only
        # says "Last update timestamp"), which the updated_after filter relies on.
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


def _page_of(rows: list[Any], query: TicketQuery) -> tuple[list[dict[str, Any]], int]:
    # Paging by page offset over a live ordering (Swagger: page, per_page): a row updated
    # between two requests moves and shifts the others, as a real OFFSET query does.
    rows.sort(key=lambda row: sort_key(row, query.order_by), reverse=query.descending)
    start = (query.page - 1) * query.per_page
    return [row.wire() for row in rows[start : start + query.per_page]], len(rows)
