"""The simulator's ``/v1`` endpoints, in the real API's shapes.

Ticket Tailor API reference: Basic auth with the key as user,
``{data, links}`` envelopes, newest-first cursor paging by object id
(``starting_after``/``ending_before``, the latter winning when both are given), ``limit``
up to 100, relative ``links``, ``created_at`` filters in unix seconds, and the
``{status, error_code, message}`` error body. Secondary sources: ``X-Rate-Limit-*``
headers over a 30-minute window, 429 with ``Retry-After`` once spent; ``GET /v1/check_ins``
with the same cursor paging (public API description of the check-ins endpoint).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from notifier.dev.simulators.faults import fault_response
from notifier.dev.simulators.tickettailor.state import TicketTailorSimulator
from notifier.dev.simulators.tickettailor.wire import Row, SeenRequest

MAX_LIMIT = 100  # API reference: "limit" maximum 100
_CREATED_FILTERS = (
    "created_at",
    "created_at.gt",
    "created_at.gte",
    "created_at.lt",
    "created_at.lte",
)

SIM_KEY: web.AppKey[TicketTailorSimulator] = web.AppKey("tt_simulator", TicketTailorSimulator)
_KEY: web.RequestKey[str] = web.RequestKey("tt_api_key", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RowSource = Callable[[TicketTailorSimulator, str], list[Row]]


def build_app(sim: TicketTailorSimulator) -> web.Application:
    """The aiohttp application serving ``sim``'s ``/v1`` endpoints."""
    app = web.Application(middlewares=[_gate])
    app[SIM_KEY] = sim
    app.router.add_get("/v1/ping", _ping)
    app.router.add_get("/v1/events", _list_handler(_events_rows, {"status"}))
    app.router.add_get("/v1/orders", _list_handler(_orders_rows, {"event_id", "status"}))
    app.router.add_get("/v1/orders/{object_id}", _one_handler(_order_row))
    app.router.add_get(
        "/v1/issued_tickets", _list_handler(_tickets_rows, {"event_id", "status", "order_id"})
    )
    app.router.add_get("/v1/issued_tickets/{object_id}", _one_handler(_ticket_row))
    # Filters of the check-ins list: the check-ins tool description (event_id,
    # issued_ticket_id); paging as every list.
    app.router.add_get(
        "/v1/check_ins", _list_handler(_check_in_rows, {"event_id", "issued_ticket_id"})
    )
    return app


@web.middleware
async def _gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, fault, authenticate and rate-limit every request, in the real API's order."""
    sim = request.app[SIM_KEY]
    sim.requests_served += 1
    authorization = request.headers.get("Authorization")
    sim.seen.append(SeenRequest(request.path_qs, dict(request.query), authorization))
    page_key = _page_key(request.path, request.query)
    fault = sim.faults.take(sim.pages.page_number(page_key))
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    api_key = _basic_user(authorization)
    if api_key is None or sim.box_office_for(api_key) is None:
        return _error(401, "Invalid API key", {}, "UNAUTHORIZED")
    remaining, reset = sim.count_request(api_key)
    limits = {"X-Rate-Limit-Limit": str(sim.rate_limit), "X-Rate-Limit-Reset": str(reset)}
    if remaining < 0:
        limits.update({"X-Rate-Limit-Remaining": "0", "Retry-After": str(max(reset, 1))})
        return _error(429, "Too many requests", limits, "TOO_MANY_REQUESTS")
    request[_KEY] = api_key
    response = await handler(request)
    response.headers.update(limits)
    response.headers["X-Rate-Limit-Remaining"] = str(remaining)
    sim.pages.page_served(page_key)
    return response


