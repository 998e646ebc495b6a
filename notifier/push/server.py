"""``POST /ingest/{source_id}``: verify a provider's webhook, wake that source, answer fast.

It runs on a port of its own, apart from health and metrics, so that it alone can be
exposed through an Ingress. Whatever happens next, the provider gets its answer within
its timeout (Nuweb waits 3 s): the handler only verifies and sets a flag. A bad or missing
signature is 401 with no reason given; an unknown source is 404 and only counted (a scan
of the internet must not fill the logs); an oversized or slow body is refused. A verified
body may name the objects that changed (``IngestRoute.hints``, per provider): those become
read hints on the trigger, and a body that names nothing readable still wakes the poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import structlog
from aiohttp import web
from prometheus_client import Counter

from notifier.providers.base import ReadHint
from notifier.push.signatures import SignatureCheck

log = structlog.get_logger(__name__)

MAX_BODY_BYTES: Final = 1024 * 1024  # Nuweb order payloads list every item; far below this
READ_TIMEOUT_S: Final = 2.0  # inside Nuweb's 3 s, so even a slow sender gets an answer
_CHUNK: Final = 64 * 1024

PUSH_DELIVERIES = Counter(
    "notifier_push_deliveries_total",
    "Provider webhook deliveries by outcome (accepted, unauthorized, unknown_source, "
    "too_large, timeout)",
    ["provider", "outcome"],
)

PUSH_HINTS = Counter(
    "notifier_push_hints_total",
    "Objects named by verified deliveries, by outcome (kept to be read, dropped past the "
    "bound: left to the ordinary reads)",
    ["provider", "outcome"],
)

HintParser = Callable[[bytes], Sequence[ReadHint]]


def _no_hints(body: bytes) -> Sequence[ReadHint]:
    return ()


class Wakeable(Protocol):
    """A source's trigger here, or a relay to the replica that holds it."""

    def fire(self, hints: Iterable[ReadHint] = ()) -> None: ...

    @property
    def hints_dropped(self) -> int:
        """Hints refused so far for being past the bound (metrics)."""
        ...


@dataclass(frozen=True, slots=True)
class IngestRoute:
    """What one source's endpoint checks, and whom it wakes."""

    provider: str
    check: SignatureCheck
    trigger: Wakeable
    hints: HintParser = _no_hints  # the provider's reading of a verified body


def _hints_of(route: IngestRoute, body: bytes) -> Sequence[ReadHint]:
    """The route's hints for ``body``; none, never an error, whatever the body holds."""
    try:
        return route.hints(body)
    except Exception:  # a parser bug must not cost the wake-up (nor the provider a 5xx)
        log.warning("push_hints_unreadable", provider=route.provider)
        return ()


def ingest_app(
    routes: Mapping[str, IngestRoute],
    *,
    max_body: int = MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The inbound webhook application for ``routes`` (source id → route)."""

    async def ingest(request: web.Request) -> web.Response:
        route = routes.get(request.match_info["source_id"])
        if route is None:
            PUSH_DELIVERIES.labels("", "unknown_source").inc()
            return web.Response(status=404)
        body = await _read_capped(request, max_body)
        if isinstance(body, web.Response):
            PUSH_DELIVERIES.labels(route.provider, _outcome(body)).inc()
            return body
        if not route.check(request.headers, body, now=clock()):
            PUSH_DELIVERIES.labels(route.provider, "unauthorized").inc()
            return web.Response(status=401)
        hints = _hints_of(route, body)
        dropped = route.trigger.hints_dropped
        route.trigger.fire(hints)
        if hints:
            dropped = route.trigger.hints_dropped - dropped
            PUSH_HINTS.labels(route.provider, "kept").inc(len(hints) - dropped)
            PUSH_HINTS.labels(route.provider, "dropped").inc(dropped)
        PUSH_DELIVERIES.labels(route.provider, "accepted").inc()
        return web.Response(status=202)

    # client_max_size bounds aiohttp's own buffering of anything read with request.read().
    app = web.Application(client_max_size=max_body)
    app.router.add_post("/ingest/{source_id}", ingest)
    return app


async def _read_capped(request: web.Request, max_body: int) -> bytes | web.Response:
    if request.content_length is not None and request.content_length > max_body:
        return web.Response(status=413)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            # A chunked body has no length to check up front: count as it arrives.
            while chunk := await request.content.read(_CHUNK):
                size += len(chunk)
                if size > max_body:
                    return web.Response(status=413)
                chunks.append(chunk)
    except TimeoutError:
        return web.Response(status=408)
    return b"".join(chunks)


def _outcome(response: web.Response) -> str:
    return "too_large" if response.status == 413 else "timeout"


async def start_ingest_server(
    routes: Mapping[str, IngestRoute], *, host: str, port: int
) -> web.AppRunner:
    """Serve ``routes`` on ``host:port``; the caller cleans the runner up."""
    runner = web.AppRunner(ingest_app(routes), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("ingest_started", port=port, sources=sorted(routes))
    return runner
