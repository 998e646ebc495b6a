"""Eventpop adapter: the organizer endpoint read incrementally by ``updated_at`` keyset.

Endpoints (docs/design.md §5, docs/providers.md). The default ``scope="organizer"`` reads
``GET /organizers/{org}/events/{event}/tickets`` (``organizer`` scope), one stream per
event, with ``updated_after`` and ``order_by=updated_at&order=asc``. The events are the
configured ``event_ids``, or without them every current and upcoming event of the
organizer (``discovery``). The seed endpoint ``GET /organizers/{org}/tickets`` only
lists the token user's *own* tickets; it is supported as ``scope="user"``: it has no
time filter, so it is read newest first (``order=desc``) and the read stops at the
first ticket older than the watermark.

Why not page numbers. With ``page=1, 2, ...`` under a fixed filter, a ticket updated
between two requests moves to the end of the ``updated_at`` order and every later
ticket shifts one place forward: the one that slides onto the page already read is
never seen, and the cursor then moves past it (a lost check-in). So every next request
is a fresh ``page=1`` whose ``updated_after`` is the last ``updated_at`` read: a ticket
updated meanwhile only moves *ahead* of the position and is read again later in the same
poll (records are de-duplicated by ticket id, the newest ``updated_at`` wins).

Two unknowns shape the details. Whether ``updated_after``/``updated_before`` are
inclusive is undocumented, and times may be rendered coarser than stored; so each next
request starts ``TIE_MARGIN`` (1 s) *before* the last time read and re-reads that margin.
When more than half a page sits inside the margin (a bulk update gives thousands of
tickets one timestamp), restarting there would make little or no progress: that dense
window is read instead by id keyset (``order_by=id`` + ``min_id``, bounded by
``updated_after``/``updated_before``), which is stable under updates because ids never
move, and the time read resumes past it. A page shorter than the ``per_page`` the server
echoes ends a read (the server may cap our ``per_page``).

Bounded steps. A poll reads at most ``max_pages`` pages (``streams``), commits, and
reports ``more`` so the caller polls again at once from the new cursor: a first baseline
or a long outage makes progress even if the process dies part-way. Streams already
caught up are read first (newest position first), so one event's backlog never holds
back another's door scans.

Deep reads. Door scanners sync late, so a ticket may become visible with an
``updated_at`` up to ``lookback`` (2 min) in the past. Re-reading that window on every
poll costs a dozen pages at door rates, so only a *deep* poll, about once a minute
(``DEEP_INTERVAL`` of the adapter's clock), reads it; other polls read from the position
(less ``TIE_MARGIN``). A deep read starts at the position each stream had when the
previous deep read *began*, minus the lookback: a ticket first visible after that moment
was updated no earlier than that moment minus the lookback, and that position is no
later than that moment. A cursor without deep state makes the next poll deep from its
position minus the lookback. With ``lookback=0`` there are no deep reads, and records at
or before the exact position are dropped. A stream a capped deep step did not reach
keeps its older anchor, so the next deep read still covers it; a first read cut short
anchors at the position it reached, so its continuation steps are not deep.

Auth is a Bearer header only (never ``access_token`` in a query); the refresh-token
grant, its rotation and where the current tokens are kept: ``oauth``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from yarl import URL

from notifier.errors import ConfigError
from notifier.model import SourceId, TicketRecord
from notifier.providers.base import PollResult
from notifier.providers.eventpop.cursor import (
    DEEP_INTERVAL,
    CursorState,
    Position,
    decode_state,
    encode_state,
    position_of,
)
from notifier.providers.eventpop.discovery import DEFAULT_CLOSE_OUT, EventFinder
from notifier.providers.eventpop.oauth import AppToken, GrantBook, WallClock, grant_of
from notifier.providers.eventpop.reads import advance
from notifier.providers.eventpop.streams import TIE_MARGIN, Api, PageBudget, StreamReader
from notifier.providers.eventpop.wire import PROVIDER
from notifier.providers.http import ProviderHttpClient, RequestBudget

DEFAULT_BASE_URL = "https://www.eventpop.me/api/public"
DEFAULT_PER_PAGE = 100
DEFAULT_MAX_PAGES = 20  # pages per step, as Shotgun's adapter
# No documented limit (docs/providers.md); docs/design.md §5 budgets 60/min.
DEFAULT_BUDGET_PER_MINUTE = 60.0
USER_STREAM = "user"
# A discovered event is read on every poll from this long before its start (the default
# live margin, docs/design.md §6), and before that at most once per QUIET_INTERVAL.
LIVE_BEFORE = timedelta(hours=2)
QUIET_INTERVAL = timedelta(seconds=60)

Scope = Literal["organizer", "user"]


class EventpopProvider:
    """Reads one Eventpop organizer's events as a ``Provider``.

    ``http`` may be shared with other sources of the same account (to share its budget);
    its origin must be ``base_url``'s. Without one the provider opens its own with a
    60/min budget and closes it in ``close``. ``token_expires_at`` is the initial access
    token's expiry if known; otherwise it is used until the API answers 401. ``grants``
    shares one OAuth session (and its stored tokens) among the sources of a grant; without
    one the tokens live in this adapter's memory only.
    """

    def __init__(
        self,
        source_id: SourceId | str,
        organizer_id: int | str,
        access_token: str,
        *,
        event_ids: Sequence[int | str] = (),
        base_url: str = DEFAULT_BASE_URL,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        token_expires_at: datetime | None = None,
        scope: Scope = "organizer",
        per_page: int = DEFAULT_PER_PAGE,
        max_pages: int = DEFAULT_MAX_PAGES,
        lookback: timedelta = timedelta(minutes=2),
        close_out: timedelta = DEFAULT_CLOSE_OUT,
        http: ProviderHttpClient | None = None,
        grants: GrantBook | None = None,
        clock: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        if max_pages < 1:
            raise ConfigError("an Eventpop source reads at least one page per step")
        self._source = SourceId(str(source_id))
        self._event_ids = tuple(str(event_id) for event_id in event_ids)
        self._scope = scope
        self._max_pages = max_pages
        self._lookback = lookback
        self._clock = clock
        organizer_url = base_url.rstrip("/") + "/organizers/" + str(organizer_id)
        self._owns_http = http is None
        self._http = http or ProviderHttpClient(
            base_url, budget=RequestBudget(DEFAULT_BUDGET_PER_MINUTE, 60.0)
        )
        token_url = str(URL(base_url).origin().with_path("/oauth/token"))
        grant = grant_of(client_id, client_secret, refresh_token)
        self._auth = (grants or GrantBook()).session(
            self._http,
            token_url,
            access_token,
            grant=grant,
            expires_at=token_expires_at,
            clock=clock,
        )
        self._reader = StreamReader(
            Api(self._http, self._auth), organizer_url, source=self._source, per_page=per_page
        )
        self._finder: EventFinder | None = None
        self._read_at: dict[str, datetime] = {}  # when each stream was last read (memory)
        if scope == "organizer" and not self._event_ids:
            if grant is None:
                raise ConfigError(
                    "an Eventpop source without event_ids lists the organizer's events, "
                    "which needs client_id and client_secret (and refresh_token) of an "
                    "application the organizer owns; set them, or list event_ids"
                )
            app = AppToken(self._http, token_url, grant, clock=clock)
            self._finder = EventFinder(app, organizer_url, close_out=close_out, clock=clock)

    def __repr__(self) -> str:
        return "<EventpopProvider source=" + self._source + " scope=" + self._scope + ">"

    @property
    def name(self) -> str:
        return PROVIDER

    async def poll(self, cursor: str | None) -> PollResult:
        """Read the streams from their positions, up to the step's page budget.

        Returns what was read and a cursor past it, ``more`` when the budget ran out, or
        raises a ``ProviderError`` (then nothing of this step is committed).
        """
        state = decode_state(cursor)
        now = self._clock()
        budget = PageBudget(self._max_pages)
        requests_before = self._auth.requests + self._listing_requests()
        if self._finder is not None:
            await self._finder.refresh(budget)
        streams = self._streams()
        positions = {key: state.positions[key] for key in streams if key in state.positions}
        due = self._due(_caught_up_first(streams, positions), now)
        deep = self._deep_due(state, due, now)
        finished: set[str] = set()
        reached: set[str] = set()
        records: list[TicketRecord] = []
        requests = 0
        for key in due:
            start = positions.get(key)
            lower = self._lower(start, state.anchors.get(key), deep=deep)
            read, done = await self._reader.read(streams[key], lower, budget)
            kept = self._since(read.records.values(), start)
            records.extend(kept)
            requests += read.requests
            position = advance(start, kept)
            if position is not None:
                positions[key] = position
            if read.pages:
                reached.add(key)
                self._read_at[key] = now
            if done:
                finished.add(key)
        more = budget.exhausted
        next_state = self._next_state(state, positions, reached, finished, deep=deep, now=now)
        return PollResult(
            tickets=records,
            cursor=encode_state(next_state),
            complete=cursor is None and not more,
            requests=requests + self._auth.requests + self._listing_requests() - requests_before,
            event_windows=self._finder.windows() if self._finder is not None else {},
            more=more,
        )

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close()

    def _due(self, keys: list[str], now: datetime) -> list[str]:
        """The streams to read this step: all, but a discovered event far from its doors
        (not within ``LIVE_BEFORE`` of its start, nor over) at most once a minute, so an
        organizer's many upcoming events do not eat the budget its live ones need."""
        if self._finder is None:
            return keys
        windows = self._finder.windows()
        due = []
        for key in keys:
            window = windows.get(key.removeprefix("event:"))
            last = self._read_at.get(key)
            quiet = window is not None and now < window[0] - LIVE_BEFORE
            if not quiet or last is None or not last <= now < last + QUIET_INTERVAL:
                due.append(key)
        return due

    def _listing_requests(self) -> int:
        return 0 if self._finder is None else self._finder.requests

    def _streams(self) -> dict[str, str | None]:
        """Stream key -> event id (None: the user's tickets), the cursor's keys."""
        if self._scope == "user":
            return {USER_STREAM: None}
        event_ids = self._event_ids if self._finder is None else self._finder.event_ids()
        return {"event:" + event_id: event_id for event_id in event_ids}

    def _since(self, records: Iterable[TicketRecord], start: Position | None) -> list[TicketRecord]:
        kept = [record for record in records if self._wanted(record)]
        if start is None or self._lookback:
            return kept  # the lookback window is re-read on purpose: the diff drops the same
        # No lookback: the tuple cursor is trusted, so what is at or before it was seen.
        return [record for record in kept if (position_of(record) or start) > start]

    def _wanted(self, record: TicketRecord) -> bool:
        # The user endpoint spans every event of the organizer: keep the configured ones.
        return not self._event_ids or self._scope != "user" or record.event_id in self._event_ids

    # -- deep reads (module docstring): the lookback window about once a minute

    def _deep_due(self, state: CursorState, streams: list[str], now: datetime) -> bool:
        if not self._lookback:
            return False
        last = state.deep_read_at
        if last is None or now < last or now - last >= DEEP_INTERVAL:
            return True
        # A stream read before without an anchor (its first read was a full one) has no
        # safe older start yet: go deep now rather than a minute from now.
        return any(key in state.positions and key not in state.anchors for key in streams)

    def _lower(
        self, start: Position | None, anchor: Position | None, *, deep: bool
    ) -> datetime | None:
        if start is None:
            return None  # a full read
        if not deep:
            return start.updated_at - TIE_MARGIN
        origin = start if anchor is None else min(anchor, start)
        return origin.updated_at - max(self._lookback, TIE_MARGIN)

    def _next_state(
        self,
        state: CursorState,
        positions: dict[str, Position],
        reached: set[str],
        finished: set[str],
        *,
        deep: bool,
        now: datetime,
    ) -> CursorState:
        if not self._lookback:
            return CursorState(positions)  # no deep reads: the older format
        anchors = {key: state.anchors[key] for key in positions if key in state.anchors}
        for key in reached:
            before = state.positions.get(key)
            if before is None and key in positions and key not in finished:
                # A first read cut by the page cap: its later steps must not be deep (a
                # lookback window larger than the cap would never be passed). It covered
                # what was visible when it began, no earlier than any position it read,
                # so the next deep read may start there. A finished first read leaves no
                # anchor: the next poll goes deep at once (``_deep_due``).
                anchors[key] = positions[key]
            elif deep and before is not None:
                # This read began at the positions it was given: the next deep read starts
                # there. A stream a capped step did not reach keeps its older anchor.
                anchors[key] = before
        return CursorState(positions, anchors, now if deep else state.deep_read_at)


def _caught_up_first(streams: dict[str, str | None], positions: dict[str, Position]) -> list[str]:
    """Streams by newest position first, never-read ones last: backlogs go last."""
    return sorted(
        streams,
        key=lambda key: (
            (key not in positions, -(positions[key].updated_at.timestamp()))
            if key in positions
            else (True, 0.0)
        ),
    )
