"""Ticket Tailor adapter: issued tickets, check-ins, voids and inventory (docs/providers.md).

Ticket Tailor lists come newest first behind an object-id cursor, with no updated-since
read. So each poll is one bounded step of reads, all built from the adapter's own
parameters (a ``links.next`` is never followed, so the key only goes to the configured
origin):

* ``GET /v1/check_ins`` every step: check-ins are created records, read forward from the
  newest one seen (``ending_before``), each with its own ``check_in_at``;
* ``GET /v1/issued_tickets`` forward from the newest ticket seen: new tickets;
* ``GET /v1/events`` once a minute: the events followed (every current and upcoming
  event, or only ``event_ids``), their windows, and ticket-type inventory;
* a sweep of the issued tickets of the followed events, which is what shows voids,
  refunds, undone check-ins and transfers, on a cadence the account's request budget
  allows (``budget``); a newly voided ticket's order is read once to tell a refund or a
  cancellation from a void;
* the tickets and orders a verified webhook named (``hints``), each read alone, so a void
  or refund pushed by Ticket Tailor is seen without waiting for the sweep.

A step reads at most ``max_pages`` pages, commits, and says ``more`` when work is left.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketRecord, TicketType, TicketTypeRecord
from notifier.providers.base import PollResult, ReadHint
from notifier.providers.http import FetchResult, ProviderHttpClient
from notifier.providers.tickettailor import parse as p
from notifier.providers.tickettailor.budget import RequestShare, sweep_interval
from notifier.providers.tickettailor.cursor import (
    CursorState,
    decode_cursor,
    encode_cursor,
    forget_events,
    newer_than,
    stable_check_in,
)
from notifier.providers.tickettailor.events import EventWindow, parse_events
from notifier.providers.tickettailor.following import Following
from notifier.providers.tickettailor.hints import HintQueue, read_hinted, webhook_hints
from notifier.providers.tickettailor.step import Step
from notifier.providers.tickettailor.voids import with_void_meaning
from notifier.providers.tickettailor.wirecache import WireCache

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.tickettailor.com"
PAGE_LIMIT = 100  # the documented maximum
MAX_PAGES_PER_STEP = 25
EVENTS_EVERY = timedelta(minutes=1)
# A step continuing a capped one within this long does not re-read the feeds.
FEEDS_FRESH = timedelta(seconds=2)
ALL = "*"

Clock = Callable[[], datetime]
SleepFn = Callable[[float], Awaitable[None]]


class TicketTailorProvider:
    """Reads one Ticket Tailor box office (optionally some of its events) as a ``Provider``.

    The API key goes only in the ``Authorization: Basic`` header (key as user, empty
    password). ``http`` is the account's client; ``share`` the account's request budget,
    shared by every source of the same API key. ``close_out`` is how long after its end
    an event is still followed (late scans, refunds the morning after).
    """

    # Its cursor keeps memories a fresh read would lose (check-in times, what each void
    # meant), so the service must not force full reads on it.
    reconciles_itself = True

    def __init__(
        self,
        source_id: SourceId | str,
        api_key: str,
        *,
        event_ids: Sequence[str] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        http: ProviderHttpClient,
        share: RequestShare | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        sleep: SleepFn = asyncio.sleep,
        close_out: timedelta = timedelta(hours=12),
        page_limit: int = PAGE_LIMIT,
        max_pages: int = MAX_PAGES_PER_STEP,
    ) -> None:
        self._source = SourceId(str(source_id))
        token = base64.b64encode((api_key + ":").encode()).decode()
        self._headers = {"Authorization": "Basic " + token, "Accept": "application/json"}
        self._base = base_url.rstrip("/")
        self._http = http
        self._share = share or RequestShare()
        self._share.join(self._source)
        self._clock = clock
        self._sleep = sleep
        self._limit = min(max(page_limit, 1), PAGE_LIMIT)
        self._max_pages = max(max_pages, 1)
        # In memory only: rebuilt by the first step after a start.
        self._follow = Following(event_ids, close_out)
        self._types: dict[str, TicketType] = {}
        self._events_read_at: datetime | None = None
        # The last read of each ticket of a followed event, so a check-in from the feed is
        # reported on the ticket as it was last read, without reading it again.
        self._wire = WireCache()
        # When the check-in and new-ticket feeds were last read to their end, and whether
        # the last step stopped at its page cap (the next one continues it at once).
        self._feeds_read_at: datetime | None = None
        self._continuing = False
        self._hints = HintQueue(self._share)
        self.requests = 0

    def __repr__(self) -> str:
        # The default repr would show the Authorization header, i.e. the key.
        return "TicketTailorProvider(source=" + repr(self._source) + ")"

    @property
    def name(self) -> str:
        return p.PROVIDER

    async def close(self) -> None:
        """Nothing to close: the account's HTTP client belongs to whoever built it."""

    def webhook_hints(self, body: bytes) -> list[ReadHint]:
        """``HintedReads``: the ticket or order a verified delivery names (``hints``)."""
        return webhook_hints(body)

    def hint(self, hints: Sequence[ReadHint]) -> None:
        """``HintedReads``: read these on the next step, within the hints' own bounds."""
        self._hints.add(hints)

    async def poll(self, cursor: str | None) -> PollResult:
        """One bounded step of reads; all of it or a ``ProviderError``."""
        state = decode_cursor(cursor)
        now = self._clock()
        step = Step(cap=self._max_pages)
        before = self.requests
        inventory: list[TicketTypeRecord] = []
        if self._events_read_at is None or now - self._events_read_at >= EVENTS_EVERY:
            inventory = await self._read_events(step, now)
        # Before the feeds: a check-in read next then lands on the ticket as just read.
        hinted = await self._read_hinted(step)
        if not self._feeds_fresh(now):
            # New tickets first: a ticket sold at the door and scanned at once is then
            # known to the check-in feed without a read of its own.
            await self._read_new_tickets(step, state)
            await self._read_check_ins(step, state)
            self._feeds_read_at = None if step.more else now
        await self._sweep(step, state, now)
        tickets = await self._finish(step, state, now)
        self._hints.done(hinted)
        log.info(
            "tickettailor_polled",
            source=self._source,
            sweeping=state.sweeping,
            hinted=len(hinted),
            followed_events=len(self._follow.followed(now)),
            tickets=len(tickets),
            requests=self.requests - before,
        )
        return PollResult(
            tickets=tickets,
            cursor=encode_cursor(state),
            complete=False,
            ticket_types=inventory,
            requests=self.requests - before,
            event_windows=self._follow.reported_windows(self._clock()),
            more=self._remember_more(step.more),
        )

    def _feeds_fresh(self, now: datetime) -> bool:
        """A step that continues a capped sweep right away skips the feeds just read."""
        read_at = self._feeds_read_at
        return self._continuing and read_at is not None and now - read_at < FEEDS_FRESH

    def _remember_more(self, more: bool) -> bool:
        self._continuing = more
        return more

    def _tracks(self, event_id: str) -> bool:
        return self._follow.tracks(event_id, self._clock())

    # -- reads

    async def _read_events(self, step: Step, now: datetime) -> list[TicketTypeRecord]:
        windows: dict[str, EventWindow] = {}
        inventory: list[TicketTypeRecord] = []
        after: str | None = None
        while True:
            payload = await self._page(step, "/v1/events", {}, after=after)
            page_windows, page_types = parse_events(payload, source=self._source)
            windows.update((w.event_id, w) for w in page_windows)
            inventory.extend(page_types)
            after = p.last_id(payload)
            if after is None or p.page_size(payload) < self._limit:
                break
        self._follow.windows = windows
        self._events_read_at = now
        inventory = [t for t in inventory if self._tracks(t.event_id)]
        self._types = {
            t.ticket_type_id: TicketType(t.ticket_type_id, t.name, t.price_minor, t.currency)
            for t in inventory
        }
        return inventory

    async def _read_check_ins(self, step: Step, state: CursorState) -> None:
        """Check-ins since the newest one read: oldest of them first, a page at a time.

        The first read ever only takes its position (the newest record, or "" when there
        is none yet): the check-ins before it are in the issued tickets' ``checked_in``
        flag, which the first sweep reads.
        Assumption: check-in records are never deleted, so the anchor stays in the list.
        """
        while not step.spent:
            anchor = state.check_in_anchor
            payload = await self._page(step, "/v1/check_ins", newer_than(anchor))
            if anchor is None:
                state.check_in_anchor = p.first_id(payload) or ""
                return
            records = p.parse_check_ins(payload)
            for check_in in reversed(records):  # oldest first
                if not await self._apply_check_in(step, state, check_in):
                    step.more = True
                    return
                state.check_in_anchor = check_in.check_in_id
            if len(records) < self._limit:
                return
        step.more = True

    async def _apply_check_in(self, step: Step, state: CursorState, check_in: p.CheckIn) -> bool:
        """Report the ticket checked in at the record's time; False if out of pages."""
        if check_in.quantity < 1:
            # Assumption: a record admitting no one (an undo, if the API writes one) says
            # nothing by itself; the issued ticket's checked_in flag tells the sweep.
            return True
        if check_in.event_id is not None and not self._tracks(check_in.event_id):
            return True
        record = step.tickets.get(check_in.ticket_id)
        if record is None:
            item = self._wire.get(check_in.ticket_id, check_in.event_id)
            if item is None:
                if step.spent:
                    return False
                item = await self._read_ticket(step, check_in.ticket_id)
            # The flag as the check-in makes it (details of the event), the time the feed's.
            item = {**item, "checked_in": "true"}
            record = p.parse_one_ticket(item, source=self._source, types=self._types)
        else:
            record = replace(record, raw={**record.raw, "checked_in": "true"})
        if not self._tracks(record.event_id):
            return True
        memory = state.check_ins.setdefault(record.event_id, {})
        memory[record.ticket_id] = int(check_in.at.timestamp())
        step.tickets[record.ticket_id] = replace(record, checked_in_at=check_in.at)
        return True

    async def _read_ticket(self, step: Step, ticket_id: str) -> dict[str, Any]:
        """``GET /v1/issued_tickets/{id}``: the wire item, once it parses."""
        result = await self._get(step, "/v1/issued_tickets/" + ticket_id, {})
        record = p.parse_one_ticket(result.payload, source=self._source, types=self._types)
        assert isinstance(result.payload, dict)  # parse_one_ticket refused anything else
        if self._tracks(record.event_id):
            self._wire.keep([result.payload])
        return result.payload

    async def _read_new_tickets(self, step: Step, state: CursorState) -> None:
        """Tickets issued since the newest one read, forward a page at a time."""
        event_ids = self._follow.event_ids
        scopes = [ALL] if event_ids is None else list(event_ids)
        for scope in scopes:
            params = {} if scope == ALL else {"event_id": scope}
            while not step.spent:
                anchor = state.ticket_anchors.get(scope)
                payload = await self._page(step, "/v1/issued_tickets", params | newer_than(anchor))
                self._keep(step, payload)
                newest = p.first_id(payload)
                if newest is not None:
                    state.ticket_anchors[scope] = newest
                # The first read ever takes only the newest page: the sweep reads the rest.
                if anchor is None or p.page_size(payload) < self._limit:
                    break
            else:
                step.more = True

    async def _sweep(self, step: Step, state: CursorState, now: datetime) -> None:
        """Continue the sweep in progress, or start one if the budget allows it now."""
        if not state.sweeping:
            if not self._sweep_due(state, now):
                return
            state.sweep_queue = self._follow.followed(now)
            state.sweep_after, state.sweep_pages = None, 0
        while state.sweep_queue and not step.spent:
            event_id = state.sweep_queue[0]
            payload = await self._page(
                step, "/v1/issued_tickets", {"event_id": event_id}, after=state.sweep_after
            )
            state.sweep_pages += 1
            self._keep(step, payload)
            state.sweep_after = p.last_id(payload)
            if state.sweep_after is None or p.page_size(payload) < self._limit:
                state.sweep_queue.pop(0)
                state.sweep_after = None
        if state.sweep_queue:
            step.more = True
        else:
            state.swept_at, state.sweep_cost = int(now.timestamp()), state.sweep_pages

    def _sweep_due(self, state: CursorState, now: datetime) -> bool:
        if state.swept_at is None:
            return True
        wait = sweep_interval(state.sweep_cost or 0, self._share.sweep_rate())
        return now.timestamp() - state.swept_at >= wait.total_seconds()

    async def _read_hinted(self, step: Step) -> list[ReadHint]:
        """The hinted tickets and orders, on an allowance of their own (not the page cap:
        they are few and bounded, and must not push the feeds to the next step)."""
        batch = self._hints.batch()
        if not batch:
            return batch
        side = Step(cap=2 * len(batch))

        async def get(path: str, query: Mapping[str, str]) -> object:
            return (await self._get(side, path, query)).payload

        items, orders = await read_hinted(batch, get, limit=self._limit)
        step.orders.update(orders)
        for item in items:
            try:
                record = p.parse_one_ticket(item, source=self._source, types=self._types)
            except FatalProviderError as exc:
                log.warning("tickettailor_hint_skipped", kind="issued_ticket", error=str(exc))
                continue
            self._keep_items(step, [(record, item)])
        return batch

    def _keep(self, step: Step, payload: object) -> None:
        records = p.parse_issued_tickets(payload, source=self._source, types=self._types)
        items = p.page_data(payload)  # the page parsed, so it is a list of ticket objects
        self._keep_items(step, zip(records, items, strict=True))

    def _keep_items(self, step: Step, read: Iterable[tuple[TicketRecord, Any]]) -> None:
        kept = [(r, i) for r, i in read if self._tracks(r.event_id)]
        step.tickets.update((r.ticket_id, r) for r, _ in kept)
        self._wire.keep(i for _, i in kept)

    # -- assembling

    async def _finish(self, step: Step, state: CursorState, now: datetime) -> list[TicketRecord]:
        out = []
        for record in step.tickets.values():
            record = await with_void_meaning(self._get, step, state, record)
            record = stable_check_in(record, state)
            out.append(record)
        dropped = self._follow.dropped(self._clock())
        forget_events(state, dropped)
        self._wire.drop(dropped)
        return out

    # -- HTTP

    async def _page(
        self,
        step: Step,
        path: str,
        params: Mapping[str, str],
        *,
        after: str | None = None,
    ) -> object:
        query = {**params, "limit": str(self._limit)}
        if after is not None:
            query["starting_after"] = after
        return (await self._get(step, path, query)).payload

    async def _get(self, step: Step, path: str, query: Mapping[str, str]) -> FetchResult:
        result = await self._http.fetch_json(self._base + path, params=query, headers=self._headers)
        step.pages += 1
        self.requests += result.attempts
        pause = p.rate_limit_pause(result.headers, now=self._clock())
        if pause > 0:
            log.warning("tickettailor_rate_limit_wait", source=self._source, seconds=pause)
            await self._sleep(pause)
        return result
