"""Eventpop adapter: the organizer endpoint read incrementally by ``updated_at`` keyset.

Endpoints (docs/design.md §5, docs/providers.md "Eventpop"). The default ``scope="organizer"`` reads
``GET /organizers/{org}/events/{event}/tickets`` (``organizer`` scope), one stream per
configured event, with ``updated_after`` and ``order_by=updated_at&order=asc``. The user
endpoint ``GET /organizers/{org}/tickets`` only lists the token user's *own* tickets; it
is supported as ``scope="user"``: it has no time filter, so it is read newest first
(``order=desc``) and the read stops at the first ticket older than the watermark.

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
echoes ends a read (the server may cap our ``per_page``). Reads are bounded by
``MAX_PAGES``.

The cursor is opaque JSON ``{"event:<id>": ["<updated_at UTC>", <ticket id>], "deep":
{...}}``: the (updated_at, id) of the newest ticket read per stream, and the deep-read
state. Door scanners sync late, so a ticket may become visible with an ``updated_at`` up
to ``lookback`` (2 min) in the past. Re-reading that window on every poll costs a dozen
pages at door rates, so only a *deep* poll, about once a minute (``DEEP_INTERVAL`` of
the adapter's clock), reads it; other polls read from the position (less
``TIE_MARGIN``). A deep read starts at the position each stream had when the previous
deep read *began*, minus the lookback: a ticket first visible after that moment was
updated no earlier than that moment minus the lookback, and that position is no later
than that moment (it is an update time read before it). Starting from the current
position instead would only cover back-dating up to ``lookback - DEEP_INTERVAL``. A
cursor without deep state (first read, or written by an older version) makes the next
poll deep from its position minus the lookback, as every poll used to be. With
``lookback=0`` there are no deep reads, and records at or before the exact position are
dropped.

Auth is a Bearer header only (never ``access_token`` in a query). With ``client_id``,
``client_secret`` and ``refresh_token`` the access token (2 h) is refreshed with the
refresh-token grant shortly before it expires and, once, on a 401.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson
import structlog
from yarl import URL

from notifier.errors import ConfigError, FatalProviderError
from notifier.model import Holder, SourceId, TicketId, TicketRecord, TicketStatus, TicketType
from notifier.providers.base import PollResult
from notifier.providers.fields import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    optional_id as _opt_id,
    optional_text as _opt_str,
)
from notifier.providers.http import FetchResult, ProviderHttpClient, RequestBudget
from notifier.timeparse import parse_timestamp

__all__ = [
    "DEEP_INTERVAL",
    "DEFAULT_BASE_URL",
    "PROVIDER",
    "CursorState",
    "EventpopProvider",
    "Position",
    "decode_cursor",
    "decode_state",
    "encode_cursor",
    "encode_state",
    "parse_page",
    "parse_ticket",
]

log = structlog.get_logger(__name__)

PROVIDER = "eventpop"
DEFAULT_BASE_URL = "https://www.eventpop.me/api/public"
DEFAULT_PER_PAGE = 100
# No documented limit (Eventpop's public API documents none); docs/design.md §5 budgets 60/min.
DEFAULT_BUDGET_PER_MINUTE = 60.0
CURRENCY = "THB"  # Eventpop prices are satangs (1/100 baht); no currency field exists
TOKEN_LIFETIME = timedelta(seconds=7200)  # documented expires_in of an access token
REFRESH_EARLY = timedelta(minutes=5)
TIE_MARGIN = timedelta(seconds=1)
MAX_PAGES = 10_000
USER_STREAM = "user"
# The lookback window is re-read by a "deep" poll at most this often (adapter clock);
# polls in between read from the cursor only (module docstring).
DEEP_INTERVAL = timedelta(seconds=60)
DEEP_KEY = "deep"  # the cursor's deep-read state; no stream key can be this

Scope = Literal["organizer", "user"]
WallClock = Callable[[], datetime]

STATUSES: Mapping[str, TicketStatus] = {
    "active": TicketStatus.VALID,
    "used": TicketStatus.VALID,  # checked in; check-in is orthogonal to status
    "revoked": TicketStatus.VOID,
}
_status = StatusMap(PROVIDER, STATUSES)

# Provider fields carried into event payloads as sent (revoke_note is the void reason).
RAW_FIELDS = ("reference_code", "revoke_note", "kind", "registered_at", "external_id")

_INTEGER = re.compile(r"[+-]?\d+")


# --------------------------------------------------------------------------- parsing


def parse_page(
    payload: object, *, source: SourceId, event_id: str | int | None = None
) -> list[TicketRecord]:
    """Normalize one tickets envelope ``{success, tickets, count, ...}`` into records.

    ``event_id`` is the event the page was requested for, used when a ticket omits its
    own. Raises ``FatalProviderError`` when the envelope reports failure or is not the
    documented shape: a schema change is not fixed by retrying.
    """
    try:
        tickets = _envelope_tickets(payload)
        types: dict[tuple[object, ...], TicketType] = {}
        fallback = None if event_id is None else str(event_id)
        return [
            parse_ticket(item, source=source, event_id=fallback, types=types) for item in tickets
        ]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise FatalProviderError("malformed Eventpop page: " + _describe(exc)) from exc


def parse_ticket(
    item: object,
    *,
    source: SourceId,
    event_id: str | None = None,
    types: dict[tuple[object, ...], TicketType] | None = None,
) -> TicketRecord:
    """One wire ticket as a ``TicketRecord``; raises KeyError/TypeError/ValueError if malformed.

    ``types`` caches ticket types across the tickets of one page (they repeat a lot).
    """
    if not isinstance(item, dict):
        raise TypeError("ticket is not a JSON object")
    raw_status = item["status"]
    if not isinstance(raw_status, str):
        raise TypeError("status is not a string")
    # Times: "ISO 8601" per the spec; no example shows an offset and none is documented
    # (Assumption, unconfirmed). Found no evidence for Asia/Bangkok, so an offset-less time
    # is read as UTC like every other provider (parse_timestamp).
    updated_at = parse_timestamp(item.get("updated_at"))
    return TicketRecord(
        provider=PROVIDER,
        source=source,
        ticket_id=TicketId(_id(item["id"])),
        event_id=_event_id(item.get("event_id"), event_id),
        order_id=_opt_id(item.get("order_id")),
        ticket_type=_ticket_type(item.get("ticket_type"), {} if types is None else types),
        holder=_holder(item),
        status=_status(raw_status),
        checked_in_at=_checked_in_at(raw_status, item.get("used_at"), updated_at),
        updated_at=updated_at,
        raw={name: item.get(name) for name in RAW_FIELDS},
        status_raw=raw_status,
    )


def _envelope_tickets(payload: object) -> list[object]:
    if not isinstance(payload, dict):
        raise TypeError("page is not a JSON object")
    if payload.get("success") is False:
        raise FatalProviderError("Eventpop answered success: false")
    tickets = payload["tickets"]
    if not isinstance(tickets, list):
        raise TypeError("tickets is not a list")
    return tickets


def _checked_in_at(
    raw_status: str, used_at: object, updated_at: datetime | None
) -> datetime | None:
    checked_in = parse_timestamp(used_at)
    if checked_in is None and raw_status == "used":
        # "used" without used_at: the ticket became used no later than its last update,
        # the closest time the API gives us; better than missing the check-in entirely.
        return updated_at
    return checked_in


def _ticket_type(value: object, cache: dict[tuple[object, ...], TicketType]) -> TicketType:
    if value is None:
        # No field is required by the spec; a ticket without a type still carries a
        # check-in worth reporting, so it is not a reason to fail the page.
        return TicketType("unknown", currency=CURRENCY)
    if not isinstance(value, dict):
        raise TypeError("ticket_type is not an object")
    key = (value.get("id"), value.get("name"), value.get("price_satangs"))
    cached = cache.get(key)
    if cached is None:
        cached = cache[key] = TicketType(_id(key[0]), _opt_str(key[1]), _satangs(key[2]), CURRENCY)
    return cached


def _satangs(value: object) -> int | None:
    """Price in minor units; the spec types it as a string, a real client as a number."""
    if value is None or type(value) is bool:
        return None
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value) if value.is_integer() else None
    if type(value) is str:
        return _satangs_text(value.strip())
    raise TypeError("price_satangs is not a number")


def _satangs_text(text: str) -> int | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None  # an unreadable price must not hide a check-in
    return int(amount) if amount.is_finite() and amount == amount.to_integral_value() else None


def _holder(item: dict[str, Any]) -> Holder:
    first = _opt_str(item.get("firstname"))
    last = _opt_str(item.get("lastname"))
    if not last and not first:
        first, last = _split_name(_opt_str(item.get("full_name") or item.get("name")))
    elif not last and first and " " in first.strip():
        # Some forms collect one "name" box into firstname: "Somchai Jaidee".
        first, last = _split_name(first)
    return Holder(
        first or None, last or None, _opt_str(item.get("email")), _opt_str(item.get("phone"))
    )


def _split_name(full: str | None) -> tuple[str | None, str | None]:
    # Thai and Western names both put the given name first; the rest is the family name.
    if not full or not full.strip():
        return None, None
    given, _, family = full.strip().partition(" ")
    return given, family.strip() or None


def _event_id(value: object, fallback: str | None) -> str:
    if value is None and fallback is not None:
        return fallback
    return _id(value)


# --------------------------------------------------------------------------- cursor


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """The newest ticket read in a stream, in (updated_at, id) order."""

    updated_at: datetime
    ticket_id: int

    def wire(self) -> list[object]:
        return [_wire_time(self.updated_at), self.ticket_id]


@dataclass(frozen=True, slots=True)
class CursorState:
    """Everything the opaque cursor carries.

    ``positions``: the newest ticket read per stream. ``anchors``: each stream's position
    when the last deep read began, and ``deep_read_at`` when that was (adapter clock);
    both absent in cursors written before deep reads existed, which makes the next poll
    deep.
    """

    positions: Mapping[str, Position] = field(default_factory=dict)
    anchors: Mapping[str, Position] = field(default_factory=dict)
    deep_read_at: datetime | None = None


def decode_cursor(cursor: str | None) -> dict[str, Position]:
    """The per-stream positions of an opaque cursor; ``FatalProviderError`` if corrupt."""
    return dict(decode_state(cursor).positions)


def encode_cursor(positions: Mapping[str, Position]) -> str | None:
    """Opaque cursor text ``{stream: ["<UTC ISO time>", <id>]}`` with sorted keys."""
    return encode_state(CursorState(positions))


def decode_state(cursor: str | None) -> CursorState:
    """The whole cursor, of this format or the older one without deep-read state.

    ``FatalProviderError`` if corrupt: restarting silently would re-baseline the source.
    """
    if cursor is None:
        return CursorState()
    try:
        loaded = orjson.loads(cursor)
        if not isinstance(loaded, dict):
            raise TypeError("cursor is not an object")
        deep = loaded.pop(DEEP_KEY, None)
        positions = _positions(loaded)
        if deep is None:
            return CursorState(positions)
        if not isinstance(deep, dict):
            raise TypeError("deep state is not an object")
        return CursorState(
            positions, _positions(deep.get("anchors") or {}), parse_timestamp(deep.get("read_at"))
        )
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise FatalProviderError("corrupt Eventpop cursor: " + type(exc).__name__) from exc


def encode_state(state: CursorState) -> str | None:
    """Opaque cursor text: the positions by stream, plus the deep-read state if any.

    The deep state sits under a key no stream can have (streams are ``event:<id>`` and
    ``user``), so the positions keep the older format's shape.
    """
    if not state.positions:
        return None
    body: dict[str, object] = _wire_positions(state.positions)
    if state.deep_read_at is not None or state.anchors:
        read_at = state.deep_read_at
        body[DEEP_KEY] = {
            "anchors": _wire_positions(state.anchors),
            "read_at": None if read_at is None else _wire_time(read_at),
        }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def _positions(value: object) -> dict[str, Position]:
    if not isinstance(value, dict):
        raise TypeError("positions are not an object")
    return {str(key): _position(item) for key, item in value.items()}


def _wire_positions(positions: Mapping[str, Position]) -> dict[str, object]:
    return {key: positions[key].wire() for key in sorted(positions)}


def _position(value: object) -> Position:
    if not isinstance(value, list) or len(value) != 2 or type(value[1]) is not int:
        raise TypeError("position is not [time, id]")
    updated_at = parse_timestamp(value[0])
    if updated_at is None:
        raise ValueError("empty position time")
    return Position(updated_at, value[1])


def _position_of(record: TicketRecord) -> Position | None:
    if record.updated_at is None or not record.ticket_id.isdigit():
        return None
    return Position(record.updated_at, int(record.ticket_id))


def _wire_time(moment: datetime) -> str:
    # Always UTC with an explicit "Z": a Rails server reads an offset-less time in its own
    # zone (Bangkok), and a "+00:00" would need the "+" escaped in a query string.
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- auth


class _OAuth:
    """The access token and, when configured, the refresh-token grant that renews it.

    Holds secrets: its repr shows none, and nothing here logs or raises a token value.
    """

    def __init__(
        self,
        http: ProviderHttpClient,
        token_url: str,
        access_token: str,
        *,
        grant: tuple[str, str, str] | None,
        expires_at: datetime | None,
        clock: WallClock,
        source: SourceId,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._access_token = access_token
        self._grant = grant  # (client_id, client_secret, refresh_token)
        self._expires_at = expires_at
        self._clock = clock
        self._source = source
        self._lock = asyncio.Lock()
        self.requests = 0

    def __repr__(self) -> str:
        return "<EventpopOAuth refreshable=" + str(self.can_refresh) + ">"

    @property
    def can_refresh(self) -> bool:
        return self._grant is not None

    def headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + self._access_token, "Accept": "application/json"}

    async def ensure_fresh(self) -> None:
        """Refresh ahead of expiry, so a poll never spends a request on a known-dead token."""
        expires_at = self._expires_at
        if (
            self.can_refresh
            and expires_at is not None
            and self._clock() >= expires_at - REFRESH_EARLY
        ):
            await self.refresh(reason="expiring")

    async def refresh(self, *, reason: str) -> None:
        async with self._lock:
            if self._grant is None:
                raise FatalProviderError("Eventpop token cannot be refreshed: no grant configured")
            client_id, client_secret, refresh_token = self._grant
            form = {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": client_secret,
            }
            result = await self._http.post_form(
                self._token_url, form, headers={"Accept": "application/json"}
            )
            self.requests += result.attempts
            expires_in = self._apply(result.payload)
        log.info(
            "token_refreshed",
            provider=PROVIDER,
            source=self._source,
            reason=reason,
            expires_in=expires_in,
        )

    def _apply(self, payload: object) -> int:
        if not isinstance(payload, dict) or type(payload.get("access_token")) is not str:
            raise FatalProviderError("malformed Eventpop token response")
        rotated = payload.get("refresh_token")
        expires_in = payload.get("expires_in")
        if type(expires_in) is not int or expires_in <= 0:
            expires_in = int(TOKEN_LIFETIME.total_seconds())
        if self._grant is not None and type(rotated) is str and rotated:
            # Eventpop rotates refresh tokens: the old one is dead once this one exists.
            self._grant = (self._grant[0], self._grant[1], rotated)
        self._access_token = payload["access_token"]
        self._expires_at = self._clock() + timedelta(seconds=expires_in)
        return expires_in


# --------------------------------------------------------------------------- adapter


@dataclass(slots=True)
class _Read:
    """What one stream's read has gathered: records by id (newest wins) and requests."""

    records: dict[str, TicketRecord] = field(default_factory=dict)
    requests: int = 0
    pages: int = 0

    def add(self, page: Iterable[TicketRecord]) -> None:
        for record in page:
            known = self.records.get(record.ticket_id)
            if known is None or _newer_or_same(record, known):
                self.records[record.ticket_id] = record

    def count_page(self, attempts: int) -> None:
        self.requests += attempts
        self.pages += 1
        if self.pages > MAX_PAGES:
            raise FatalProviderError("Eventpop read exceeded " + str(MAX_PAGES) + " pages")


