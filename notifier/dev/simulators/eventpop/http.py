"""The simulator's HTTP side: Eventpop's public API routes on an aiohttp app.

Routes and answers follow Eventpop's public API Swagger: ``GET /api/public/organizers/
{org}/events/{event}/tickets`` ("Requires User Access Token with organizer scope";
401 Unauthorized, 403 "Organizer scope required or application not owned by organizer",
404 "Event not found"), ``GET /api/public/organizers/{org}/tickets`` (the token user's
own tickets, ``public`` scope; 401 "Invalid user token or organizer mismatch", 403
"Missing public scope"), ``GET /api/public/organizers/{org}/events`` ("Requires
Application Access Token (the application must be owned by this organizer)"; 403
"Application not owned by this organizer") and ``POST /oauth/token``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from notifier.dev.simulators.common import start_app
from notifier.dev.simulators.eventpop.records import (
    BANGKOK,
    DEFAULT_PER_PAGE,
    EVENT_ORDER_FIELDS,
    MAX_PER_PAGE,
    ORDER_FIELDS,
    USER_ORDER_FIELDS,
    SeenRequest,
    TicketQuery,
)
from notifier.dev.simulators.eventpop.state import EventpopSimulator
from notifier.dev.simulators.eventpop.tokens import Token
from notifier.dev.simulators.faults import fault_response

API_PREFIX = "/api/public"  # Swagger: host www.eventpop.me, basePath /api/public

_SIM_KEY: web.AppKey[EventpopSimulator] = web.AppKey("eventpop_simulator", EventpopSimulator)


def build_app(sim: EventpopSimulator) -> web.Application:
    """The aiohttp application serving the list endpoints and ``/oauth/token``."""
    app = web.Application()
    app[_SIM_KEY] = sim
    app.router.add_get(
        API_PREFIX + "/organizers/{organizer_id}/events/{event_id}/tickets", _event_tickets
    )
    app.router.add_get(API_PREFIX + "/organizers/{organizer_id}/tickets", _user_tickets)
    app.router.add_get(API_PREFIX + "/organizers/{organizer_id}/events", _events)
    app.router.add_post("/oauth/token", _oauth_token)
    return app


async def serve(sim: EventpopSimulator, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


async def _event_tickets(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    refused = await _admit(request, sim, "organizer")
    if isinstance(refused, web.Response):
        return refused
    organizer_id, event_id = _path_int(request, "organizer_id"), _path_int(request, "event_id")
    if organizer_id is None or event_id is None or sim.event_organizer(event_id) != organizer_id:
        return _error(404, "Event not found")
    # Swagger securityDefinitions: the organizer scope "requires user-organizer association".
    if not sim.is_member(organizer_id, refused.user_id):
        return _error(
            403, "Forbidden - Organizer scope required or application not owned by organizer"
        )
    query = _parse_query(request, ORDER_FIELDS, filters=True)
    if isinstance(query, web.Response):
        return query
    rows, total = sim.select(query, event_id=event_id)
    return _page(request, sim, query, "tickets", rows, total)


async def _user_tickets(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    refused = await _admit(request, sim, "public")
    if isinstance(refused, web.Response):
        return refused
    organizer_id = _path_int(request, "organizer_id")
    if organizer_id is None or not sim.has_organizer(organizer_id):
        return _error(401, "Unauthorized - Invalid user token or organizer mismatch")
    query = _parse_query(request, USER_ORDER_FIELDS, filters=False)
    if isinstance(query, web.Response):
        return query
    # Swagger: "tickets belonging to the authenticated user ... for events owned by the
    # specified organizer".
    rows, total = sim.select(query, organizer_id=organizer_id, user_id=refused.user_id)
    return _page(request, sim, query, "tickets", rows, total)


async def _events(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    refused = await _admit(request, sim, "public")
    if isinstance(refused, web.Response):
        return refused
    organizer_id = _path_int(request, "organizer_id")
    if organizer_id is None or not sim.has_organizer(organizer_id):
        return _error(401, "Unauthorized - Invalid token or organizer mismatch")
    # Swagger: an application token of an application this organizer owns; a user token
    # is not an application token.
    owner = sim.tokens.owner_of(refused.client_id)
    if not refused.application or owner != organizer_id:
        return _error(403, "Forbidden - Application not owned by this organizer")
    query = _parse_query(request, EVENT_ORDER_FIELDS, filters=False)
    if isinstance(query, web.Response):
        return query
    rows, total = sim.select_events(query, organizer_id)
    return _page(request, sim, query, "events", rows, total)


async def _admit(request: web.Request, sim: EventpopSimulator, scope: str) -> Token | web.Response:
    """Log the request, fire a scripted fault, check the token: the token or a refusal."""
    sim.requests_served += 1
    header = request.headers.get("Authorization", "")
    bearer = header.startswith("Bearer ")
    query_token = request.query.get("access_token")
    sim.seen.append(
        SeenRequest(
            request.method, request.path, dict(request.query), bearer, query_token is not None
        )
    )
    fault = sim.faults.take(sim.read_page(request.path))
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    # Swagger: access_token in the query is "an alternative to Authorization header"; the
    # log above records that it came.
    token = sim.authorize(header[len("Bearer ") :].strip() if bearer else query_token)
    if token is None:
        # Assumption: the WWW-Authenticate header of a Doorkeeper (Rails OAuth) server.
        return _error(
            401,
            "Unauthorized",
            {"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'},
        )
    if scope not in token.scopes:
        return _error(403, "Forbidden - Missing " + scope + " scope")
    return token


def _page(
    request: web.Request,
    sim: EventpopSimulator,
    query: TicketQuery,
    field: str,
    rows: list[dict[str, Any]],
    total: int,
) -> web.Response:
    # Swagger PublicAPI_Entities_TicketsListResponse: {success, tickets, count, total,
    # page, per_page}. Assumption: the events list (whose envelope the Swagger omits)
    # answers the same envelope with the rows under "events".
    body = {
        "success": True,
        field: rows,
        "count": len(rows),
        "total": total,
        "page": query.page,
        "per_page": query.per_page,
    }
    response = web.Response(body=orjson.dumps(body), content_type="application/json")
    # After rendering: a mutation here shows on the *next* page, as between real requests.
    sim.page_served(
        request.path, tuple(row["id"] for row in rows), full=len(rows) == query.per_page
    )
    return response


def _parse_query(
    request: web.Request, order_fields: tuple[str, ...], *, filters: bool
) -> TicketQuery | web.Response:
    # Swagger: order_by (an enum per endpoint, default id), order asc|desc (default asc),
    # page (default 1), per_page (default 10).
    params = request.query
    order_by, order = params.get("order_by", "id"), params.get("order", "asc")
    if order_by not in order_fields:
        return _error(400, "order_by does not have a valid value")
    if order not in ("asc", "desc"):
        return _error(400, "order does not have a valid value")
    try:
        base = TicketQuery(
            order_by=order_by,
            descending=order == "desc",
            page=max(_int(params.get("page")) or 1, 1),
            per_page=min(max(_int(params.get("per_page")) or DEFAULT_PER_PAGE, 1), MAX_PER_PAGE),
        )
        return _with_filters(base, params) if filters else base
    except ValueError:
        return _error(400, "invalid parameter")


def _with_filters(base: TicketQuery, params: Any) -> TicketQuery:
    status = params.get("status")
    return TicketQuery(
        order_by=base.order_by,
        descending=base.descending,
        page=base.page,
        per_page=base.per_page,
        statuses=None if not status else frozenset(s.strip() for s in status.split(",")),
        ticket_type_id=_int(params.get("ticket_type_id")),
        updated_after=_query_time(params.get("updated_after")),
        updated_before=_query_time(params.get("updated_before")),
        min_id=_int(params.get("min_id")),
        max_id=_int(params.get("max_id")),
    )


def _int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


def _query_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace(" ", "+")  # a "+" sent unescaped arrives as a space
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        # Assumption: an offset-less time is read in the app's zone (Bangkok), as Rails does.
        return parsed.replace(tzinfo=BANGKOK)
    return parsed


def _path_int(request: web.Request, name: str) -> int | None:
    try:
        return int(request.match_info[name])
    except ValueError:
        return None


async def _oauth_token(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM_KEY]
    form = {name: str(value) for name, value in (await request.post()).items()}
    sim.seen.append(
        SeenRequest(
            request.method,
            request.path,
            dict(request.query),
            False,
            "access_token" in request.query,
        )
    )
    fault = sim.token_faults.take(1)
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    answer = sim.refresh(form)
    if isinstance(answer, tuple):
        # RFC 6749 §5.2: {"error": code, "error_description": ...}, 400 or 401.
        status, code = answer
        body = {"error": code, "error_description": "The provided authorization grant is invalid."}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
    return web.Response(
        body=orjson.dumps(answer),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},  # RFC 6749 §5.1
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    # Assumption: errors answer {"success": false, "error": message} like the list envelope.
    body = orjson.dumps({"success": False, "error": message})
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )
