"""One step's read of each Nuweb stream: the requests, their filters, what they yield.

- **Entry tickets** (admin OpenAPI, GET /v1/entry/tickets): ``startTime`` is "modified at
  or after"; ``listEndTime`` of the answer is fed back as the next ``startTime``. The
  first page's ``listEndTime`` is the earliest: changes made while we page fall after it
  and are read again next time, so that is the position a finished read commits.
- **Order items** (GET /v1/order-items): one stream for all followed events (``eventIds``,
  ``type`` ticket/season_ticket, ``withTrashed=true``: Nuweb's manual says cancelled items
  are "removed from the order", which we take as soft-deleted, hidden without it).
- **Inventory**: ``/v1/event-tickets`` (Nuweb API reference, "Retrieve Event Tickets";
  deprecated: "will be removed in a future
  version of the API. Please use the /sale-items endpoint for identical functionality")
  or ``/v1/sale-items``; ``lastUpdated`` is "updated after", ``withTrashed=true`` shows
  removed types. No ``page``/``offset`` on the first request: Nuweb then pages by offset.
- **Events** (GET /v1/events, ``events``): ``endingAfter`` now minus the close-out window,
  ``hideChildEvents=true`` (a child company's events are its own to follow).

Each read stops at its page cap and says where it resumes (``Resume``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.model import SourceId, TicketRecord, TicketTypeRecord
from notifier.providers.nuweb.cursor import Resume
from notifier.providers.nuweb.events import EVENTS_LIMIT, EventSpan, parse_events_page, shift
from notifier.providers.nuweb.orders import ENTRY_ITEM_TYPES, OrderItem, parse_order_items_page
from notifier.providers.nuweb.reads import Fetcher, read_pages
from notifier.providers.nuweb.wire import parse_entry_page, parse_inventory_page
from notifier.timeparse import format_nuweb_time

__all__ = [
    "ENTRY_PATH",
    "EVENTS_PATH",
    "INVENTORY_PATHS",
    "ORDER_ITEMS_PATH",
    "EntryRead",
    "EventsRead",
    "InventoryRead",
    "OrderItemsRead",
    "read_entry",
    "read_events",
    "read_inventory",
    "read_order_items",
]

ENTRY_PATH = "/v1/entry/tickets"
ORDER_ITEMS_PATH = "/v1/order-items"
EVENTS_PATH = "/v1/events"
INVENTORY_PATHS: Mapping[str, str] = {
    "event-tickets": "/v1/event-tickets",  # documented first; deprecated alias of /sale-items
    "sale-items": "/v1/sale-items",
}
ENTRY_LIMIT = 100  # the documented maximum (and default)
INVENTORY_LIMIT = 25  # the documented maximum (and default)
ORDER_ITEMS_LIMIT = 100  # the documented maximum (and default)
# lastUpdated is "updated after": re-read a few seconds so a change committed in the same
# second as the watermark is not skipped. The diff drops the repeats.
INVENTORY_OVERLAP = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class EntryRead:
    records: list[TicketRecord]
    position: datetime | None  # unchanged while the read is cut short
    resume: Resume | None
    requests: int
    full: bool  # every ticket of the event, in this one step


async def read_entry(
    fetcher: Fetcher,
    source: SourceId,
    event_id: str,
    *,
    start: datetime | None,
    position: datetime | None,
    resume: Resume | None,
    cap: int,
) -> EntryRead:
    """Entry tickets of one event from ``start`` (or where ``resume`` left off)."""
    if resume is not None:
        start = resume.start
    params = {"eventId": event_id, "limit": str(ENTRY_LIMIT), "includeZones": "true"}
    if start is not None:
        params["startTime"] = format_nuweb_time(start)
    paged = await read_pages(
        fetcher,
        ENTRY_PATH if resume is None else resume.next,
        params,
        cap=cap,
        parse=lambda payload: parse_entry_page(payload, source=source, event_id=event_id),
        finished=lambda page: not page.tickets,
    )
    records = [ticket for page in paged.pages for ticket in page.tickets]
    mark = resume.mark if resume is not None else None
    mark = mark or paged.pages[0].list_end_time
    if paged.resume is not None:
        return EntryRead(
            records, position, Resume(paged.resume, start, mark), paged.requests, False
        )
    full = start is None and resume is None
    return EntryRead(records, mark or position, None, paged.requests, full)


@dataclass(frozen=True, slots=True)
class OrderItemsRead:
    items: list[OrderItem]
    resume: str | None
    requests: int


async def read_order_items(
    fetcher: Fetcher,
    event_ids: Sequence[str],
    *,
    start: datetime | None,
    resume: str | None,
    cap: int,
) -> OrderItemsRead:
    """Order items of the followed events changed on or after ``start``."""
    params = {
        "eventIds": ",".join(event_ids),
        "type": ",".join(ENTRY_ITEM_TYPES),
        "withTrashed": "true",
        "limit": str(ORDER_ITEMS_LIMIT),
    }
    if start is not None:
        params["lastUpdated"] = format_nuweb_time(start)
    rows = 0

    def finished(rows_on_page: int, total: int | None) -> bool:
        nonlocal rows
        rows += rows_on_page
        return rows_on_page == 0 or (resume is None and total is not None and rows >= total)

    paged = await read_pages(
        fetcher,
        resume or ORDER_ITEMS_PATH,
        params,
        cap=cap,
        parse=parse_order_items_page,
        finished=lambda page: finished(page.rows, page.total),
    )
    items = [item for page in paged.pages for item in page.items]
    return OrderItemsRead(items, paged.resume, paged.requests)


@dataclass(frozen=True, slots=True)
class InventoryRead:
    records: list[TicketTypeRecord]
    watermark: datetime | None
    resume: Resume | None
    requests: int


async def read_inventory(
    fetcher: Fetcher,
    source: SourceId,
    path: str,
    event_id: str,
    *,
    watermark: datetime | None,
    resume: Resume | None,
    cap: int,
) -> InventoryRead:
    """Ticket types of one event changed since ``watermark`` (or where ``resume`` left off)."""
    start = resume.start if resume is not None else None
    if resume is None and watermark is not None:
        start = shift(watermark, -INVENTORY_OVERLAP)
    params = {"eventId": event_id, "withTrashed": "true", "limit": str(INVENTORY_LIMIT)}
    if start is not None:
        params["lastUpdated"] = format_nuweb_time(start)
    items = 0

    def finished(on_page: int, total: int | None) -> bool:
        nonlocal items
        items += on_page
        return on_page == 0 or (resume is None and total is not None and items >= total)

    paged = await read_pages(
        fetcher,
        path if resume is None else resume.next,
        params,
        cap=cap,
        parse=lambda payload: parse_inventory_page(payload, source=source, event_id=event_id),
        finished=lambda page: finished(page.items, page.total),
    )
    records = [record for page in paged.pages for record in page.ticket_types]
    times = [record.updated_at for record in records if record.updated_at is not None]
    if watermark is not None:
        times.append(watermark)
    newest = max(times) if times else None
    after = None if paged.resume is None else Resume(paged.resume, start)
    return InventoryRead(records, newest, after, paged.requests)


@dataclass(frozen=True, slots=True)
class EventsRead:
    events: dict[str, EventSpan]
    whole: bool  # the list was read to its end (not cut by the page cap)
    requests: int


async def read_events(fetcher: Fetcher, *, ending_after: datetime, cap: int) -> EventsRead:
    """The company's events ending after ``ending_after``."""
    params = {
        "endingAfter": format_nuweb_time(ending_after),
        "hideChildEvents": "true",
        "limit": str(EVENTS_LIMIT),
    }
    paged = await read_pages(
        fetcher,
        EVENTS_PATH,
        params,
        cap=cap,
        parse=parse_events_page,
        finished=lambda page: page.rows == 0,
    )
    events = {key: span for page in paged.pages for key, span in page.events.items()}
    return EventsRead(events, paged.resume is None, paged.requests)