def _basic_user(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[len("Basic ") :], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    # API reference: ``-u 'sk_…:'`` sends "key:"; base64(key) alone is accepted too.
    return decoded.partition(":")[0] or None


async def _ping(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    box_office = sim.box_office_for(request[_KEY])
    return _json({"box_office_id": box_office, "box_office_name": "Simulated box office"})


def _list_handler(rows: RowSource, filters: set[str]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        sim = request.app[SIM_KEY]
        query = request.query
        limit = _limit(query.get("limit"))
        if limit is None:
            return _error(400, "limit must be an integer between 1 and 100", {}, "BAD_REQUEST")
        try:
            selected = _filtered(rows(sim, sim.box_office_for(request[_KEY]) or ""), query, filters)
        except ValueError:
            return _error(400, "Invalid filter value", {}, "BAD_REQUEST")
        page, has_before, has_after = _window(selected, query, limit)
        links = _links(request, page, has_before=has_before, has_after=has_after)
        _remember_next(sim, request, links["next"])
        _remember_next(sim, request, links["previous"])
        return _json({"data": page, "links": links})

    return handle


OneSource = Callable[[TicketTailorSimulator, str], Row | None]


def _one_handler(row: OneSource) -> Handler:
    """GET /v1/<objects>/{id}: API reference ("Get a single order", "Get a single issued
    ticket"); another box office's object is not found."""

    async def handle(request: web.Request) -> web.Response:
        sim = request.app[SIM_KEY]
        object_id = request.match_info["object_id"]
        found = row(sim, object_id)
        owner = sim.box_office_for(request[_KEY])
        if found is None or not sim.owned([found], owner or ""):
            return _error(404, "Not found", {}, "NOT_FOUND")
        return _json(found)

    return handle


def _events_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    events = sim.owned(sim.events.values(), box_office)
    return _newest_first([sim.event_view(event) for event in events])


def _orders_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    orders = sim.owned(sim.orders.values(), box_office)
    return _newest_first([sim.order_view(order) for order in orders])


def _tickets_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    return _newest_first(sim.owned(sim.tickets.values(), box_office))


def _check_in_rows(sim: TicketTailorSimulator, box_office: str) -> list[Row]:
    return _newest_first(sim.owned(sim.check_ins.values(), box_office))


def _order_row(sim: TicketTailorSimulator, order_id: str) -> Row | None:
    order = sim.orders.get(order_id)
    return None if order is None else sim.order_view(order)


def _ticket_row(sim: TicketTailorSimulator, ticket_id: str) -> Row | None:
    return sim.tickets.get(ticket_id)


def _newest_first(rows: list[Row]) -> list[Row]:
    # API reference: lists "return objects in reverse chronological order"; the numeric
    # id breaks ties within one second (Assumption: the real tie-break is unknown).
    return sorted(rows, key=lambda row: (row["created_at"], _number(row["id"])), reverse=True)


def _number(object_id: str) -> int:
    return int(object_id.rpartition("_")[2])


def _limit(value: str | None) -> int | None:
    if value is None:
        return MAX_LIMIT
    try:
        limit = int(value)
    except ValueError:
        return None
    return limit if 1 <= limit <= MAX_LIMIT else None


def _filtered(rows: list[Row], query: Mapping[str, str], filters: set[str]) -> list[Row]:
    for name in filters & set(query):
        rows = [row for row in rows if _field(row, name) == query[name]]
    for name in _CREATED_FILTERS:
        if name in query:
            bound = int(query[name])
            rows = [row for row in rows if _compare(name, row["created_at"], bound)]
    return rows


def _field(row: Row, name: str) -> object:
    if name == "event_id" and row.get("object") == "order":
        return row["event_summary"]["id"]
    return row.get(name)


def _compare(name: str, value: int, bound: int) -> bool:
    op = name.partition(".")[2]
    if op == "gt":
        return value > bound
    if op == "gte":
        return value >= bound
    if op == "lt":
        return value < bound
    if op == "lte":
        return value <= bound
    return value == bound


def _window(rows: list[Row], query: Mapping[str, str], limit: int) -> tuple[list[Row], bool, bool]:
    """The page of ``rows`` the cursor asks for, and whether rows lie before/after it.

    ``ending_before=X`` gives the ``limit`` objects just newer than X (API reference:
    ending_before wins when both are given).
    """
    ids = [row["id"] for row in rows]
    before_id, after_id = query.get("ending_before"), query.get("starting_after")
    if before_id:
        # Assumption: an unknown ending_before id is read as the end of the list.
        end = ids.index(before_id) if before_id in ids else len(ids)
        start = max(end - limit, 0)
    else:
        start = ids.index(after_id) + 1 if after_id in ids else 0
        end = start + limit
    return rows[start:end], start > 0, end < len(rows)


def _links(
    request: web.Request, page: list[Row], *, has_before: bool, has_after: bool
) -> dict[str, str | None]:
    # API reference: relative links such as /v1/orders?starting_after=or_120.
    # Assumption: next links keep the request's filters.
    kept = {k: v for k, v in request.query.items() if k not in ("starting_after", "ending_before")}
    next_link = previous = None
    if page and has_after:
        next_link = str(URL(request.path).with_query({**kept, "starting_after": page[-1]["id"]}))
        origin = request.app[SIM_KEY].take_redirect()
        if origin is not None:
            next_link = origin.rstrip("/") + next_link
    if page and has_before:
        previous = str(URL(request.path).with_query({**kept, "ending_before": page[0]["id"]}))
    return {"next": next_link, "previous": previous}


def _remember_next(sim: TicketTailorSimulator, request: web.Request, link: str | None) -> None:
    if link is None:
        return
    target = URL(link)
    page = sim.pages.page_number(_page_key(request.path, request.query))
    sim.pages.remember_next(_page_key(target.path, target.query), page + 1)


def _page_key(path: str, query: Mapping[str, str]) -> str:
    # A request by path, filters and position: a retry of page 3 is page 3.
    return path + "?" + "&".join(k + "=" + v for k, v in sorted(query.items()))


def _json(body: object) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    error_code: str | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "status": status,
        "error_code": error_code or _ERROR_CODES.get(status, "ERROR"),
        "message": message,
    }
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers or {},
    )


_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
}
