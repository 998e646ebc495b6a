"""Shotgun adapter: ``GET /tickets`` read incrementally with the ``after`` tuple cursor.

The API orders tickets by (``ticket_updated_at``, ``ticket_id``) and accepts
``after=<updated_at>_<ticket_id>``, so one stream per filter resumes exactly after the
last ticket read (docs/design.md §5, §6a). The API filters a single ``event_id``: several
configured events are read as several streams, each with its own position inside the
one opaque cursor. Parsing (``wire``) and the cursor (``cursor``) are pure; this is the
only module of the package that does I/O. A poll hands the poller its tickets unparsed
(``WireTickets``) with a digest of the wire fields that decide their tracked state, so a
sweep of a million unchanged tickets builds no records.

Every page is requested with the adapter's own query; only the cursor (``after``) is
taken from ``pagination.next``, because the documented example link drops
``include_cohosted_events``. A cancelled event is found by probing the events read
(``events``): its valid tickets read as canceled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketRecord
from notifier.providers.base import EventWindow, PollResult, WireTickets
from notifier.providers.http import ProviderHttpClient, RequestBudget
from notifier.providers.shotgun.cursor import (
    Position,
    after_param,
    decode_state,
    encode_cursor,
    position_of,
)
from notifier.providers.shotgun.events import SeenEvent, due_probes, observe
from notifier.providers.shotgun.wire import (
    PROVIDER,
    TicketOnTheWire,
    WirePage,
    ticket_parser,
    wire_page,
)
from notifier.providers.wire import id_text as _id, link_parameter
from notifier.timeparse import parse_timestamp

__all__ = ["DEFAULT_BASE_URL", "ShotgunProvider"]

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.shotgun.live"
# Assumption: the limit is undocumented; one public integration paces itself at 100/min.
DEFAULT_BUDGET_PER_MINUTE = 100.0
ALL_EVENTS = "all"
# Pages one poll reads per stream before committing (100 tickets a page): a backlog is
# committed in steps, so progress survives a crash and memory stays bounded.
MAX_PAGES_PER_POLL = 20


@dataclass(frozen=True, slots=True)
class _StreamRead:
    pages: list[WirePage]
    position: Position | None
    requests: int
    more: bool = False


class ShotgunProvider:
    """Reads one Shotgun organizer (optionally some of its events) as a ``Provider``.

    The token goes only in the ``Authorization`` header. ``http`` may be a client shared
    with other sources of the same account (so they share its ``RequestBudget``); its base
    URL must have the same origin as ``base_url``. Without one, the provider opens its own
    with a 100/min budget and closes it in ``close``. ``clock`` decides when watched events
    are probed for a cancellation (``events``).
    """

    def __init__(
        self,
        source_id: SourceId | str,
        organizer_id: int | str,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        event_ids: Sequence[int | str] = (),
        include_cohosted_events: bool = False,
        lookback: timedelta = timedelta(0),
        http: ProviderHttpClient | None = None,
        max_pages: int = MAX_PAGES_PER_POLL,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_pages = max(1, max_pages)
        self._source = SourceId(str(source_id))
        self._organizer_id = str(organizer_id)
        self._headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
        self._tickets_url = base_url.rstrip("/") + "/tickets"
        self._event_ids = tuple(str(event_id) for event_id in event_ids)
        self._cohosted = include_cohosted_events
        self._lookback = lookback
        self._parse = ticket_parser(self._source)
        self._owns_http = http is None
        self._http = http or ProviderHttpClient(
            base_url, budget=RequestBudget(DEFAULT_BUDGET_PER_MINUTE, 60.0)
        )

    @property
    def name(self) -> str:
        return PROVIDER

    async def poll(self, cursor: str | None) -> PollResult:
        """Read every stream from its position, then probe and sweep the watched events
        (``events``); all pages or a ``ProviderError``."""
        positions, watches = decode_state(cursor)
        now = self._clock()
        reads: list[_StreamRead] = []
        for key, event_id in self._streams():
            read = await self._read_stream(event_id, positions.get(key))
            reads.append(read)
            if read.position is not None:
                positions[key] = read.position
        more = any(read.more for read in reads)
        complete = cursor is None and not more
        observe(watches, _seen_events(reads), now)
        if complete:
            # Every ticket was just read (a baseline, a reconcile sweep): a cancelled event
            # among them needs no sweep of its own.
            for watch in watches.values():
                watch.state = "swept" if watch.state == "sweeping" else watch.state
        for event_id in due_probes(watches, now):
            # One page of the event: every ticket on it carries the event's fields.
            probe = await self._read_stream(event_id, None, max_pages=1)
            reads.append(_StreamRead(probe.pages, None, probe.requests))
            watches[event_id].checked_at = now
            observe(watches, _seen_events([probe]), now)
        for event_id, watch in sorted(watches.items()):
            if watch.state == "sweeping":
                read = await self._sweep(event_id, positions)
                reads.append(read)
                more = more or read.more
                watch.state = "sweeping" if read.more else "swept"
        pages = [page for read in reads for page in read.pages]
        tickets = WireTickets(
            [ticket for page in pages for ticket in page.ids],
            [digest for page in pages for digest in page.digests],
            [item for page in pages for item in page.items],
            self._parse,
        )
        if cursor is None and not tickets:
            # A wrong token answers 200 with no tickets: the only hint of a misconfiguration.
            log.warning("source_empty", provider=PROVIDER, source=self._source)
        return PollResult(
            tickets=tickets,
            cursor=encode_cursor(positions, watches),
            complete=complete,
            requests=sum(read.requests for read in reads),
            event_windows=event_windows(ticket for page in pages for ticket in page.events),
            more=more,
        )

    async def _sweep(self, event_id: str, positions: dict[str, Position]) -> _StreamRead:
        """Read every ticket of a cancelled event once, resuming across polls."""
        key = "sweep:" + event_id
        read = await self._read_stream(event_id, positions.get(key))
        if read.more and read.position is not None:
            positions[key] = read.position
        else:
            positions.pop(key, None)
            log.info("shotgun_event_canceled_swept", source=self._source, event_id=event_id)
        return read

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close()

    def _streams(self) -> list[tuple[str, str | None]]:
        if not self._event_ids:
            return [(ALL_EVENTS, None)]
        return [("event:" + event_id, event_id) for event_id in self._event_ids]

    def _first_params(self, event_id: str | None, position: Position | None) -> dict[str, str]:
        params = {"organizer_id": self._organizer_id}
        if event_id is not None:
            params["event_id"] = event_id
        if self._cohosted:
            params["include_cohosted_events"] = "1"
        if position is not None:
            params["after"] = after_param(position, self._lookback)
        return params

    async def _read_stream(
        self, event_id: str | None, start: Position | None, *, max_pages: int | None = None
    ) -> _StreamRead:
        params = self._first_params(event_id, start)
        pages: list[WirePage] = []
        seen: set[str] = set()
        requests = 0
        more = True
        while more and len(pages) < (max_pages or self._max_pages):
            result = await self._http.fetch_json(
                self._tickets_url, params=params, headers=self._headers, decode=wire_page
            )
            requests += result.attempts
            page = result.payload
            assert isinstance(page, WirePage)
            pages.append(page)
            more = page.next_link is not None
            if more:
                # Only the cursor comes from the link: Shotgun Tickets API's example drops
                # include_cohosted_events from pagination.next, so a link followed as
                # given loses co-hosted tickets on page 2 and beyond; and the link's
                # host is never where the token goes.
                params = {**params, "after": _checked_after(page.next_link, seen)}
        last = next((page.items[-1] for page in reversed(pages) if page.items), None)
        position = _advance(start, None if last is None else self._parse(last))
        return _StreamRead(pages, position, requests, more=more)


def _checked_after(link: str | None, seen: set[str]) -> str:
    after = link_parameter(link or "", "after")
    # A server that hands back a cursor it already gave would page forever.
    if after in seen:
        raise FatalProviderError("Shotgun pagination repeated a next link")
    seen.add(after)
    return after


def _advance(start: Position | None, last_read: TicketRecord | None) -> Position | None:
    """The furthest position read: the last record's, never behind where the read began."""
    last = None if last_read is None else position_of(last_read)
    if last is None:
        return start
    if start is None:
        return last
    return max(start, last)


