"""Push end to end: a signed Nuweb webhook makes `notifier run`'s poller read at once.

The source polls once an hour, so without the webhook nothing would be seen during the
test; with it, the check-in reaches the webhook receiver within seconds. A delivery with a
bad signature wakes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client import REGISTRY

from notifier.config.models import Config
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.webhook_sender import WebhookSender
from notifier.push.signatures import NUWEB_HEADER, nuweb_header
from notifier.service import Runtime
from tests.integration.pipeline import new_secret
from tests.integration.push_rig import pushing_service
from tests.providers.harness_nuweb import COMPANY, EVENT, TOKEN, NuwebHarness

PUSH_SECRET = "nuweb-webhook-secret-for-tests"
PAYLOAD = b'{"attendee_check_in": {"scans": [{"item": {"id": 1}}]}}'


@dataclass
class Running:
    harness: NuwebHarness
    runtime: Runtime
    receiver: Receiver
    ingest_url: str

    async def push(self, signature: str) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.ingest_url, data=PAYLOAD, headers={NUWEB_HEADER: signature}) as r,
        ):
            return r.status


def _config(nuweb_url: str, webhook_url: str, secret: str) -> Config:
    return Config.model_validate(
        {
            "webhooks": [
                {"name": "doors", "url": webhook_url, "allow_insecure_http": True, "secret": secret}
            ],
            "organizers": [
                {
                    "id": "fabric",
                    "name": "Fabric",
                    "sources": [
                        {
                            "id": "nuweb-main",
                            "provider": "nuweb",
                            "token": TOKEN,
                            "company_id": COMPANY,
                            "event_ids": [EVENT],
                            "base_url": nuweb_url,
                            "allow_insecure_http": True,
                            "poll_interval": "1h",
                            "live_poll_interval": "1h",
                            "requests_per_minute": 6000,
                            "push": {"secret": PUSH_SECRET},
                        }
                    ],
                }
            ],
        }
    )


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    harness = NuwebHarness()
    await harness.start()
    secret = new_secret()
    receiver = Receiver(secret)
    await receiver.start()
    config = _config(harness._base_url, receiver.url, secret)
    try:
        async with pushing_service(config, settle_within=20) as (runtime, port):
            url = f"http://127.0.0.1:{port}/ingest/nuweb-main"
            yield Running(harness, runtime, receiver, url)
    finally:
        await receiver.stop()
        await harness.stop()


async def test_a_signed_webhook_detects_a_check_in_within_seconds(running: Running) -> None:
    ticket = running.harness.ticket_ids()[0]
    running.harness.apply("ticket.checked_in", ticket)
    assert await running.push(nuweb_header(PUSH_SECRET.encode(), PAYLOAD)) == 202
    events = await running.receiver.wait_for(1, timeout=10)
    assert [(e["type"], e["subject"]) for e in events] == [("ticket.checked_in", ticket)]


async def test_a_forged_webhook_wakes_nothing(running: Running) -> None:
    ticket = running.harness.ticket_ids()[1]
    running.harness.apply("ticket.checked_in", ticket)
    assert await running.push(nuweb_header(b"not-the-secret", PAYLOAD)) == 401
    with pytest.raises(TimeoutError):
        await running.receiver.wait_for(1, timeout=2)
    (scheduled,) = running.runtime.sources
    assert scheduled.trigger.received == 0


async def test_the_simulators_own_webhooks_drive_detection(running: Running) -> None:
    """The Nuweb simulator signs and sends its check-in and check-out webhooks itself."""
    sender = WebhookSender(running.ingest_url, scheme="nuweb", secret=PUSH_SECRET.encode())
    running.harness.sim.webhooks = sender
    try:
        ticket = running.harness.ticket_ids()[2]
        running.harness.apply("ticket.checked_in", ticket)
        await running.receiver.wait_for(1, timeout=10)
        running.harness.apply("ticket.checked_out", ticket)
        events = await running.receiver.wait_for(2, timeout=10)
    finally:
        await sender.close()
    assert [e["type"] for e in events] == ["ticket.checked_in", "ticket.checked_out"]
    assert sender.outcomes == [202, 202]


def _polls() -> float:
    sample = REGISTRY.get_sample_value(
        "notifier_polls_total", {"source": "nuweb-main", "outcome": "ok"}
    )
    return sample or 0.0


async def test_woken_polls_keep_to_a_share_of_the_budget(running: Running) -> None:
    """Thirty deliveries over 3 s, on an account whose share allows one woken poll a second
    (a 240/min budget): about three polls, each answering every delivery before it."""
    (scheduled,) = running.runtime.sources
    scheduled.wakes.gap = 1.0
    before = _polls()
    signature = nuweb_header(PUSH_SECRET.encode(), PAYLOAD)
    for _ in range(30):
        assert await running.push(signature) == 202
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # the last gap, then its poll
    woken = _polls() - before
    assert scheduled.trigger.received == 30
    assert 2 <= woken <= 5, woken
    assert not scheduled.trigger.pending  # the last delivery was answered by a poll
