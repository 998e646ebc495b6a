"""Ticket Tailor adapter: issued tickets, orders and ticket-type inventory (docs/design.md §5).

Ticket Tailor lists come newest first behind an object-id cursor and filter only on
``created_at``: there is no updated-since read. So each poll is a plan of reads:

* ``GET /v1/events`` every poll: event windows (``start.unix``/``end.unix``) and the
  ticket-type counters (inventory);
* new tickets and orders by a ``created_at.gte`` watermark (minus an overlap);
* full sweeps of the tickets and orders of events in their live window, where voids,
  check-ins and holder edits happen;
* a reconcile sweep of everything on the first poll and every ``reconcile_interval``
  (the only reads reported ``complete``).

An order's ``cancelled`` status or a ``refund_amount`` makes its tickets CANCELED or
REFUNDED, unless the ticket itself is voided. Closed orders are remembered in the cursor
so a ticket read without its order keeps its status. Parsing is pure and separate from
the I/O; the cursor is opaque JSON text.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog

from notifier.errors import FatalProviderError
from notifier.model import (
    Holder,
    SourceId,
    TicketId,
    TicketRecord,
    TicketStatus,
    TicketType,
    TicketTypeId,
    TicketTypeRecord,
)
from notifier.providers.base import PollResult
from notifier.providers.fields import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    next_link,
    optional_id as _opt_id,
    optional_int as _opt_int,
    optional_text as _opt_str,
    same_origin_link,
)
from notifier.providers.http import FetchResult, ProviderHttpClient
from notifier.timeparse import parse_timestamp

__all__ = [
    "DEFAULT_BASE_URL",
    "PROVIDER",
    "CursorState",
    "EventWindow",
    "OrderState",
    "TicketTailorProvider",
    "apply_order",
    "decode_cursor",
    "encode_cursor",
    "live_event_ids",
    "parse_events",
    "parse_issued_ticket",
    "parse_issued_tickets",
    "parse_orders",
    "rate_limit_pause",
]

log = structlog.get_logger(__name__)

PROVIDER = "tickettailor"
DEFAULT_BASE_URL = "https://api.tickettailor.com"
PAGE_LIMIT = 100  # the documented maximum
# Check-in times we remember (see ``_stable_check_ins``) are dropped this long after
# their event ended: by then a ticket is rarely touched again.
CHECK_IN_MEMORY = timedelta(days=30)
# Below this many remaining requests we wait for the window to reset rather than
# spend the last ones and meet a 429 mid-sweep.
RATE_LOW_WATER = 10
MAX_RATE_WAIT = 1800.0  # the documented window is 30 min; never wait longer

STATUSES: Mapping[str, TicketStatus] = {
    "valid": TicketStatus.VALID,
    "voided": TicketStatus.VOID,
    "void": TicketStatus.VOID,  # Ticket Tailor's older API reference spells it this way
}
_status = StatusMap(PROVIDER, STATUSES)
RAW_FIELDS = (
    "barcode",
    "reference",
    "reservation",
    "description",
    "checked_in",
    "status",
    "created_at",  # also the new-ticket watermark
)


Clock = Callable[[], datetime]
SleepFn = Callable[[float], Awaitable[None]]


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class EventWindow:
    """When an event runs (unix times from ``start``/``end``), to pick live events."""

    event_id: str
    start: datetime | None
    end: datetime | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class OrderState:
    """What an order means for its tickets: a closing status (or None) and its time."""

    order_id: str
    closed: TicketStatus | None
    changed_at: datetime | None
    created_at: datetime | None


@dataclass(slots=True)
class CursorState:
    """The cursor's content: watermarks, reconcile time, closed orders, check-in times."""

    tickets_since: int | None = None
    orders_since: int | None = None
    reconciled_at: int | None = None
    # order id -> [status value, changed_at unix or None]
    closed_orders: dict[str, list[Any]] = field(default_factory=dict)
    # event id -> ticket id -> check-in time (unix) first seen
    check_ins: dict[str, dict[str, int]] = field(default_factory=dict)


