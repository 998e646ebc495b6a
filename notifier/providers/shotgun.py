"""Shotgun adapter: ``GET /tickets`` read incrementally with the ``after`` tuple cursor.

The API orders tickets by (``ticket_updated_at``, ``ticket_id``) and accepts
``after=<updated_at>_<ticket_id>``, so one stream per filter resumes exactly after the
last ticket read (docs/design.md §5, §6a). The API filters a single ``event_id``: several
configured events are read as several streams, each with its own position inside the
one opaque cursor. Parsing (``parse_page``, ``wire_page``) is pure and separate from the
I/O. A poll hands the poller its tickets unparsed (``WireTickets``) with a digest of the
wire fields that decide their tracked state, so a sweep of a million unchanged tickets
builds no records.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson
import structlog

from notifier.errors import FatalProviderError
from notifier.model import Holder, SourceId, TicketId, TicketRecord, TicketStatus, TicketType
from notifier.providers.base import EventWindow, PollResult, WireTickets
from notifier.providers.fields import (
    StatusMap,
    describe_problem as _describe,
    id_text as _id,
    next_link,
    optional_id as _opt_id,
    optional_int as _opt_int,
    optional_text as _opt_str,
)
from notifier.providers.http import ProviderHttpClient, RequestBudget
from notifier.state import wire_fingerprint
from notifier.timeparse import format_shotgun_time, parse_timestamp

__all__ = [
    "DEFAULT_BASE_URL",
    "PROVIDER",
    "ShotgunProvider",
    "decode_cursor",
    "encode_cursor",
    "parse_page",
    "parse_ticket",
    "wire_page",
]

log = structlog.get_logger(__name__)

PROVIDER = "shotgun"
DEFAULT_BASE_URL = "https://api.shotgun.live"
# Assumption: the limit is undocumented; one public integration paces itself at 100/min.
DEFAULT_BUDGET_PER_MINUTE = 100.0
ALL_EVENTS = "all"

STATUSES: Mapping[str, TicketStatus] = {
    "valid": TicketStatus.VALID,
    "resold": TicketStatus.RESOLD,
    "refunded": TicketStatus.REFUNDED,
    "canceled": TicketStatus.CANCELED,
    "payment_plan_pending": TicketStatus.PENDING,
    "pending_approval": TicketStatus.PENDING,
    # The Smartboard API spells it this way; accept it should /tickets ever do so too.
    "pending_organizer_approval": TicketStatus.PENDING,
    "rejected": TicketStatus.REJECTED,
}
_status = StatusMap(PROVIDER, STATUSES)

# Pages one poll reads per stream before committing (100 tickets a page): a backlog is
# committed in steps, so progress survives a crash and memory stays bounded.
MAX_PAGES_PER_POLL = 20

# The wire fields a ticket's tracked fields (status, check-in time, holder) are normalized
# from, and the only ones ``parse_ticket`` reads for them: equal values, equal state.
TRACKED_WIRE_FIELDS = (
    "ticket_status",
    "ticket_scanned_at",
    "contact_first_name",
    "contact_last_name",
    "contact_email",
    "contact_phone",
)
_PAGE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)

# Provider fields worth carrying into event payloads, kept as the provider sent them.
RAW_FIELDS = (
    "ticket_scan_code",
    "user_id",
    "contact_id",
    "deal_channel",
    "deal_sub_category",
    "event_start_time",
    "event_end_time",
    "event_canceled_at",
    "ordered_at",
)


# --------------------------------------------------------------------------- parsing


def parse_page(payload: object, *, source: SourceId) -> tuple[list[TicketRecord], str | None]:
    """Normalize one ``/tickets`` page into records and its ``pagination.next`` link.

    Raises ``FatalProviderError`` when the payload is not the documented envelope or a
    ticket lacks a required field: a schema change is not fixed by retrying.
    """
    try:
        data, pagination = _envelope(payload)
        deals: dict[tuple[object, ...], TicketType] = {}
        records = [parse_ticket(item, source=source, deals=deals) for item in data]
        return records, _next_link(pagination)
    except _PAGE_ERRORS as exc:
        raise _malformed(exc) from exc


class _Envelope(msgspec.Struct):
    """The documented page envelope, each ticket left as its undecoded JSON text."""

    data: list[msgspec.Raw]
    pagination: object = None


class _TicketOnTheWire(msgspec.Struct):
    """What a sweep decodes of every ticket: its id, the fields its tracked state comes
    from (``TRACKED_WIRE_FIELDS``), and its event's times (the live window)."""

    ticket_id: int | str
    ticket_status: object = None
    ticket_scanned_at: object = None
    contact_first_name: object = None
    contact_last_name: object = None
    contact_email: object = None
    contact_phone: object = None
    event_id: object = None
    event_start_time: object = None
    event_end_time: object = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_ON_THE_WIRE = msgspec.json.Decoder(_TicketOnTheWire)
