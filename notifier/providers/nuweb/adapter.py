"""The Nuweb adapter: one company's followed events as a ``Provider`` (docs/design.md §5).

Streams, each read by ``collect`` (see there for the endpoints and filters):

- **Entry tickets**, per event, every poll: the check-ins. ``startTime`` = the previous
  ``listEndTime``. **Lookback, on deep reads only**: offline scanners sync late, so a
  ticket may become visible with a modification time up to ``lookback`` in the past. Only
  a *deep* read, about once a minute (``DEEP_INTERVAL``), re-reads that window; it starts
  at the ``listEndTime`` the cursor held when the previous deep read *began*, minus the
  lookback (a ticket first visible after that moment was modified no earlier than the
  moment minus the lookback). A cursor without deep state makes the next read deep.
- **Order items**, once a minute, *before* the entry tickets: cancellations, resales and
  named holders (``orders``). When they tell of a ticket, its event's entry tickets are
  read from the time of the change (minus the overlap), so its record is read in this
  same poll and the status applied with its time. A cursor written before order items
  were read starts them at its earliest entry position.
- **Inventory**, per event, once a minute (Nuweb's 60 s cache of GET /sale-items makes
  faster reads pointless). If the deprecated ``/v1/event-tickets`` answers 404 or 410
  (it "will be removed"), the adapter switches to ``/v1/sale-items``, says so once, and
  keeps that in its cursor.
- **Events** (without ``event_ids``): the company's current and upcoming events, listed
  every ``EVENTS_INTERVAL``; an event is followed until its close-out window has passed.
  A discovered event outside its live window (two hours before its start to one after
  its end) has its entry tickets read at most once a minute; live ones every poll.
- **Reconcile sweep**: every 6 h the adapter reads every entry ticket again itself
  (``reconciles_itself``): its cursor keeps what order items imposed, which a read from
  scratch would lose.

**Failure stays in its stream** (``streams``): a secondary stream (order items, inventory,
events) that fails backs off alone while check-ins go on; an event's entry stream too, as
long as another event's entry tickets were read. When no entry stream could be read, or
the credentials are refused, the poll fails as a whole.

**Bounded steps**: a poll reads at most ``page_cap`` pages (each stream due gets an equal
share, at least ``MIN_STREAM_PAGES``); a stream cut short resumes from its next link in
the next step (``more``), and only a finished read moves its position.

Cost in steady state, per poll: one request per configured or live event for entry
tickets (once a minute for a discovered event outside its live window); once a minute one
more per event for inventory and one in all for order items; every two minutes one for
the event list; and the deep read's lookback pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

import structlog

from notifier.errors import ProviderError
from notifier.model import SourceId
from notifier.providers.base import PollResult
from notifier.providers.http import ProviderHttpClient, RequestBudget
from notifier.providers.nuweb.collect import INVENTORY_PATHS
from notifier.providers.nuweb.cursor import (
    ORDER_ITEMS_INTERVAL,
    RECONCILE_INTERVAL,
    decode_cursor,
    encode_cursor,
)
from notifier.providers.nuweb.events import CLOSE_OUT, event_windows
from notifier.providers.nuweb.pacing import RATE_WINDOW_SECONDS, RETRY_POLICY, RatePacer
from notifier.providers.nuweb.reads import Fetcher
from notifier.providers.nuweb.step import InventoryEndpoint, Step, StepSettings
from notifier.providers.nuweb.streams import StreamHealth, fails_the_source
from notifier.providers.nuweb.wire import PROVIDER

__all__ = ["DEFAULT_BASE_URL", "NuwebProvider"]

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.nuwebgroup.com"
PAGES_PER_STEP = 20  # as Shotgun's step: about 20 s of a company's 60 requests a minute

Clock = Callable[[], datetime]
SleepFn = Callable[[float], Awaitable[None]]


class NuwebProvider:
    """Reads one Nuweb company's events (the configured ones, or every current one).

    The token travels only in the ``Authorization`` header, with ``X-NU-COMPANY-ID`` on
    every call (without it Nuweb uses the user's "last selected company"). ``http`` may be
    shared by every source of the company (one ``RequestBudget``); ``pacer`` likewise.
    """

    # Its cursor carries the order items' overrides, which a read from scratch would lose
    # (and could only rebuild by reading every order item): it sweeps entry tickets itself.
    reconciles_itself = True

    def __init__(
        self,
        source_id: SourceId | str,
        token: str,
        company_id: int | str,
        *,
        event_ids: Sequence[int | str] = (),
        base_url: str = DEFAULT_BASE_URL,
        lookback: timedelta = timedelta(minutes=2),
        http: ProviderHttpClient | None = None,
        inventory_endpoint: InventoryEndpoint = "event-tickets",
        clock: Clock | None = None,
        sleep: SleepFn = asyncio.sleep,
        pacer: RatePacer | None = None,
        order_items_interval: timedelta = ORDER_ITEMS_INTERVAL,
        reconcile_interval: timedelta | None = RECONCILE_INTERVAL,
        page_cap: int = PAGES_PER_STEP,
        close_out: timedelta = CLOSE_OUT,
    ) -> None:
        self._source = SourceId(str(source_id))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._owns_http = http is None
        self._http = http or ProviderHttpClient(
            base_url,
            policy=RETRY_POLICY,
            budget=RequestBudget(60.0, RATE_WINDOW_SECONDS),
            sleep=sleep,
        )
        headers = {
            "Authorization": "Bearer " + token,
            "X-NU-COMPANY-ID": str(company_id),
            "Accept": "application/json",
        }
        self._fetcher = Fetcher(
            self._http, headers, pacer or RatePacer(clock=self._clock, sleep=sleep)
        )
        self._settings = StepSettings(
            source=self._source,
            event_ids=tuple(str(event_id) for event_id in event_ids),
            lookback=lookback,
            inventory_path=INVENTORY_PATHS[inventory_endpoint],
            order_items_interval=order_items_interval,
            reconcile_interval=reconcile_interval,
            page_cap=max(page_cap, 1),
            close_out=close_out,
        )
        self._health = StreamHealth(self._source)
        # When each event's entry tickets were last read (adapter clock): events outside
        # their live window rest between reads. In memory: a restart reads them at once.
        self._entry_read_at: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return "NuwebProvider(source=" + repr(self._source) + ")"  # never the token

    @property
    def name(self) -> str:
        return PROVIDER

    async def poll(self, cursor: str | None) -> PollResult:
        """One bounded step of every stream due (module docstring)."""
        step = Step(self._settings, decode_cursor(cursor), self._clock, self._fetcher)
        if step.events_due():
            await self._guarded("events", step.read_events, required=step.events_required)
        step.plan()
        if step.order_items_due():
            await self._guarded("order_items", step.read_order_items)
        step.plan_entries()
        await self._read_entries(step)
        if step.inventory_due():
            for event_id in step.event_ids:
                await self._guarded("inventory:" + event_id, partial(step.read_inventory, event_id))
        self._health.forget(step.stream_names())
        state = step.finish()
        return PollResult(
            tickets=step.tickets(),
            cursor=encode_cursor(state),
            complete=step.complete,
            ticket_types=step.ticket_types(),
            requests=step.requests,
            event_windows=event_windows(state.events.items()),
            more=any(self._health.due(stream, step.now) for stream in state.resume),
        )

    async def _read_entries(self, step: Step) -> None:
        """Every followed event's entry tickets; one failing backs off alone while another
        is read, and fails the poll when none could be."""
        read_any = False
        failed: list[tuple[str, ProviderError]] = []
        for event_id in step.event_ids:
            stream = "entry:" + event_id
            wanted = step.entry_wanted(event_id, self._entry_read_at.get(event_id))
            if not wanted or not self._health.due(stream, step.now):
                step.complete = False
                read_any = read_any or not wanted  # resting by schedule is no failure
                continue
            try:
                await step.read_entry(event_id)
            except ProviderError as exc:
                if fails_the_source(exc):
                    raise
                failed.append((stream, exc))
                continue
            read_any = True
            self._entry_read_at[event_id] = step.now
            self._health.succeeded(stream)
        for gone in set(self._entry_read_at) - set(step.event_ids):
            del self._entry_read_at[gone]
        step.complete = step.complete and read_any and not failed
        if failed and not read_any:
            raise failed[0][1]  # no check-ins at all: the source is failing as a whole
        for stream, error in failed:
            self._health.failed(stream, error, step.now)

    async def _guarded(
        self, stream: str, read: Callable[[], Awaitable[None]], *, required: bool = False
    ) -> None:
        """Read one stream unless it is backing off; its failure is its own unless
        ``required`` (nothing to go on without it) or the credentials were refused."""
        now = self._clock()
        if not self._health.due(stream, now) and not required:
            return
        try:
            await read()
        except ProviderError as exc:
            if required or fails_the_source(exc):
                raise
            self._health.failed(stream, exc, now)
            return
        self._health.succeeded(stream)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close()
