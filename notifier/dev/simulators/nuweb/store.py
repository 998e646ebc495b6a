"""The Nuweb simulator's data and how it is read (the HTTP handlers' side).

Sourced behaviours the adapter depends on, each marked where it is implemented:
entry tickets' ``startTime`` "modified at or after" and ``listEndTime`` (admin OpenAPI,
GET /v1/entry/tickets); order items' ``lastUpdated`` "on or after" (GET /v1/order-items);
inventory's ``lastUpdated`` "updated after" on any associated record (GET /v1/event-tickets);
``withTrashed``; events ending in the future by default, ``endingAfter`` overriding it
(GET /v1/events); the 60 s cache of identical GETs (changelog, 9 March 2023).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.dev.simulators.common import RollingWindow, request_log
from notifier.dev.simulators.faults import FaultQueue
from notifier.dev.simulators.nuweb.records import (
    CACHED_PATHS,
    ENTRY_MAX,
    INVENTORY_MAX,
    ORDER_ITEMS_MAX,
    SPEC_LINK_ORIGIN,
    TICK,
    EntryTicket,
    EventRow,
    OrderItemQuery,
    OrderItemRow,
    SaleItem,
    SeenRequest,
)
from notifier.timeparse import format_nuweb_time

__all__ = ["Clock", "NuwebStore"]

Clock = Callable[[], datetime]
# Assumption: an event added without times runs from an hour ago for the next twelve.
DEFAULT_EVENT_START = timedelta(hours=-1)
DEFAULT_EVENT_LENGTH = timedelta(hours=12)


class NuwebStore:
    """The in-memory Nuweb: companies, events, sale items, entry tickets, request log."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int = 60,
        window_seconds: float = 60.0,
        cached_paths: Iterable[str] = CACHED_PATHS,
        cache_seconds: float = 60.0,
        entry_page_size: int = ENTRY_MAX,
        inventory_page_size: int = INVENTORY_MAX,
        order_items_page_size: int = ORDER_ITEMS_MAX,
        link_origin: str | None = SPEC_LINK_ORIGIN,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        # Admin OpenAPI, rate limiting: "60 requests per minute" per company by default,
        # rolling, with ``X-Remaining-Requests`` and ``X-Available-In-Seconds`` on the answers.
        self.limiter = RollingWindow(rate_limit, window_seconds)
        self.cached_paths = frozenset(cached_paths)
        self.cache_seconds = cache_seconds
        self.entry_page_size = entry_page_size
        self.inventory_page_size = inventory_page_size
        self.order_items_page_size = order_items_page_size
        self.events_page_size = 100
        self.faults = FaultQueue()
        # Faults for one path only (e.g. order items failing while entry tickets answer).
        self.path_faults: dict[str, FaultQueue] = {}
        self.requests_served = 0
        self.rate_limited = 0
        self.seen: deque[SeenRequest] = request_log()
        # Where links point: the spec's own example origin by default, None for the origin
        # the request came to; ``next_origin`` overrides the next ``next`` link once.
        self.link_origin = link_origin
        self.next_origin: str | None = None
        # The status the deprecated /v1/event-tickets answers once "removed" (None: served).
        self.event_tickets_gone: int | None = None
        self._tokens: dict[str, list[int]] = {}
        self._events: dict[int, EventRow] = {}
        self._items: dict[int, SaleItem] = {}
        self._entries: dict[int, EntryTicket] = {}
        self._order_items: dict[int, OrderItemRow] = {}
        self._cache: dict[tuple[int, str], tuple[datetime, bytes]] = {}
        self._last_tick: datetime | None = None
        self._ids = {"event": 5, "item": 1, "entry": 1, "order": 1000}

    # -- control API: companies and events

    def add_company(self, company_id: int, token: str) -> None:
        self._tokens.setdefault(token, []).append(company_id)

    def add_event(
        self,
        company_id: int,
        event_id: int | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        name: str = "Harbour Nights",
    ) -> int:
        """An event of the company; returns its id."""
        event_id = event_id if event_id is not None else self._new_id("event")
        now = self._tick()
        start = start if start is not None else now + DEFAULT_EVENT_START
        end = end if end is not None else start + DEFAULT_EVENT_LENGTH
        self._events[event_id] = EventRow(company_id, name, start, end, now, now)
        return event_id

    def delete_event(self, event_id: int) -> None:
        """Soft-delete the event (``deletedAt``; listed only with ``withTrashed``)."""
        event = self._events[event_id]
        event.deleted_at = event.updated_at = self._tick()

    def retire_event_tickets(self, status: int = 404) -> None:
        """The deprecated /v1/event-tickets "will be removed in a future version of the
        API" (admin OpenAPI, GET /v1/event-tickets): from now on it answers ``status``."""
        self.event_tickets_gone = status

    def fail_path(self, path: str, *faults: object) -> None:
        """Queue faults for requests to ``path`` only."""
        queue = self.path_faults.setdefault(path, FaultQueue())
        queue.push(*faults)  # type: ignore[arg-type]

    # -- reading (used by the HTTP handlers)

    def now(self) -> datetime:
        return self._clock()

    def list_end_time(self) -> datetime:
        # Admin OpenAPI, ``startTime``: "you can use the listEndTime from the previous
        # response to retrieve the next set items". Assumption: it is the time of the
        # answer, strictly after every modification so far.
        return self._tick()

    def company_for(self, token: str, header: str | None) -> int | tuple[int, str]:
        """The company a request acts for, or the (status, message) refusing it."""
        companies = self._tokens.get(token)
        if not companies:
            return 401, "Unauthenticated."
        if header is None:
            # Admin OpenAPI: without X-NU-COMPANY-ID the user's "last selected company".
            return companies[0]
        if not header.isdigit() or int(header) not in companies:
            return 403, "This action is unauthorized."
        return int(header)

    def sale_items(
        self, company: int, event_id: int | None, since: datetime | None, trashed: bool
    ) -> list[dict[str, Any]]:
        # Admin OpenAPI, GET /v1/event-tickets and /v1/sale-items: ``lastUpdated`` returns
        # items "who's associated database records (sale items, inventory item and
        # pricing) have been updated after" it: a sale (stock) counts, strictly after.
        # ``withTrashed=true`` includes deleted records.
        rows = [
            item.wire
            for item in sorted(self._items.values(), key=lambda i: i.wire["id"])
            if self._company_of(item.event_id) == company
            and (event_id is None or item.event_id == event_id)
            and (since is None or item.changed_at > since)
            and (trashed or "deletedAt" not in item.wire)
        ]
        return [dict(row) for row in rows]

    def entries(
        self, company: int, event_id: int, since: datetime | None
    ) -> list[tuple[int, EntryTicket]]:
        # Admin OpenAPI, GET /v1/entry/tickets: ``startTime`` lists tickets last modified
        # at or after it. Assumption: ordered by modification time, then id (the spec
        # states no order).
        rows = [
            (ticket_id, entry)
            for ticket_id, entry in self._entries.items()
            if entry.event_id == event_id
            and self._company_of(event_id) == company
            and (since is None or entry.modified_at >= since)
        ]
        return sorted(rows, key=lambda row: (row[1].modified_at, row[0]))

    def order_items(self, company: int, query: OrderItemQuery) -> list[tuple[int, OrderItemRow]]:
        # Assumption: ordered by id (the spec states no order); filters: ``OrderItemQuery``.
        return [
            (item_id, item)
            for item_id, item in sorted(self._order_items.items())
            if self._company_of(item.event_id) == company and query.admits(item)
        ]

    def has_event(self, event_id: int) -> bool:
        return event_id in self._events

    def cached(self, company: int, key: str) -> bytes | None:
        """The body served for an identical GET within ``cache_seconds`` (changelog, 9 March
        2023). Assumption: the cache is per company (the same URL for another company
        is another answer)."""
        hit = self._cache.get((company, key))
        if hit is None or (self.now() - hit[0]).total_seconds() >= self.cache_seconds:
            return None
        return hit[1]

    def store(self, company: int, key: str, body: bytes) -> None:
        self._cache[(company, key)] = (self.now(), body)

    def listed_events(
        self, company: int, ending_after: datetime | None, trashed: bool
    ) -> list[tuple[int, EventRow]]:
        """Admin OpenAPI, GET /v1/events: "ordered by ID ascending. By default, events that
        are set to end in the future are returned", unless ``endingAfter`` says otherwise."""
        bound = ending_after if ending_after is not None else self.now()
        return [
            (event_id, event)
            for event_id, event in sorted(self._events.items())
            if event.company == company
            and event.end > bound
            and (trashed or event.deleted_at is None)
        ]

    # -- internals

    def _company_of(self, event_id: int) -> int | None:
        event = self._events.get(event_id)
        return None if event is None else event.company

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
            now = self._last_tick + TICK
        self._last_tick = now
        return now

    def _new_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind] - 1