# --------------------------------------------------------------------------- parsing


def parse_issued_tickets(
    payload: object,
    *,
    source: SourceId,
    types: Mapping[str, TicketType] | None = None,
) -> tuple[list[TicketRecord], str | None]:
    """One ``/v1/issued_tickets`` page as records and its ``links.next``.

    ``types`` (ticket type id -> TicketType, from ``/v1/events``) fills in the name, price
    and currency an issued ticket does not carry. Raises ``FatalProviderError`` when the
    page is not the documented shape.
    """
    try:
        data, next_link = _envelope(payload)
        known = types or {}
        return [parse_issued_ticket(item, source=source, types=known) for item in data], next_link
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc


def parse_issued_ticket(
    item: object, *, source: SourceId, types: Mapping[str, TicketType] | None = None
) -> TicketRecord:
    """One issued ticket; raises KeyError/TypeError/ValueError if malformed.

    Ticket Tailor gives no check-in time on the issued ticket, only ``checked_in``
    ("true"/"false"): ``updated_at`` stands in for it (the adapter then keeps the first
    one seen, so a later edit does not move it).
    """
    if not isinstance(item, dict):
        raise TypeError("issued ticket is not a JSON object")
    raw_status = item["status"]
    if not isinstance(raw_status, str):
        raise TypeError("status is not a string")
    status = _status(raw_status)
    updated_at = parse_timestamp(_unix(item.get("updated_at")))
    return TicketRecord(
        provider=PROVIDER,
        source=source,
        ticket_id=TicketId(_id(item["id"])),
        event_id=_id(item["event_id"]),
        order_id=_opt_id(item.get("order_id")),
        ticket_type=_ticket_type(item, types or {}),
        holder=_holder(item),
        status=status,
        checked_in_at=updated_at if _flag(item.get("checked_in")) else None,
        updated_at=updated_at,
        raw={name: item[name] for name in RAW_FIELDS if name in item},
        status_raw=raw_status,
        status_changed_at=parse_timestamp(_unix(item.get("voided_at"))),
    )


def parse_orders(payload: object) -> tuple[list[OrderState], str | None]:
    """One ``/v1/orders`` page as order states and its ``links.next``."""
    try:
        data, next_link = _envelope(payload)
        return [_order(item) for item in data], next_link
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc


def parse_events(
    payload: object, *, source: SourceId
) -> tuple[list[EventWindow], list[TicketTypeRecord], str | None]:
    """One ``/v1/events`` page: event windows, ticket-type inventory, ``links.next``."""
    try:
        data, next_link = _envelope(payload)
        windows: list[EventWindow] = []
        records: list[TicketTypeRecord] = []
        for item in data:
            window = _event_window(item)
            windows.append(window)
            records.extend(_ticket_types(item, window, source=source))
        return windows, records, next_link
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FatalProviderError("malformed Ticket Tailor page: " + _describe(exc)) from exc


def apply_order(record: TicketRecord, order: OrderState | None) -> TicketRecord:
    """The ticket as its order makes it: a closed order cancels/refunds a valid ticket.

    The ticket's own status wins when it is not ``valid`` (a void is the more specific fact).
    """
    if order is None or order.closed is None or record.status is not TicketStatus.VALID:
        return record
    return replace(record, status=order.closed, status_changed_at=order.changed_at)


def live_event_ids(
    events: Iterable[EventWindow], *, now: datetime, before: timedelta, after: timedelta
) -> list[str]:
    """Events whose [start - before, end + after] contains ``now`` (doors to close-out)."""
    live = []
    for event in events:
        if event.start is None:
            continue
        end = event.end or event.start
        if event.start - before <= now <= end + after:
            live.append(event.event_id)
    return live