def _seen_events(reads: Iterable[_StreamRead]) -> list[SeenEvent]:
    """Each event the reads show, once: its end and whether it is cancelled."""
    found: dict[object, SeenEvent] = {}
    for read in reads:
        for page in read.pages:
            for ticket in page.events:
                raw_id = ticket.event_id
                if type(raw_id) not in (int, str) or raw_id in found:
                    continue  # a malformed id fails the poll where the ticket is parsed
                try:
                    end = parse_timestamp(ticket.event_end_time)
                    canceled = parse_timestamp(ticket.event_canceled_at) is not None
                    found[raw_id] = SeenEvent(_id(raw_id), end, canceled)
                except (TypeError, ValueError):
                    continue  # parsing the ticket reports it; watching is best effort
    return list(found.values())


def event_windows(tickets: Iterable[TicketOnTheWire]) -> dict[str, EventWindow]:
    """Each event's (start, end) from the event fields every Shotgun ticket carries."""
    windows: dict[str, EventWindow] = {}
    seen: set[object] = set()
    for ticket in tickets:
        raw_id = ticket.event_id
        if type(raw_id) not in (int, str) or raw_id in seen:
            continue  # a malformed id fails the poll where the ticket is parsed, not here
        seen.add(raw_id)
        try:
            event_id = _id(raw_id)
            start = parse_timestamp(ticket.event_start_time)
            end = parse_timestamp(ticket.event_end_time)
        except (TypeError, ValueError):
            continue  # an odd event time must not fail the poll: it only tunes the cadence
        if start is not None:
            windows[event_id] = (start, end)
    return windows
