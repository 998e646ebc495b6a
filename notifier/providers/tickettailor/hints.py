"""Ticket Tailor webhooks as read hints: which objects a verified delivery names (issue 14).

Ticket Tailor pushes ``ISSUED_TICKET.UPDATED`` (which "includes voiding"), ``ORDER.UPDATED``
("includes cancelling"; a refund arrives as both) and ``ISSUED_TICKET.CREATED``, with no
check-in event (https://developers.tickettailor.com/docs/webhook/configuration). The
envelope is ``{id, created_at, event, resource_url, payload}``, the payload the object as
the REST API spells it (as reported by a third-party integration, docs/providers.md).

A void, refund or cancellation shows in the ordinary reads only at the next sweep, whose
cadence the account's budget sets (minutes at 10,000 tickets). So the updated object a
delivery names is read alone, at once: ``GET /v1/issued_tickets/{id}``, or
``GET /v1/orders/{id}`` with its issued tickets. Only the id is taken from the payload; what
is reported comes from that read, diffed as always, so a forged hint costs one read of an
object then found unchanged. ``ISSUED_TICKET.CREATED`` only wakes: every poll reads the
new-ticket feed, which a hint would duplicate.

Hinted reads are bounded twice: at most ``MAX_PENDING`` wait at once (more are dropped and
left to the sweep), and they spend at most ``HINT_SHARE`` of the account's budget, so a
flood of valid deliveries cannot starve the sweeps and the every-poll feeds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import orjson
import structlog

from notifier.errors import FatalProviderError
from notifier.providers.base import ReadHint
from notifier.providers.tickettailor import parse as p
from notifier.providers.tickettailor.budget import RequestShare

log = structlog.get_logger(__name__)

TICKET: Final = "issued_ticket"
ORDER: Final = "order"
_KINDS: Final[Mapping[str, str]] = {"ISSUED_TICKET.UPDATED": TICKET, "ORDER.UPDATED": ORDER}
# An id goes into a request path: only plain ids (it_50198, or_737352) are read.
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PENDING: Final = 100
HINT_SHARE: Final = 0.25  # of the account's requests per minute, split between its sources

# (path, query) -> the payload; raises FatalProviderError as every read does.
Get = Callable[[str, Mapping[str, str]], Awaitable[object]]


def webhook_hints(body: bytes) -> list[ReadHint]:
    """What a verified delivery names, as read hints; never raises (no hint instead)."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(envelope, dict):
        return []
    event, payload = envelope.get("event"), envelope.get("payload")
    kind = _KINDS.get(event) if isinstance(event, str) else None
    object_id = payload.get("id") if isinstance(payload, dict) else None
    if kind is None or not isinstance(object_id, str) or not _PLAIN_ID.fullmatch(object_id):
        return []
    return [ReadHint(kind, object_id)]


class HintQueue:
    """The hints waiting to be read, and the allowance their reads spend.

    The allowance is a token bucket of ``MAX_PENDING`` reads refilled at ``HINT_SHARE`` of
    the share's budget per source; a hint that finds it empty waits for a later poll. A
    batch is forgotten only once its poll returned (``done``): a failed poll reads it again.
    """

    def __init__(self, share: RequestShare, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._share = share
        self._clock = clock
        self._pending: dict[ReadHint, None] = {}
        self._tokens = float(MAX_PENDING)
        self._updated = clock()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, hints: Iterable[ReadHint]) -> None:
        for hint in hints:
            if hint.kind not in (TICKET, ORDER) or hint in self._pending:
                continue
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
            else:
                self._pending[hint] = None

    def batch(self) -> list[ReadHint]:
        """The hints to read now, orders first (an order's read brings its tickets)."""
        now = self._clock()
        rate = self._share.requests_per_minute / 60.0 * HINT_SHARE / self._share.members
        self._tokens = min(self._tokens + (now - self._updated) * rate, float(MAX_PENDING))
        self._updated = now
        ready = sorted(self._pending, key=lambda hint: hint.kind != ORDER)[: int(self._tokens)]
        self._tokens -= len(ready)
        return ready

    def done(self, hints: Iterable[ReadHint]) -> None:
        for hint in hints:
            self._pending.pop(hint, None)


async def read_hinted(
    hints: Sequence[ReadHint], get: Get, *, limit: int
) -> tuple[list[Any], dict[str | None, p.OrderState | None]]:
    """The wire items of the hinted tickets and the hinted orders' states.

    One request per hint: an order's read brings its ``issued_tickets`` (API reference,
    "Orders" object), and a ticket already brought by one is not read again. A hinted
    object that cannot be had (gone, another box office's, malformed) is skipped: a hint
    never fails the poll, whose ordinary reads and the next sweep still cover it.
    # Assumption: an order without an ``issued_tickets`` list is followed by one page of
    # ``GET /v1/issued_tickets?order_id=`` (a documented filter), a second request.
    """
    items: dict[str, Any] = {}
    orders: dict[str | None, p.OrderState | None] = {}
    for hint in hints:
        try:
            if hint.kind == ORDER:
                order, tickets = await _read_order(hint.object_id, get, limit=limit)
                orders[hint.object_id] = order
                items.update((_item_id(item), item) for item in tickets)
            elif hint.object_id not in items:
                item = await get("/v1/issued_tickets/" + hint.object_id, {})
                items[_item_id(item)] = item
        except FatalProviderError as exc:
            log.warning("tickettailor_hint_skipped", kind=hint.kind, error=str(exc))
    return list(items.values()), orders


async def _read_order(order_id: str, get: Get, *, limit: int) -> tuple[p.OrderState, list[Any]]:
    payload = await get("/v1/orders/" + order_id, {})
    order = p.parse_order(payload)
    assert isinstance(payload, dict)  # parse_order refused anything else
    tickets = payload.get("issued_tickets")
    if not isinstance(tickets, list):
        page = await get("/v1/issued_tickets", {"order_id": order_id, "limit": str(limit)})
        try:
            tickets = p.page_data(page)
        except p.MALFORMED as exc:
            raise FatalProviderError("malformed Ticket Tailor page") from exc
    return order, tickets


def _item_id(item: object) -> str:
    # A malformed item keeps a key of its own; parsing it later says what is wrong.
    object_id = item.get("id") if isinstance(item, dict) else None
    return object_id if isinstance(object_id, str) else f"#{id(item)}"