_tracked_values = operator.attrgetter(*TRACKED_WIRE_FIELDS)


@dataclass(frozen=True, slots=True)
class WirePage:
    """One ``/tickets`` page left unparsed: each ticket's JSON text, id, wire digest and
    event times."""

    items: list[msgspec.Raw]
    ids: list[TicketId]
    digests: list[int]
    events: list[_TicketOnTheWire]
    next_link: str | None


def wire_page(body: bytes) -> WirePage:
    """Decode one page's envelope, and of each ticket only its id, tracked wire fields and
    event times; digest the tracked fields. The rest of a ticket is decoded only if the
    poller parses it, which it does for every ticket it has not seen as it is.

    Raises ``ValueError`` if the body is not JSON (a truncated answer: retried),
    ``FatalProviderError`` if it is not the documented envelope or a ticket's id is bad.
    """
    try:
        envelope = _ENVELOPE.decode(body)
        tickets = [_ON_THE_WIRE.decode(item) for item in envelope.data]
        ids = [TicketId(_id(ticket.ticket_id)) for ticket in tickets]
        digests = [wire_fingerprint(_tracked_values(ticket)) for ticket in tickets]
        next_page = _next_link(envelope.pagination)
    except msgspec.ValidationError as exc:
        raise FatalProviderError("malformed Shotgun page: " + _describe_validation(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ValueError("not JSON") from exc
    except _PAGE_ERRORS as exc:
        raise _malformed(exc) from exc
    return WirePage(envelope.data, ids, digests, tickets, next_page)


def _describe_validation(exc: msgspec.ValidationError) -> str:
    # msgspec names the path ("at `$.data[0].ticket_id`") and the expected type, never the
    # value: safe to log, unlike a holder's personal data.
    return "ValidationError: " + str(exc)[:120]


def _envelope(payload: object) -> tuple[list[Any], object]:
    """The documented envelope's ``data`` list and ``pagination``; TypeError/KeyError if
    it is not that envelope."""
    if not isinstance(payload, dict):
        raise TypeError("page is not a JSON object")
    data = payload["data"]
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    return data, payload.get("pagination")


def ticket_parser(source: SourceId) -> Callable[[object], TicketRecord]:
    """``parse_ticket`` for the tickets of one read, failing as a malformed page would."""
    deals: dict[tuple[object, ...], TicketType] = {}

    def parse(item: object) -> TicketRecord:
        try:
            if isinstance(item, msgspec.Raw):
                item = msgspec.json.decode(item)  # valid JSON: the page decoded it
            return parse_ticket(item, source=source, deals=deals)
        except _PAGE_ERRORS as exc:
            raise _malformed(exc) from exc

    return parse


def _malformed(exc: Exception) -> FatalProviderError:
    return FatalProviderError("malformed Shotgun page: " + _describe(exc))


def parse_ticket(
    item: object,
    *,
    source: SourceId,
    deals: dict[tuple[object, ...], TicketType] | None = None,
) -> TicketRecord:
    """One wire ticket as a ``TicketRecord``; raises KeyError/TypeError/ValueError if malformed.

    ``deals`` caches ticket types across the tickets of one page (they repeat a lot).
    The hot path of a sweep: fields are read in a fixed order (so the first problem found
    is always the same one) and positional arguments spare the keyword matching.
    """
    if not isinstance(item, dict):
        raise TypeError("ticket is not a JSON object")
    raw_status = item["ticket_status"]
    if not isinstance(raw_status, str):
        raise TypeError("ticket_status is not a string")
    get = item.get
    return TicketRecord(
        PROVIDER,
        source,
        TicketId(_id(item["ticket_id"])),
        _id(item["event_id"]),
        _opt_id(get("order_id")),
        _ticket_type(item, {} if deals is None else deals),
        _holder(item),
        _status(raw_status),
        parse_timestamp(get("ticket_scanned_at")),
        parse_timestamp(item["ticket_updated_at"]),
        {name: get(name) for name in RAW_FIELDS},
        raw_status,
        parse_timestamp(get("ticket_canceled_at")),
    )


def _ticket_type(item: dict[str, Any], deals: dict[tuple[object, ...], TicketType]) -> TicketType:
    key = (item["deal_id"], item.get("deal_title"), item.get("deal_price"), item.get("currency"))
    cached = deals.get(key)
    if cached is None:
        cached = deals[key] = TicketType(
            _id(key[0]), _opt_str(key[1]), _opt_int(key[2]), _currency(key[3])
        )
    return cached


def _currency(value: object) -> str | None:
    # Shotgun sends "eur"; payloads carry ISO 4217's upper case.
    text = _opt_str(value)
    return None if text is None else text.upper()


def _holder(item: dict[str, Any]) -> Holder:
    values = (
        item.get("contact_first_name"),
        item.get("contact_last_name"),
        item.get("contact_email"),
        item.get("contact_phone"),
    )
    for value in values:
        if value is not None and type(value) is not str:
            return Holder(*map(_opt_str, values))  # converts numbers, rejects the rest
    return Holder(*values)


def _next_link(pagination: object) -> str | None:
    return next_link(pagination, "pagination")


# --------------------------------------------------------------------------- cursor


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a stream stands: the last ticket read, in the provider's sort order."""

    updated_at: datetime
    ticket_id: int

    @classmethod
    def parse(cls, text: str) -> Position:
        stamp, _, ticket_id = text.rpartition("_")
        updated_at = parse_timestamp(stamp)
        if updated_at is None:
            raise ValueError("empty position")
        return cls(updated_at, int(ticket_id))

    def text(self) -> str:
        return format_shotgun_time(self.updated_at) + "_" + str(self.ticket_id)


def decode_cursor(cursor: str | None) -> dict[str, Position]:
    """The per-stream positions of an opaque cursor; ``FatalProviderError`` if corrupt."""
    if cursor is None:
        return {}
    try:
        loaded = orjson.loads(cursor)
        if not isinstance(loaded, dict):
            raise TypeError("cursor is not an object")
        return {str(key): Position.parse(value) for key, value in loaded.items()}
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise FatalProviderError("corrupt Shotgun cursor: " + type(exc).__name__) from exc


def encode_cursor(positions: Mapping[str, Position]) -> str | None:
    """Opaque cursor text, ``{stream_key: "YYYY-MM-DD HH:MM:SS.ffffff_<id>"}``; sorted keys."""
    if not positions:
        return None
    texts = {key: positions[key].text() for key in sorted(positions)}
    return orjson.dumps(texts).decode()


def _position_of(record: TicketRecord) -> Position | None:
    if record.updated_at is None or not record.ticket_id.isdigit():
        return None
    return Position(record.updated_at, int(record.ticket_id))


def _after_param(position: Position, lookback: timedelta) -> str:
    if not lookback:
        return position.text()
    # Re-read a window before the position; id 0 takes in every ticket at that instant.
    return Position(position.updated_at - lookback, 0).text()


# --------------------------------------------------------------------------- adapter


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
    with a 100/min budget and closes it in ``close``.
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
    ) -> None:
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
        """Read every stream from its position; all pages or a ``ProviderError``."""
        positions = decode_cursor(cursor)
        pages: list[WirePage] = []
        requests = 0
        more = False
        for key, event_id in self._streams():
            read = await self._read_stream(event_id, positions.get(key))
            pages.extend(read.pages)
            requests += read.requests
            more = more or read.more
            if read.position is not None:
                positions[key] = read.position
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
            cursor=encode_cursor(positions),
            complete=cursor is None and not more,
            requests=requests,
            event_windows=event_windows(ticket for page in pages for ticket in page.events),
            more=more,
        )

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
            params["after"] = _after_param(position, self._lookback)
        return params

    async def _read_stream(self, event_id: str | None, start: Position | None) -> _StreamRead:
        url: str | None = self._tickets_url
        params: dict[str, str] | None = self._first_params(event_id, start)
        pages: list[WirePage] = []
        seen: set[str] = set()
        requests = 0
        while url is not None and len(pages) < self._max_pages:
            result = await self._http.fetch_json(
                url, params=params, headers=self._headers, decode=wire_page
            )
            requests += result.attempts
            page = result.payload
            assert isinstance(page, WirePage)
            pages.append(page)
            url, params = _checked_next(page.next_link, seen), None
        last = next((page.items[-1] for page in reversed(pages) if page.items), None)
        position = _advance(start, None if last is None else self._parse(last))
        return _StreamRead(pages, position, requests, more=url is not None)


def _checked_next(url: str | None, seen: set[str]) -> str | None:
    # A server that hands back a link it already gave would page forever.
    if url is not None and url in seen:
        raise FatalProviderError("Shotgun pagination repeated a next link")
    if url is not None:
        seen.add(url)
    return url


def _advance(start: Position | None, last_read: TicketRecord | None) -> Position | None:
    """The furthest position read: the last record's, never behind where the read began."""
    last = None if last_read is None else _position_of(last_read)
    if last is None:
        return start
    if start is None:
        return last
    return max(start, last)


def event_windows(tickets: Iterable[_TicketOnTheWire]) -> dict[str, EventWindow]:
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
