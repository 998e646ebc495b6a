"""The Nuweb simulator over HTTP: the endpoints, their envelopes, auth and rate limit.

Faithful quirks, each sourced where it is implemented: Bearer token plus
``X-NU-COMPANY-ID``; 401 / 403 / 422 with ``{"message": ...}`` bodies (admin OpenAPI,
``AuthenticationError`` / ``AuthorizationError`` / validation responses); the rolling
per-company limit with its headers and a 429 without ``Retry-After``; links on the spec's
example origin; the 60 s cache of identical GETs on the documented paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from notifier.dev.simulators.common import start_app
from notifier.dev.simulators.faults import fault_response
from notifier.dev.simulators.nuweb.records import (
    ENTRY,
    ENTRY_MAX,
    EVENT_TICKETS,
    EVENTS,
    EVENTS_MAX,
    INVENTORY_MAX,
    ORDER_ITEMS,
    ORDER_ITEMS_MAX,
    SALE_ITEMS,
    OrderItemQuery,
    SeenRequest,
)
from notifier.dev.simulators.nuweb.simulator import NuwebSimulator
from notifier.timeparse import format_nuweb_time, parse_timestamp

__all__ = ["build_app", "serve"]


_SIM_KEY: web.AppKey[NuwebSimulator] = web.AppKey("nuweb_simulator", NuwebSimulator)


def build_app(sim: NuwebSimulator) -> web.Application:
    """The aiohttp application serving the five endpoints from ``sim``."""
    app = web.Application()
    app[_SIM_KEY] = sim
    app.router.add_get(EVENT_TICKETS, _inventory_handler)
    app.router.add_get(SALE_ITEMS, _inventory_handler)
    app.router.add_get(ENTRY, _entry_handler)
    app.router.add_get(ORDER_ITEMS, _order_items_handler)
    app.router.add_get(EVENTS, _events_handler)
    return app


async def serve(sim: NuwebSimulator, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"message": message}),
        content_type="application/json",
        headers=headers or {},
    )


def _invalid(field_name: str, message: str) -> web.Response:
    body = {"message": "The given data was invalid.", "errors": {field_name: [message]}}
    return web.Response(status=422, body=orjson.dumps(body), content_type="application/json")


@dataclass(frozen=True, slots=True)
class _Admitted:
    sim: NuwebSimulator
    company: int
    rate_headers: dict[str, str]


async def _admit(request: web.Request, page: int) -> _Admitted | web.Response:
    """Log, faults, auth and the rate limit: who may be served, or the response that ends
    the request."""
    known = await _authenticate(request, page)
    if isinstance(known, web.Response):
        return known
    sim, company = known
    rate = _rate_headers(sim, company)
    if isinstance(rate, web.Response):
        return rate
    return _Admitted(sim, company, rate)


async def _authenticate(
    request: web.Request, page: int
) -> tuple[NuwebSimulator, int] | web.Response:
    sim = request.app[_SIM_KEY]
    sim.requests_served += 1
    header = request.headers.get("Authorization")
    company_header = request.headers.get("X-NU-COMPANY-ID")
    sim.seen.append(SeenRequest(request.path, dict(request.query), header, company_header))
    path_faults = sim.path_faults.get(request.path)
    fault = path_faults.take(page) if path_faults else None
    fault = fault or sim.faults.take(page)
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    if header is None or not header.startswith("Bearer "):
        return _error(401, "Unauthenticated.")
    company = sim.company_for(header[len("Bearer ") :].strip(), company_header)
    if isinstance(company, tuple):
        return _error(*company)
    return sim, company


def _rate_headers(sim: NuwebSimulator, company: int) -> dict[str, str] | web.Response:
    now = sim.now().timestamp()
    allowed, remaining, available = sim.limiter.hit(company, now)
    headers = {"X-Remaining-Requests": str(remaining), "X-Available-In-Seconds": str(available)}
    if not allowed:
        sim.rate_limited += 1
        # Admin OpenAPI, ``TooManyRequests``: the two rate headers, no Retry-After.
        return _error(429, "Too Many Attempts.", headers)
    return headers


# Assumption: a parameter that does not parse is a 422 with Laravel's validation body, as
# the spec's ``ValidationError`` responses show for the endpoints that document them.
def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    return int(text)  # ValueError: the handler answers 422


def _time_param(request: web.Request, name: str) -> datetime | None:
    return parse_timestamp(request.query.get(name) or None)


def _page_of(request: web.Request, size: int) -> int:
    try:
        offset = _int_param(request, "offset")
        if offset is not None:
            return offset // max(size, 1) + 1
        return _int_param(request, "page") or 1
    except ValueError:
        return 1


def _limit(request: web.Request, maximum: int) -> int:
    limit = _int_param(request, "limit")
    if limit is None:
        return maximum
    if not 1 <= limit <= maximum:
        raise ValueError("limit")
    return limit


def _links(request: web.Request, sim: NuwebSimulator, page: int, pages: int) -> dict[str, str]:
    """First/last/prev/next/self as the spec's examples give them: absolute URLs on the
    spec's example origin (``SPEC_LINK_ORIGIN``, unless ``link_origin`` is None) carrying
    only ``?page=N`` (``http://api.willms.com/v1/event-tickets?page=5``): a client must
    send its filters again with every page."""
    base = request.url.with_query(None)

    def at(number: int, *, origin: str | None = sim.link_origin) -> str:
        url = base.with_query({"page": str(number)})
        return str(url) if origin is None else origin.rstrip("/") + url.path_qs

    links = {"first": at(1), "last": at(pages), "self": at(page)}
    if page > 1:
        links["prev"] = at(page - 1)
    if page < pages:
        links["next"] = at(page + 1, origin=sim.next_origin or sim.link_origin)
        sim.next_origin = None
    return links


def _window(rows: list[Any], request: web.Request, limit: int) -> tuple[list[Any], int, int]:
    """The rows of the requested page: "Offset will always take precedence over page"
    (admin OpenAPI, the ``offset`` parameter)."""
    offset = _int_param(request, "offset")
    page = _int_param(request, "page")
    start = offset if offset is not None else ((page or 1) - 1) * limit
    pages = max(math.ceil(len(rows) / limit), 1)
    return rows[max(start, 0) : max(start, 0) + limit], start // limit + 1, pages


async def _inventory_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, INVENTORY_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    if request.path == EVENT_TICKETS and sim.event_tickets_gone is not None:
        # "This endpoint has been deprecated and will be removed" (admin OpenAPI).
        return _error(sim.event_tickets_gone, "Not Found.", rate)
    return _cached_or(request, sim, company, rate, _inventory_body, "Invalid inventory query.")


def _cached_or(
    request: web.Request,
    sim: NuwebSimulator,
    company: int,
    rate: dict[str, str],
    render: Callable[[web.Request, NuwebSimulator, int], bytes],
    invalid: str,
) -> web.Response:
    """The body of an identical GET within the cache window, or a fresh one (cached)."""
    cache_key = request.path_qs
    body = sim.cached(company, cache_key) if request.path in sim.cached_paths else None
    if body is None:
        try:
            body = render(request, sim, company)
        except ValueError:
            return _invalid("limit", invalid)
        if request.path in sim.cached_paths:
            sim.store(company, cache_key, body)
    return web.Response(body=body, content_type="application/json", headers=rate)


async def _events_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, EVENTS_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    return _cached_or(request, sim, company, rate, _events_body, "Invalid events query.")


def _events_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes:
    """Admin OpenAPI, GET /v1/events: ``events``, ``links``, ``meta.total``; ``endingAfter``
    and ``withTrashed`` filter, the others (``hideChildEvents``, ...) are accepted."""
    limit = min(_limit(request, EVENTS_MAX), sim.events_page_size)
    trashed = request.query.get("withTrashed", "") == "true"
    rows = sim.listed_events(company, _time_param(request, "endingAfter"), trashed)
    shown, page, pages = _window(rows, request, limit)
    body = {
        "companyId": company,
        "companyName": "Company " + str(company),
        "events": [event.wire(event_id) for event_id, event in shown],
        "links": _links(request, sim, page, pages),
        "meta": {"total": len(rows)},
    }
    return orjson.dumps(body)


def _inventory_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes:
    limit = min(_limit(request, INVENTORY_MAX), sim.inventory_page_size)
    trashed = request.query.get("withTrashed", "") == "true"
    rows = sim.sale_items(
        company, _int_param(request, "eventId"), _time_param(request, "lastUpdated"), trashed
    )
    shown, page, pages = _window(rows, request, limit)
    key = "saleItems" if request.path == SALE_ITEMS else "tickets"
    if key == "tickets":
        for row in shown:  # "Retrieve Event Tickets" fields: ``processing_fee``, no ``type``
            row.pop("type", None)
            row["processing_fee"] = row.pop("processingFee")
    body = {
        key: shown,
        "timeslots": [],
        "links": _links(request, sim, page, pages),
        "meta": {"total": len(rows)},
    }
    return orjson.dumps(body)


async def _entry_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, ENTRY_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    if not request.query.get("eventId"):
        return _invalid("eventId", "The event id field is required.")
    try:
        body = _entry_body(request, sim, company)
    except ValueError:
        return _invalid("limit", "Invalid entry ticket query.")
    if body is None:
        # Assumption: an unknown event is a 404 with Laravel's model-not-found message.
        return _error(404, "No query results for model [Event].")
    return web.Response(body=body, content_type="application/json", headers=rate)


def _entry_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes | None:
    event_id = int(request.query["eventId"])
    if not sim.has_event(event_id):
        return None
    limit = min(_limit(request, ENTRY_MAX), sim.entry_page_size)
    list_end = sim.list_end_time()
    rows = sim.entries(company, event_id, _time_param(request, "startTime"))
    shown, page, pages = _window(rows, request, limit)
    zones = request.query.get("includeZones", "") in ("true", "1")
    body = {
        "content": [entry.wire(zones=zones, ticket_id=ticket_id) for ticket_id, entry in shown],
        "listEndTime": format_nuweb_time(list_end),
        "total": len(rows),
        "pagination": _links(request, sim, page, pages),
        "dataCaptureQuestions": [],
    }
    return orjson.dumps(body)


async def _order_items_handler(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, _page_of(request, ORDER_ITEMS_MAX))
    if isinstance(admitted, web.Response):
        return admitted
    sim, company, rate = admitted.sim, admitted.company, admitted.rate_headers
    try:
        body = _order_items_body(request, sim, company)
    except ValueError:
        return _invalid("limit", "Invalid order items query.")
    return web.Response(body=body, content_type="application/json", headers=rate)


def _order_items_body(request: web.Request, sim: NuwebSimulator, company: int) -> bytes:
    limit = min(_limit(request, ORDER_ITEMS_MAX), sim.order_items_page_size)
    rows = sim.order_items(company, _order_item_query(request))
    shown, page, pages = _window(rows, request, limit)
    body = {
        "data": [item.wire(item_id) for item_id, item in shown],
        "links": _links(request, sim, page, pages),
        "meta": {"total": len(rows)},
    }
    return orjson.dumps(body)


def _order_item_query(request: web.Request) -> OrderItemQuery:
    """The filters of the request; ValueError (a 422) for one that does not parse."""
    events = _list_param(request, "eventIds")
    return OrderItemQuery(
        event_ids=None if events is None else frozenset(int(event) for event in events),
        since=_time_param(request, "lastUpdated"),
        trashed=request.query.get("withTrashed", "") == "true",
        types=None if (types := _list_param(request, "type")) is None else frozenset(types),
        is_resale=_bool_param(request, "isResale"),
        order_id=_int_param(request, "orderId"),
        customer_id=_int_param(request, "customerId"),
    )


def _list_param(request: web.Request, name: str) -> list[str] | None:
    """A list given as a comma separated string or repeated (``name`` or ``name[]``)."""
    values = request.query.getall(name, []) + request.query.getall(name + "[]", [])
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return parts or None


def _bool_param(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if text not in ("true", "false", "1", "0"):
        raise ValueError(name)
    return text in ("true", "1")