def _newer_or_same(record: TicketRecord, known: TicketRecord) -> bool:
    if record.updated_at is None or known.updated_at is None:
        return True
    return record.updated_at >= known.updated_at


@dataclass(frozen=True, slots=True)
class _Page:
    records: list[TicketRecord]
    full: bool  # as many tickets as the server's per_page: there may be more


class EventpopProvider:
    """Reads one Eventpop organizer's configured events as a ``Provider``.

    ``http`` may be shared with other sources of the same account (to share its budget);
    its origin must be ``base_url``'s. Without one the provider opens its own with a
    60/min budget and closes it in ``close``. ``token_expires_at`` is the initial access
    token's expiry if known; otherwise it is used until the API answers 401.
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
        lookback: timedelta = timedelta(minutes=2),
        http: ProviderHttpClient | None = None,
        clock: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        self._source = SourceId(str(source_id))
        self._event_ids = tuple(str(event_id) for event_id in event_ids)
        if scope == "organizer" and not self._event_ids:
            raise ConfigError(
                "an Eventpop source needs event_ids (the organizer endpoint is per event)"
            )
        self._scope = scope
        self._per_page = per_page
        self._lookback = lookback
        self._clock = clock
        self._organizer_url = base_url.rstrip("/") + "/organizers/" + str(organizer_id)
        self._owns_http = http is None
        self._http = http or ProviderHttpClient(
            base_url, budget=RequestBudget(DEFAULT_BUDGET_PER_MINUTE, 60.0)
        )
        self._auth = _OAuth(
            self._http,
            str(URL(base_url).origin().with_path("/oauth/token")),
            access_token,
            grant=_grant(client_id, client_secret, refresh_token),
            expires_at=token_expires_at,
            clock=clock,
            source=self._source,
        )

    def __repr__(self) -> str:
        return "<EventpopProvider source=" + self._source + " scope=" + self._scope + ">"

    @property
    def name(self) -> str:
        return PROVIDER

    async def poll(self, cursor: str | None) -> PollResult:
        """Read every stream from its position; all pages or a ``ProviderError``."""
        state = decode_state(cursor)
        now = self._clock()
        deep = self._deep_due(state, now)
        positions = dict(state.positions)
        refreshes_before = self._auth.requests
        records: list[TicketRecord] = []
        requests = 0
        for key, event_id in self._streams():
            start = positions.get(key)
            lower = self._lower(start, state.anchors.get(key), deep=deep)
            read = await self._read_stream(event_id, lower)
            kept = self._since(read.records.values(), start)
            records.extend(kept)
            requests += read.requests
            position = _advance(start, kept)
            if position is not None:
                positions[key] = position
        return PollResult(
            tickets=records,
            cursor=encode_state(self._next_state(state, positions, deep=deep, now=now)),
            complete=cursor is None,
            requests=requests + self._auth.requests - refreshes_before,
        )

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close()

    def _streams(self) -> list[tuple[str, str | None]]:
        if self._scope == "user":
            return [(USER_STREAM, None)]
        return [("event:" + event_id, event_id) for event_id in self._event_ids]

    def _since(self, records: Iterable[TicketRecord], start: Position | None) -> list[TicketRecord]:
        kept = [record for record in records if self._wanted(record)]
        if start is None or self._lookback:
            return kept  # the lookback window is re-read on purpose: the diff drops the same
        # No lookback: the tuple cursor is trusted, so what is at or before it was seen.
        return [record for record in kept if (_position_of(record) or start) > start]

    def _wanted(self, record: TicketRecord) -> bool:
        # The user endpoint spans every event of the organizer: keep the configured ones.
        return not self._event_ids or self._scope != "user" or record.event_id in self._event_ids

    # -- deep reads (module docstring): the lookback window about once a minute

    def _deep_due(self, state: CursorState, now: datetime) -> bool:
        if not self._lookback:
            return False
        last = state.deep_read_at
        if last is None or now < last or now - last >= DEEP_INTERVAL:
            return True
        # A stream read before without an anchor (its first read was a full one) has no
        # safe older start yet: go deep now rather than a minute from now.
        return any(
            key in state.positions and key not in state.anchors for key, _ in self._streams()
        )

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
        self, state: CursorState, positions: dict[str, Position], *, deep: bool, now: datetime
    ) -> CursorState:
        if not self._lookback:
            return CursorState(positions)  # no deep reads: the older format
        if not deep:
            return CursorState(positions, state.anchors, state.deep_read_at)
        # This read began at the positions it was given: the next deep read starts there.
        return CursorState(positions, state.positions, now)

    async def _read_stream(self, event_id: str | None, lower: datetime | None) -> _Read:
        if event_id is None:
            return await self._read_user(lower)
        return await self._read_event(event_id, lower)

    # -- organizer endpoint: updated_at keyset, id keyset inside dense windows

    async def _read_event(self, event_id: str, lower: datetime | None) -> _Read:
        read = _Read()
        while True:
            params = {"order_by": "updated_at", "order": "asc"}
            if lower is not None:
                params["updated_after"] = _wire_time(lower)
            page = await self._event_page(read, event_id, params)
            if not page.full:
                return read
            lower = await self._next_lower(read, event_id, page.records, lower)

    async def _next_lower(
        self, read: _Read, event_id: str, records: list[TicketRecord], lower: datetime | None
    ) -> datetime:
        last = _last_time(records)
        in_margin = sum(1 for record in records if _time(record) >= last - TIE_MARGIN)
        if in_margin * 2 > len(records):
            # Restarting at last - margin would re-read most of this page: read the dense
            # window by id instead, then go on past it.
            await self._sweep(read, event_id, last - TIE_MARGIN, last + 2 * TIE_MARGIN)
            following = last + TIE_MARGIN
        else:
            following = last - TIE_MARGIN
        if lower is not None and following <= lower:
            raise FatalProviderError("Eventpop paging made no progress (updated_after ignored?)")
        return following

    async def _sweep(self, read: _Read, event_id: str, lower: datetime, upper: datetime) -> None:
        """Every ticket updated within (lower, upper), by id keyset: ids do not move."""
        min_id: int | None = None
        while True:
            params = {
                "order_by": "id",
                "order": "asc",
                "updated_after": _wire_time(lower),
                "updated_before": _wire_time(upper),
            }
            if min_id is not None:
                params["min_id"] = str(min_id)
            page = await self._event_page(read, event_id, params)
            if not page.full:
                return
            min_id = _max_id(page.records)

    async def _event_page(self, read: _Read, event_id: str, params: dict[str, str]) -> _Page:
        url = self._organizer_url + "/events/" + event_id + "/tickets"
        page = await self._page(read, url, {**params, "page": "1"}, event_id)
        for record in page.records:
            _time(record)  # keyset paging needs every updated_at
        return page

    # -- user endpoint: newest first, stop past the watermark

    async def _read_user(self, lower: datetime | None) -> _Read:
        # Page numbers are safe here: order=desc puts tickets updated meanwhile at the
        # front, which only repeats a ticket on the next page (de-duplicated) and leaves
        # the updated one for the next poll, whose watermark it is newer than.
        read = _Read()
        number = 1
        while True:
            params = {"order_by": "updated_at", "order": "desc", "page": str(number)}
            page = await self._page(read, self._organizer_url + "/tickets", params, None)
            if not page.full or (lower is not None and _reaches_before(page.records, lower)):
                return _drop_before(read, lower)
            number += 1

    # -- one request

    async def _page(
        self, read: _Read, url: str, params: dict[str, str], event_id: str | None
    ) -> _Page:
        result = await self._get(url, {**params, "per_page": str(self._per_page)})
        read.count_page(result.attempts)
        records = parse_page(result.payload, source=self._source, event_id=event_id)
        read.add(records)
        return _Page(records, len(records) >= _served_per_page(result.payload, self._per_page))

    async def _get(self, url: str, params: Mapping[str, str]) -> FetchResult:
        await self._auth.ensure_fresh()
        try:
            return await self._http.fetch_json(url, params=params, headers=self._auth.headers())
        except FatalProviderError as exc:
            if exc.status != 401 or not self._auth.can_refresh:
                raise
        self._auth.requests += 1  # the refused request
        await self._auth.refresh(reason="unauthorized")
        # Once only: a 401 right after a refresh is a revoked grant, fatal as raised.
        return await self._http.fetch_json(url, params=params, headers=self._auth.headers())


def _grant(
    client_id: str | None, client_secret: str | None, refresh_token: str | None
) -> tuple[str, str, str] | None:
    given = (client_id, client_secret, refresh_token)
    if all(given):
        return client_id or "", client_secret or "", refresh_token or ""
    if any(given):
        raise ConfigError(
            "Eventpop refresh needs client_id, client_secret and refresh_token together"
        )
    return None


def _served_per_page(payload: object, requested: int) -> int:
    # The server may cap per_page: a page of its own size is full even if short of ours.
    echoed = payload.get("per_page") if isinstance(payload, dict) else None
    if type(echoed) is int and 0 < echoed < requested:
        return echoed
    return requested


def _time(record: TicketRecord) -> datetime:
    if record.updated_at is None:
        raise FatalProviderError("Eventpop ticket without updated_at: cannot page by it")
    return record.updated_at


def _last_time(records: list[TicketRecord]) -> datetime:
    return max(_time(record) for record in records)


def _max_id(records: list[TicketRecord]) -> int:
    if not all(record.ticket_id.isdigit() for record in records):
        raise FatalProviderError("Eventpop ticket id is not numeric: cannot page by min_id")
    return max(int(record.ticket_id) for record in records)


def _reaches_before(records: list[TicketRecord], lower: datetime) -> bool:
    return any(record.updated_at is not None and record.updated_at < lower for record in records)


def _drop_before(read: _Read, lower: datetime | None) -> _Read:
    # The last page runs past the watermark window; what is older was read last poll.
    if lower is not None:
        read.records = {
            key: record
            for key, record in read.records.items()
            if record.updated_at is None or record.updated_at >= lower
        }
    return read


def _advance(start: Position | None, records: list[TicketRecord]) -> Position | None:
    """The newest position read, never behind where the read began."""
    positions = [p for p in map(_position_of, records) if p is not None]
    if start is not None:
        positions.append(start)
    return max(positions, default=None)