def rate_limit_pause(headers: Mapping[str, str], *, now: datetime) -> float:
    """Seconds to wait before the next request, from ``X-Rate-Limit-*``; 0 when plenty left.

    ``X-Rate-Limit-Reset`` is read as seconds until the reset, or as a unix time when it
    is large enough to be one (live observations suggest seconds; the docs do not say).
    """
    remaining = _header_number(headers, "X-Rate-Limit-Remaining")
    if remaining is None or remaining > RATE_LOW_WATER:
        return 0.0
    reset = _header_number(headers, "X-Rate-Limit-Reset")
    if reset is None:
        return 0.0
    if reset > 1_000_000_000:  # an absolute unix time
        reset -= now.timestamp()
    return min(max(reset, 0.0), MAX_RATE_WAIT)


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name) or headers.get(name.lower())
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number else None  # NaN is no answer


def _envelope(payload: object) -> tuple[list[Any], str | None]:
    if not isinstance(payload, dict):
        raise TypeError("page is not a JSON object")
    data = payload["data"]
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    return data, _next_link(payload.get("links"))


def _next_link(links: object) -> str | None:
    return next_link(links, "links")


def _order(item: object) -> OrderState:
    if not isinstance(item, dict):
        raise TypeError("order is not a JSON object")
    status = item.get("status")
    refund = _opt_int(item.get("refund_amount")) or 0
    closed = None
    if refund > 0:
        closed = TicketStatus.REFUNDED
    elif status == "cancelled":
        closed = TicketStatus.CANCELED
    return OrderState(
        order_id=_id(item["id"]),
        closed=closed,
        changed_at=parse_timestamp(_unix(item.get("updated_at"))) if closed else None,
        created_at=parse_timestamp(_unix(item.get("created_at"))),
    )


def _event_window(item: object) -> EventWindow:
    if not isinstance(item, dict):
        raise TypeError("event is not a JSON object")
    return EventWindow(
        event_id=_id(item["id"]),
        start=_moment(item.get("start")),
        end=_moment(item.get("end")),
        currency=_currency(item.get("currency")),
    )


def _moment(value: object) -> datetime | None:
    # Event times are objects {date, iso, unix, ...}; unix is the unambiguous one.
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("event time is not an object")
    return parse_timestamp(_unix(value.get("unix")))


def _ticket_types(
    event: dict[str, Any], window: EventWindow, *, source: SourceId
) -> list[TicketTypeRecord]:
    types = event.get("ticket_types") or []
    if not isinstance(types, list):
        raise TypeError("ticket_types is not a list")
    return [_ticket_type_record(item, window, source=source) for item in types]


def _ticket_type_record(item: object, window: EventWindow, *, source: SourceId) -> TicketTypeRecord:
    if not isinstance(item, dict):
        raise TypeError("ticket type is not a JSON object")
    total = _opt_int(item.get("quantity_total"))
    issued = _opt_int(item.get("quantity_issued"))
    held = _opt_int(item.get("quantity_held"))
    baskets = _opt_int(item.get("quantity_in_baskets"))
    quantity = _opt_int(item.get("quantity"))
    return TicketTypeRecord(
        provider=PROVIDER,
        source=source,
        ticket_type_id=TicketTypeId(_id(item["id"])),
        event_id=window.event_id,
        name=_opt_str(item.get("name")),
        price_minor=_opt_int(item.get("price")),
        currency=window.currency,
        total_stock=total,
        sold=issued,
        reserved=_sum_known(held, baskets),
        current_stock=_available(quantity, total, issued, held, baskets),
        # The status stays "on_sale" when sold out: the stock says that, not this flag.
        on_sale=item.get("status") == "on_sale",
        deleted_at=None,
        updated_at=None,
        raw={"status": item.get("status"), "quantity": quantity},
    )


