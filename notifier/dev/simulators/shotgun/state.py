"""A fake of Shotgun's ``GET /tickets`` faithful to its public documentation: its state.

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.dev.simulators.common import PageBook, request_log
from notifier.dev.simulators.faults import FaultQueue
from notifier.dev.simulators.shotgun.seeding import seed_ticket
from notifier.dev.simulators.shotgun.wire import (
    Event,
    Query,
    SeenRequest,
    Ticket,
    contact_wire,
    event_wire,
    ticket_wire,
)
from notifier.timeparse import format_shotgun_time

__all__ = ["PAGE_SIZE", "ShotgunSimulator"]

# Shotgun Tickets API, "Ordering & pagination": "Pages contain at most 100 tickets".
PAGE_SIZE = 100
_TICK = timedelta(microseconds=1)
_FIRST_TICKET_ID = 69_246_800
_FIRST_ORDER_ID = 51_000_000

Clock = Callable[[], datetime]


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
        self.seen: deque[SeenRequest] = request_log()
        self._tokens: dict[str, int] = {}
        self._events: dict[int, Event] = {}
        self._tickets: dict[int, Ticket] = {}
        self._index = _Index()
        self._last_tick: datetime | None = None
        self._next_ticket_id = _FIRST_TICKET_ID
        self._next_order_id = _FIRST_ORDER_ID
        self._next_event_id = 410_000
        self.pages = PageBook()

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
        self._events[event_id] = Event(
            organizer_id, frozenset(cohost_ids), event_wire(event_id, now, start, end_time)
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
        wire = ticket_wire(ticket_id, now)
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
        wire.update(contact_wire(ticket_id, first_name, last_name, email, phone))
        self._tickets[ticket_id] = Ticket(event_id, now, wire)
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
        contact = contact_wire(ticket_id + 7, first_name, last_name, email, phone)
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
        return [seed_ticket(self, rng, rng.choice(events)) for _ in range(n_tickets)]

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

    # -- internals

    def _visible(self, ticket: Ticket, query: Query) -> bool:
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

    def _touch(self, ticket: Ticket, when: datetime) -> None:
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
