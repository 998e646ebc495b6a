"""Simulators' outbound webhooks: signed as documented, retried within the documented limit."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from notifier.dev.simulators.webhook_sender import SenderPolicy, WebhookSender

SECRET = b"simulator-webhook-secret"
FAST = SenderPolicy(attempts=3, timeout=1.0, first_backoff=0.01)


class Capture:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # answered in order; 200 once exhausted

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def capture() -> AsyncIterator[tuple[Capture, str]]:
    sink = Capture()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield sink, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def test_nuweb_signs_the_raw_body(capture: tuple[Capture, str]) -> None:
    sink, url = capture
    sender = WebhookSender(url, scheme="nuweb", secret=SECRET, policy=FAST)
    sender.send("attendee_check_in", {"scans": [{"item": {"id": 6}}]})
    await sender.close()
    ((headers, body),) = sink.requests
    assert headers["Signature"] == hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert orjson.loads(body) == {"scans": [{"item": {"id": 6}}]}


async def test_tickettailor_signs_timestamp_and_body(capture: tuple[Capture, str]) -> None:
    sink, url = capture
    sender = WebhookSender(
        url, scheme="tickettailor", secret=SECRET, policy=FAST, clock=lambda: 1_780_000_000
    )
    sender.send("ISSUED_TICKET.UPDATED", {"id": "it_1", "status": "voided"})
    await sender.close()
    ((headers, body),) = sink.requests
    expected = hmac.new(SECRET, b"1780000000" + body, hashlib.sha256).hexdigest()
    assert headers["Tickettailor-Webhook-Signature"] == f"t=1780000000,v1={expected}"
    envelope = orjson.loads(body)
    assert (envelope["event"], envelope["payload"]["id"]) == ("ISSUED_TICKET.UPDATED", "it_1")


async def test_a_failing_receiver_gets_three_attempts_then_nothing(
    capture: tuple[Capture, str],
) -> None:
    sink, url = capture
    sink.statuses = [500, 503, 500, 200]
    sender = WebhookSender(url, scheme="nuweb", secret=SECRET, policy=FAST)
    sender.send("attendee_check_in", {"scans": []})
    await sender.close()
    assert len(sink.requests) == 3
    assert sender.outcomes == [500]


async def test_a_retry_that_succeeds_stops(capture: tuple[Capture, str]) -> None:
    sink, url = capture
    sink.statuses = [500]
    sender = WebhookSender(url, scheme="nuweb", secret=SECRET, policy=FAST)
    sender.send("attendee_check_in", {"scans": []})
    await sender.close()
    assert len(sink.requests) == 2
    assert sender.outcomes == [200]