def _sum_known(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _available(
    quantity: int | None,
    total: int | None,
    issued: int | None,
    held: int | None,
    baskets: int | None,
) -> int | None:
    """Stock left to sell, computed from the counters when they are there.

    ``quantity`` does not subtract holds, so a type whose rest is all held would never
    read sold out; the counters do. Never below zero (counters lag after voids).
    """
    if total is None or issued is None:
        return quantity
    computed = max(total - issued - (held or 0) - (baskets or 0), 0)
    return computed if quantity is None else max(min(quantity, computed), 0)


def _ticket_type(item: dict[str, Any], types: Mapping[str, TicketType]) -> TicketType:
    type_id = _opt_id(item.get("ticket_type_id"))
    known = types.get(type_id) if type_id is not None else None
    if known is not None:
        return known
    return TicketType(
        id=type_id or "",
        name=_opt_str(item.get("description")),
        price_minor=_opt_int(item.get("price")),
        currency=_currency(item.get("currency")),
    )


def _holder(item: dict[str, Any]) -> Holder:
    first, last = _opt_str(item.get("first_name")), _opt_str(item.get("last_name"))
    if first is None and last is None:
        first, last = _split_name(_opt_str(item.get("full_name")))
    return Holder(first, last, _opt_str(item.get("email")), _opt_str(item.get("phone")))


def _split_name(full: str | None) -> tuple[str | None, str | None]:
    if not full or not full.strip():
        return None, None
    first, _, last = full.strip().partition(" ")
    return first, (last.strip() or None)


def _flag(value: object) -> bool:
    # Ticket Tailor sends booleans as the strings "true"/"false"; accept real ones too.
    if value is None or value is False or value == "false":
        return False
    if value is True or value == "true":
        return True
    raise ValueError("checked_in is not 'true' or 'false'")


def _unix(value: object) -> object:
    # Timestamps are unix seconds; anything else (an ISO string) is rejected here so a
    # schema change is noticed instead of being half-read.
    if value is None or (type(value) is int) or (type(value) is float):
        return value
    raise TypeError("timestamp is not unix seconds")


def _currency(value: object) -> str | None:
    if isinstance(value, dict):  # orders carry {code, base_multiplier}
        value = value.get("code")
    text = _opt_str(value)
    return None if text is None else text.upper()


# --------------------------------------------------------------------------- cursor


def decode_cursor(cursor: str | None) -> CursorState:
    """The state an opaque cursor holds; ``FatalProviderError`` if it is corrupt."""
    if cursor is None:
        return CursorState()
    try:
        loaded = orjson.loads(cursor)
        if not isinstance(loaded, dict):
            raise TypeError("cursor is not an object")
        return CursorState(
            tickets_since=_opt_int(loaded.get("tickets_since")),
            orders_since=_opt_int(loaded.get("orders_since")),
            reconciled_at=_opt_int(loaded.get("reconciled_at")),
            closed_orders=_closed_orders(loaded.get("closed_orders", {})),
            check_ins=_check_ins(loaded.get("check_ins", {})),
        )
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise FatalProviderError("corrupt Ticket Tailor cursor: " + type(exc).__name__) from exc


def encode_cursor(state: CursorState) -> str:
    """Opaque cursor text (JSON, sorted keys so equal states give equal text)."""
    body = {
        "tickets_since": state.tickets_since,
        "orders_since": state.orders_since,
        "reconciled_at": state.reconciled_at,
        "closed_orders": state.closed_orders,
        "check_ins": state.check_ins,
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def _closed_orders(value: object) -> dict[str, list[Any]]:
    if not isinstance(value, dict):
        raise TypeError("closed_orders is not an object")
    result: dict[str, list[Any]] = {}
    for order_id, entry in value.items():
        if not isinstance(entry, list) or len(entry) != 2:
            raise TypeError("closed order entry is not a pair")
        TicketStatus(entry[0])  # raises ValueError on anything else
        result[str(order_id)] = [entry[0], _opt_int(entry[1])]
    return result


def _check_ins(value: object) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        raise TypeError("check_ins is not an object")
    result: dict[str, dict[str, int]] = {}
    for event_id, tickets in value.items():
        if not isinstance(tickets, dict):
            raise TypeError("check_ins entry is not an object")
        result[str(event_id)] = {str(k): int(_opt_int(v) or 0) for k, v in tickets.items()}
    return result


def _order_from_cursor(order_id: str, entry: list[Any]) -> OrderState:
    changed = None if entry[1] is None else datetime.fromtimestamp(entry[1], UTC)
    return OrderState(order_id, TicketStatus(entry[0]), changed, None)


def _unix_of(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


# --------------------------------------------------------------------------- adapter


@dataclass(slots=True)
class _Plan:
    """Which reads one poll makes: filter param sets for tickets and for orders."""

    reconcile: bool
    scopes: list[dict[str, str]]
    live: list[str]


@dataclass(slots=True)
class _Read:
    """What one poll has read so far."""

    requests: int = 0
    tickets: dict[str, TicketRecord] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)


class TicketTailorProvider:
    """Reads one Ticket Tailor box office (optionally some of its events) as a ``Provider``.

    The API key goes only in the ``Authorization: Basic`` header (key as user, empty
    password). ``http`` is the account's client (shared budget); its base URL must have
    the same origin as ``base_url``. ``clock`` decides live windows and reconcile times;
    ``sleep`` waits out a nearly spent rate-limit window.
    """

    def __init__(
        self,
        source_id: SourceId | str,
        api_key: str,
        *,
        event_ids: Sequence[str] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        http: ProviderHttpClient,
        clock: Clock = lambda: datetime.now(UTC),
        sleep: SleepFn = asyncio.sleep,
        live_margin_before: timedelta = timedelta(hours=2),
        live_margin_after: timedelta = timedelta(hours=2),
        reconcile_interval: timedelta = timedelta(hours=6),
        overlap: timedelta = timedelta(minutes=2),
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        self._source = SourceId(str(source_id))
        token = base64.b64encode((api_key + ":").encode()).decode()
        self._headers = {"Authorization": "Basic " + token, "Accept": "application/json"}
        self._event_ids = None if event_ids is None else tuple(str(e) for e in event_ids)
        self._base = base_url.rstrip("/")
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._before = live_margin_before
        self._after = live_margin_after
        self._reconcile_interval = reconcile_interval
        self._overlap = int(overlap.total_seconds())
        self._limit = str(min(max(page_limit, 1), PAGE_LIMIT))

    # Its cursor carries the reconcile schedule (and check-in memory a fresh read would
    # lose), so the service must not force full reads on it.
    reconciles_itself = True

    def __repr__(self) -> str:
        # The default repr would show the Authorization header, i.e. the key.
        return "TicketTailorProvider(source=" + repr(self._source) + ")"

    @property
    def name(self) -> str:
        return PROVIDER

    async def poll(self, cursor: str | None) -> PollResult:
        """Run this poll's plan of reads; all of it or a ``ProviderError``."""
        state = decode_cursor(cursor)
        now = self._clock()
        read = _Read()
        windows, inventory, types = await self._read_events(read)
        plan = self._plan(state, windows, now)
        await self._read_tickets(plan, state, read, types)
        await self._read_orders(plan, state, read)
        await self._read_closed_order_tickets(state, read, types)
        tickets = self._finish(state, read, windows, now)
        if plan.reconcile:
            state.reconciled_at = int(now.timestamp())
        log.info(
            "tickettailor_polled",
            source=self._source,
            reconcile=plan.reconcile,
            live_events=len(plan.live),
            tickets=len(tickets),
            requests=read.requests,
        )
        return PollResult(
            tickets=tickets,
            cursor=encode_cursor(state),
            complete=plan.reconcile,
            ticket_types=inventory,
            requests=read.requests,
            event_windows={w.event_id: (w.start, w.end) for w in windows if w.start},
        )

    async def close(self) -> None:
        """Nothing to close: the account's HTTP client belongs to whoever built it."""

    # -- planning

    def _plan(self, state: CursorState, windows: list[EventWindow], now: datetime) -> _Plan:
        reconcile = state.reconciled_at is None or (
            now.timestamp() - state.reconciled_at >= self._reconcile_interval.total_seconds()
        )
        tracked = [w for w in windows if self._tracks(w.event_id)]
        live = live_event_ids(tracked, now=now, before=self._before, after=self._after)
        scopes = [{}] if self._event_ids is None else [{"event_id": e} for e in self._event_ids]
        return _Plan(reconcile=reconcile, scopes=scopes, live=live)

    def _tracks(self, event_id: str) -> bool:
        return self._event_ids is None or event_id in self._event_ids

    # -- reads

    async def _read_events(
        self, read: _Read
    ) -> tuple[list[EventWindow], list[TicketTypeRecord], dict[str, TicketType]]:
        windows: list[EventWindow] = []
        inventory: list[TicketTypeRecord] = []
        async for payload in self._pages(read, "/v1/events", {}):
            page_windows, page_types, _ = parse_events(payload, source=self._source)
            windows.extend(page_windows)
            inventory.extend(t for t in page_types if self._tracks(t.event_id))
        types: dict[str, TicketType] = {
            t.ticket_type_id: TicketType(t.ticket_type_id, t.name, t.price_minor, t.currency)
            for t in inventory
        }
        return windows, inventory, types

    async def _read_tickets(
        self, plan: _Plan, state: CursorState, read: _Read, types: Mapping[str, TicketType]
    ) -> None:
        for params in self._list_params(plan, state.tickets_since or state.reconciled_at):
            async for payload in self._pages(read, "/v1/issued_tickets", params):
                records, _ = parse_issued_tickets(payload, source=self._source, types=types)
                read.tickets.update((r.ticket_id, r) for r in records)
        created = [_created_unix(r) for r in read.tickets.values()]
        state.tickets_since = _max_known(state.tickets_since, *created)

    async def _read_orders(self, plan: _Plan, state: CursorState, read: _Read) -> None:
        for params in self._list_params(plan, state.orders_since or state.reconciled_at):
            async for payload in self._pages(read, "/v1/orders", params):
                orders, _ = parse_orders(payload)
                read.orders.update((o.order_id, o) for o in orders)
        created = [_unix_of(o.created_at) for o in read.orders.values()]
        state.orders_since = _max_known(state.orders_since, *created)

    async def _read_closed_order_tickets(
        self, state: CursorState, read: _Read, types: Mapping[str, TicketType]
    ) -> None:
        """Re-read the tickets of orders whose closure changed but whose tickets we missed.

        An order of a past event can be refunded: its tickets are not in any sweep until
        the next reconcile, so they are fetched by ``order_id`` (one request per change).
        """
        read_orders = {r.order_id for r in read.tickets.values()}
        for order in read.orders.values():
            if not _closure_changed(state, order) or order.order_id in read_orders:
                continue
            params = {"order_id": order.order_id}
            async for payload in self._pages(read, "/v1/issued_tickets", params):
                records, _ = parse_issued_tickets(payload, source=self._source, types=types)
                read.tickets.update((r.ticket_id, r) for r in records if self._tracks(r.event_id))

    def _list_params(self, plan: _Plan, since: int | None) -> list[dict[str, str]]:
        if plan.reconcile:
            return [dict(scope) for scope in plan.scopes]
        params = [{"event_id": event_id} for event_id in plan.live]
        if since is not None:
            created = {"created_at.gte": str(since - self._overlap)}
            params = [{**scope, **created} for scope in plan.scopes] + params
        return params

    async def _pages(
        self, read: _Read, path: str, params: Mapping[str, str]
    ) -> AsyncIterator[object]:
        """Every page of a list, following ``links.next`` (filters re-applied to each)."""
        query = {**params, "limit": self._limit}
        url: str | None = self._base + path
        seen: set[str] = set()
        while url is not None:
            # A next link gives only its path and query, always sent to the configured origin.
            target = same_origin_link(url, self._base)
            result = await self._http.fetch_json(target, params=query, headers=self._headers)
            read.requests += result.attempts
            await self._respect_rate_limit(result)
            yield result.payload
            url = _checked_next(result.payload, seen)

    async def _respect_rate_limit(self, result: FetchResult) -> None:
        pause = rate_limit_pause(result.headers, now=self._clock())
        if pause > 0:
            log.warning("tickettailor_rate_limit_wait", source=self._source, seconds=pause)
            await self._sleep(pause)

    # -- assembling

    def _finish(
        self, state: CursorState, read: _Read, windows: list[EventWindow], now: datetime
    ) -> list[TicketRecord]:
        _update_closed_orders(state, read.orders.values())
        records = []
        for record in read.tickets.values():
            order = _order_for(state, read, record.order_id)
            records.append(apply_order(record, order))
        ends = {w.event_id: w.end or w.start for w in windows}
        return _stable_check_ins(records, state, ends, now=now)


def _checked_next(payload: object, seen: set[str]) -> str | None:
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    link = _next_link(payload.get("links"))
    # An empty page with a next link would page forever; so would a repeated link.
    if link is None or not data:
        return None
    if link in seen:
        raise FatalProviderError("Ticket Tailor pagination repeated a next link")
    seen.add(link)
    return link


def _created_unix(record: TicketRecord) -> int | None:
    created = record.raw.get("created_at")
    return created if type(created) is int else None


def _max_known(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _closure_changed(state: CursorState, order: OrderState) -> bool:
    before = state.closed_orders.get(order.order_id)
    now = None if order.closed is None else order.closed.value
    return (None if before is None else before[0]) != now


def _update_closed_orders(state: CursorState, orders: Iterable[OrderState]) -> None:
    for order in orders:
        if order.closed is None:
            state.closed_orders.pop(order.order_id, None)
        else:
            entry = [order.closed.value, _unix_of(order.changed_at)]
            state.closed_orders[order.order_id] = entry


def _order_for(state: CursorState, read: _Read, order_id: str | None) -> OrderState | None:
    if order_id is None:
        return None
    order = read.orders.get(order_id)
    if order is not None:
        return order
    entry = state.closed_orders.get(order_id)
    return None if entry is None else _order_from_cursor(order_id, entry)


def _stable_check_ins(
    records: list[TicketRecord],
    state: CursorState,
    ends: Mapping[str, datetime | None],
    *,
    now: datetime,
) -> list[TicketRecord]:
    """Keep the first check-in time seen per ticket, so later edits do not move it.

    The stand-in time (``updated_at``) moves with any later edit of the ticket, which the
    differ would take for a new check-in. Memory is per event and forgotten
    ``CHECK_IN_MEMORY`` after the event ended.
    """
    out = []
    for record in records:
        memory = state.check_ins.setdefault(record.event_id, {})
        if record.checked_in_at is None:
            memory.pop(record.ticket_id, None)
        elif record.ticket_id in memory:
            first = datetime.fromtimestamp(memory[record.ticket_id], UTC)
            record = replace(record, checked_in_at=first)
        elif record.checked_in_at is not None:
            memory[record.ticket_id] = int(record.checked_in_at.timestamp())
        out.append(record)
    _forget_old_check_ins(state, ends, now=now)
    return out


def _forget_old_check_ins(
    state: CursorState, ends: Mapping[str, datetime | None], *, now: datetime
) -> None:
    for event_id in list(state.check_ins):
        end = ends.get(event_id)
        stale = end is not None and now - end > CHECK_IN_MEMORY
        if stale or not state.check_ins[event_id]:
            del state.check_ins[event_id]
