"""A local webhook receiver: verifies Standard Webhooks signatures and records events.

Used by the integration tests and by ``notifier demo``. It answers like a real consumer
would (2xx after verifying, 401 on a bad signature) and can be scripted to misbehave:
a queue of ``Scripted`` answers (status, ``Retry-After``, a delay before answering), a
``down`` switch answering 503, and a ``gate`` that holds every request until opened.
Waiting is done on an ``asyncio.Condition``, never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
import structlog
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

log = structlog.get_logger(__name__)

# Handlers still waiting at stop() are released first, so shutdown never waits this long.
_SHUTDOWN_TIMEOUT: Final = 2.0


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted answer: status, optional ``Retry-After`` value, seconds before answering."""

    status: int
    retry_after: str | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Received:
    """One request as it arrived: raw headers and body, and what was answered."""

    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    """A webhook endpoint on 127.0.0.1; ``events`` holds accepted events in arrival order.

    ``requests`` holds every request, including rejected ones, with the raw bytes so a test
    can verify signatures independently. ``in_flight`` / ``max_in_flight`` count requests
    being handled at once, to check a sender's concurrency limit.
    """

    def __init__(
        self,
        secret: str,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_refusal: Callable[[int, str | None], None] | None = None,
    ) -> None:
        """``on_event`` sees each accepted event; ``on_refusal`` the status and webhook-id
        of each request refused for its signature (401) or its body (400)."""
        self._verifier = Webhook(secret)
        self._on_event = on_event
        self._on_refusal = on_refusal
        self.events: list[dict[str, Any]] = []
        self.requests: list[Received] = []
        self.responses: deque[Scripted] = deque()
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0
        self.max_in_flight = 0
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"Receiver(events={len(self.events)}, requests={len(self.requests)})"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port) and return the endpoint URL."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=_SHUTDOWN_TIMEOUT, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}/webhook"
        log.info("receiver_started", url=self._url)
        return self._url

    @property
    def url(self) -> str:
        """The endpoint URL ``start`` returned."""
        if self._url is None:
            raise RuntimeError("the receiver has not been started")
        return self._url

    async def stop(self) -> None:
        """Release held or delayed requests, then shut the server down."""
        self._stopping.set()
        self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # A bounded wait is the point of these helpers (tests must never hang), hence the
    # `timeout` parameters that ASYNC109 would otherwise push to the caller.
    async def wait_for(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` events were accepted; raises TimeoutError."""
        await self.wait_until(lambda receiver: len(receiver.events) >= count, timeout)
        return self.events

    async def wait_until(
        self,
        predicate: Callable[[Receiver], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate(self)`` holds, re-checked on every change; raises TimeoutError."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        # lower-case names: HTTP header names are case-insensitive, dict lookups are not
        headers = {name.lower(): value for name, value in request.headers.items()}
        await self._enter()
        try:
            return await self._answer(headers, body)
        finally:
            await self._leave()

    async def _answer(self, headers: dict[str, str], body: bytes) -> web.Response:
        try:
            self._verifier.verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError):
            # ValueError covers a malformed signature header or non-UTF-8 body
            return await self._record(headers, body, web.Response(status=401))
        event = _json_object(body)
        if event is None:
            return await self._record(headers, body, web.Response(status=400))
        script = self._next_script()
        await self._hold(script.delay)
        extra = {"Retry-After": script.retry_after} if script.retry_after is not None else None
        response = web.Response(status=script.status, headers=extra)
        return await self._record(headers, body, response, event=event)

    def _next_script(self) -> Scripted:
        if self.responses:
            return self.responses.popleft()
        return Scripted(503) if self.down else Scripted(200)

    async def _hold(self, delay: float) -> None:
        # both waits end early at stop(), so a "hanging" endpoint never blocks shutdown
        await self.gate.wait()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _record(
        self,
        headers: dict[str, str],
        body: bytes,
        response: web.Response,
        *,
        event: dict[str, Any] | None = None,
    ) -> web.Response:
        async with self._changed:
            self.requests.append(Received(headers=headers, body=body, status=response.status))
            if event is not None and 200 <= response.status < 300:
                self.events.append(event)
                if self._on_event is not None:
                    self._on_event(event)
            elif event is None and self._on_refusal is not None:
                self._on_refusal(response.status, headers.get("webhook-id"))
            self._changed.notify_all()
        log.debug("receiver_request", status=response.status, webhook_id=headers.get("webhook-id"))
        return response

    async def _enter(self) -> None:
        async with self._changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()

    async def _leave(self) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


if __name__ == "__main__":
    # ``python -m notifier.dev.receiver`` is ``notifier dev receiver``, with the same options.
    import sys

    from notifier.cli import main

    sys.exit(main(["dev", "receiver", *sys.argv[1:]]))
