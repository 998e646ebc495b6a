"""Shotgun's ``GET /tickets`` served over HTTP from a ``ShotgunSimulator``: the token,
the query, faults, pages and their ``pagination.next`` links (Shotgun Tickets API)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from notifier.dev.simulators.common import start_app
from notifier.dev.simulators.faults import fault_response
from notifier.dev.simulators.shotgun.state import ShotgunSimulator
from notifier.dev.simulators.shotgun.wire import Query, SeenRequest
from notifier.timeparse import parse_timestamp

__all__ = ["build_app", "serve"]


_SIM_KEY: web.AppKey[ShotgunSimulator] = web.AppKey("shotgun_simulator", ShotgunSimulator)


def build_app(sim: ShotgunSimulator) -> web.Application:
    """The aiohttp application serving ``GET /tickets`` from ``sim``."""
    app = web.Application()
    app[_SIM_KEY] = sim
    app.router.add_get("/tickets", _tickets_handler)
    return app


async def serve(sim: ShotgunSimulator, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)


async def _tickets_handler(request: web.Request) -> web.StreamResponse:
    # Shotgun Tickets API, "Endpoint URL": GET https://api.shotgun.live/tickets.
    sim = request.app[_SIM_KEY]
    sim.requests_served += 1
    token, bearer = _token_of(request)
    sim.seen.append(SeenRequest(request.path_qs, dict(request.query), bearer))
    page_key = _page_key(request)
    page = sim.pages.page_number(page_key)
    fault = sim.faults.take(page)
    if fault is not None:
        failed = await fault_response(fault, _error)
        if failed is not None:
            return failed
    organizer = None if token is None else sim.organizer_for(token)
    if organizer is None:
        # Assumption: an unknown or missing token is refused with 401 and a JSON body (the
        # page documents neither the status nor the body).
        return _error(401, "invalid or missing token")
    query = _parse_query(request)
    if isinstance(query, web.Response):
        return query
    response = _page_response(request, sim, query, organizer, page=page, token_in_query=not bearer)
    sim.pages.page_served(page_key)
    return response


def _token_of(request: web.Request) -> tuple[str | None, bool]:
    # Shotgun Tickets API, "Authentication": an organizer adds the token "either as a
    # header (Authorization: Bearer [token]) or in the query string as token".
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip(), True
    return request.query.get("token"), False


def _page_key(request: web.Request) -> str:
    # Identifies a request by its filters and position, so a retry of page 3 is page 3.
    return _key_of(request.query.items())


def _key_of(query: Iterable[tuple[str, str]]) -> str:
    # Next links drop include_cohosted_events (see ``_next_url``): it is no part of a key.
    return "&".join(
        name + "=" + value
        for name, value in sorted(query)
        if name not in ("token", "include_cohosted_events")
    )


def _parse_query(request: web.Request) -> Query | web.Response:
    params = request.query
    if "organizer_id" not in params:
        # Shotgun Tickets API: organizer_id is "required". Assumption: without it, a 400.
        return _error(400, "organizer_id is required")
    try:
        return Query(
            organizer_id=int(params["organizer_id"]),
            event_id=int(params["event_id"]) if params.get("event_id") else None,
            cohosted=params.get("include_cohosted_events", "").lower() in ("1", "true"),
            after=_parse_after(params.get("after")),
        )
    except ValueError:
        return _error(400, "invalid parameter")


def _parse_after(value: str | None) -> tuple[datetime, int] | None:
    """``after`` as a sort key: a bare date is after every id at that instant.

    Shotgun Tickets API: ``after`` is an "ISO date" or "a tuple of [date]_[ticket id]".
    """
    if not value:
        return None
    stamp, sep, ticket_id = value.rpartition("_")
    if not sep:
        when = parse_timestamp(value)
        return None if when is None else (when, sys.maxsize)
    when = parse_timestamp(stamp)
    if when is None:
        raise ValueError("empty after")
    return when, int(ticket_id)


def _page_response(
    request: web.Request,
    sim: ShotgunSimulator,
    query: Query,
    organizer: int,
    *,
    page: int,
    token_in_query: bool,
) -> web.Response:
    # Observed behaviour: a valid token of another organizer is not refused, just empty
    # (HTTP 200 with 0 tickets; see docs/providers.md).
    rows = sim.select(query, sim.page_size) if organizer == query.organizer_id else []
    next_url = None
    # Shotgun Tickets API: "if the page is full, the result contains a link to the next
    # page for your convenience (in pagination.next)".
    if len(rows) == sim.page_size:
        after = rows[-1]["ticket_updated_at"] + "_" + str(rows[-1]["ticket_id"])
        next_url = _next_url(request, after, keep_token=token_in_query)
        if sim.next_origin is not None:
            next_url = str(URL(sim.next_origin).join(URL(next_url).relative()))
            sim.next_origin = None
        sim.pages.remember_next(_page_key_of(next_url), page + 1)
    # Shotgun Tickets API, "Response shape": "your params, the pagination infos, and a list
    # of tickets in data". Assumption: ``next`` is null on the last page (the page says the
    # link is present only when the page is full).
    body = {"params": _echo_params(query), "pagination": {"next": next_url}, "data": rows}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _next_url(request: web.Request, after: str, *, keep_token: bool) -> str:
    # Shotgun Tickets API, the example response: pagination.next is an absolute URL that
    # keeps token, organizer_id and event_id, replaces ``after`` with the last ticket's
    # "<ticket_updated_at>_<ticket_id>", and drops include_cohosted_events although the
    # request (and the echoed params) had it.
    params = {
        name: value
        for name, value in request.query.items()
        if name not in ("after", "include_cohosted_events") and (keep_token or name != "token")
    }
    params["after"] = after
    base = request.url.with_query(None)
    return str(base.with_query(params))


def _page_key_of(url: str) -> str:
    return _key_of(URL(url).query.items())


def _echo_params(query: Query) -> dict[str, Any]:
    # Shotgun Tickets API, the example response: ``params`` echoes organizer_id, event_id
    # and include_cohosted_events (a boolean).
    params: dict[str, Any] = {"organizer_id": query.organizer_id}
    if query.event_id is not None:
        params["event_id"] = query.event_id
    params["include_cohosted_events"] = query.cohosted
    return params


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"error": message, "status": status})
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )
