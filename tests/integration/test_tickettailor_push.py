"""Ticket Tailor push end to end: a pushed void or refund is read at once, not at the sweep.

Ticket Tailor shows a void, a refund or a cancellation only in a re-read of the issued
tickets (its sweep), whose cadence the account's budget sets. Here the box office follows
60 events (a sweep of 60 pages) on a budget of 120 requests a minute, so a sweep comes due
a minute after the last, and the source otherwise polls once an hour. The simulator sends
its own signed webhooks; the void reaches the webhook receiver within seconds, read from
``GET /v1/issued_tickets/{id}`` because the delivery named it. A hint that names an
unchanged ticket costs that one read and reports nothing; a payload that names nothing
readable still wakes the poll, which then reads only what an ordinary poll reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest
from prometheus_client import REGISTRY

from notifier.config.models import Config
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.tickettailor import TicketTailorSimulator, serve
from notifier.dev.simulators.webhook_sender import WebhookSender
from notifier.model import SourceId
from notifier.providers.tickettailor import RequestShare, decode_cursor, sweep_interval
from notifier.push.signatures import TICKETTAILOR_HEADER, tickettailor_header
from notifier.service import Runtime
from tests.integration.pipeline import new_secret
from tests.integration.push_rig import pushing_service

API_KEY = "sk_push_7d21"
PUSH_SECRET = "tickettailor-webhook-secret-for-tests"
SOURCE = "tt-main"
EVENTS = 60
REQUESTS_PER_MINUTE = 120  # a sweep of 60 pages comes due a minute after the last


@dataclass
class Running:
    sim: TicketTailorSimulator
    runtime: Runtime
    receiver: Receiver
    ingest_url: str
    tickets: list[str]
    orders: list[str]

    async def push(self, body: bytes) -> int:
        header = tickettailor_header(PUSH_SECRET.encode(), body, at=int(time.time()))
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.ingest_url, data=body, headers={TICKETTAILOR_HEADER: header}) as r,
        ):
            return r.status

    def sender(self) -> WebhookSender:
        sender = WebhookSender(self.ingest_url, scheme="tickettailor", secret=PUSH_SECRET.encode())
        self.sim.webhooks = sender
        return sender

    async def sweep_wait(self) -> timedelta:
        """When the next sweep comes due after the last, from the committed cursor."""
        snapshot = await self.runtime.store.load(SourceId(SOURCE), as_fingerprints=True)
        state = decode_cursor(snapshot.cursor)
        assert state.swept_at is not None
        assert state.sweep_cost is not None
        return sweep_interval(state.sweep_cost, RequestShare(REQUESTS_PER_MINUTE).sweep_rate())

    def seen_since(self, mark: int) -> list[str]:
        return [request.path_qs.split("?")[0] for request in list(self.sim.seen)[mark:]]


def _polls() -> float:
    return (
        REGISTRY.get_sample_value("notifier_polls_total", {"source": SOURCE, "outcome": "ok"}) or 0
    )


async def _next_poll(after: float) -> None:
    async with asyncio.timeout(10):
        while _polls() <= after:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _idle() -> None:
    """Until no poll has finished for half a second (the baseline's last steps are done)."""
    seen = -1.0
    while seen != _polls():
        seen = _polls()
        await asyncio.sleep(0.5)


def _config(base_url: str, webhook_url: str, secret: str) -> Config:
    return Config.model_validate(
        {
            "webhooks": [
                {"name": "doors", "url": webhook_url, "allow_insecure_http": True, "secret": secret}
            ],
            "organizers": [
                {
                    "id": "tulip-fest",
                    "name": "Tulip Fest",
                    "sources": [
                        {
                            "id": SOURCE,
                            "provider": "tickettailor",
                            "api_key": API_KEY,
                            "base_url": base_url,
                            "allow_insecure_http": True,
                            "poll_interval": "1h",
                            "live_poll_interval": "1h",
                            "requests_per_minute": REQUESTS_PER_MINUTE,
                            "push": {"secret": PUSH_SECRET},
                        }
                    ],
                }
            ],
        }
    )


def _seed(sim: TicketTailorSimulator) -> tuple[list[str], list[str]]:
    sim.add_box_office(API_KEY)
    now = datetime.now(UTC)
    live = sim.add_event(now - timedelta(hours=1), now + timedelta(hours=4))
    for day in range(1, EVENTS):
        sim.add_event(now + timedelta(days=day), name=f"Spring Social {day}")
    tickets, orders = [], []
    for _ in range(6):
        order, issued = sim.create_order(live, quantity=2)
        orders.append(order)
        tickets.extend(issued)
    return tickets, orders


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    sim = TicketTailorSimulator()
    tickets, orders = _seed(sim)
    api = await serve(sim)
    secret = new_secret()
    receiver = Receiver(secret)
    await receiver.start()
    base_url = f"http://127.0.0.1:{api.addresses[0][1]}"
    try:
        config = _config(base_url, receiver.url, secret)
        # The baseline here is the first sweep, 60 pages.
        async with pushing_service(config, settle_within=30) as (runtime, port):
            await _idle()
            url = f"http://127.0.0.1:{port}/ingest/{SOURCE}"
            yield Running(sim, runtime, receiver, url, tickets, orders)
    finally:
        if sim.webhooks is not None:
            await sim.webhooks.close()
        await receiver.stop()
        await api.cleanup()


async def test_a_pushed_void_is_detected_in_seconds_while_the_sweep_is_a_minute_away(
    running: Running,
) -> None:
    assert await running.sweep_wait() >= timedelta(seconds=60)
    ticket = running.tickets[0]
    # Without a webhook the void waits for the sweep: nothing within two seconds.
    running.sim.void(ticket)
    with pytest.raises(TimeoutError):
        await running.receiver.wait_for(1, timeout=2)
    # The simulator's own webhook for each next void names its ticket: read at once.
    sender = running.sender()
    pushed = running.tickets[2::2]
    latencies = []
    for count, ticket in enumerate(pushed, start=1):
        started = time.monotonic()
        running.sim.void(ticket)
        await running.receiver.wait_for(count, timeout=10)
        latencies.append(time.monotonic() - started)
    shown = ", ".join(f"{seconds * 1000:.0f}" for seconds in latencies)
    print(f"pushed voids detected in [{shown}] ms; the sweep comes due every >= 60 s")
    events = running.receiver.events
    assert [(e["type"], e["subject"]) for e in events] == [("ticket.voided", t) for t in pushed]
    assert max(latencies) < 5
    assert sender.outcomes == [202] * len(pushed)


async def test_a_pushed_refund_is_detected_as_a_refund(running: Running) -> None:
    sender = running.sender()
    order = running.orders[1]
    running.sim.refund_order(order)  # ORDER.UPDATED and an ISSUED_TICKET.UPDATED per ticket
    events = await running.receiver.wait_for(2, timeout=10)
    assert sorted((e["type"], e["subject"]) for e in events) == [
        ("ticket.refunded", running.tickets[2]),
        ("ticket.refunded", running.tickets[3]),
    ]
    await asyncio.sleep(0.5)  # the remaining deliveries find nothing more to report
    assert len(running.receiver.events) == 2
    await sender.close()
    assert sender.outcomes == [202, 202, 202]


async def test_a_forged_hint_costs_its_read_and_reports_nothing(running: Running) -> None:
    """A validly signed delivery naming a ticket that did not change (or does not exist)."""
    unchanged, missing = running.tickets[4], "it_99999999"
    for named in (unchanged, missing):
        body = orjson.dumps(
            {"event": "ISSUED_TICKET.UPDATED", "payload": {"id": named, "status": "voided"}}
        )
        mark, polls = len(running.sim.seen), _polls()
        assert await running.push(body) == 202
        await _next_poll(polls)
        reads = running.seen_since(mark)
        assert reads.count(f"/v1/issued_tickets/{named}") == 1
        assert not [path for path in reads if path.startswith("/v1/orders")]
    with pytest.raises(TimeoutError):
        await running.receiver.wait_for(1, timeout=1)


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"event": "ISSUED_TICKET.UPDATED", "payload": "it_50199"}',
        b'{"event": "ISSUED_TICKET.UPDATED", "payload": {"id": "../orders/or_1"}}',
        b'{"event": "ISSUED_TICKET.CREATED", "payload": {"id": "it_50199"}}',
    ],
)
async def test_a_payload_naming_nothing_readable_still_wakes_the_poll(
    running: Running, body: bytes
) -> None:
    running.sim.void(running.tickets[5])  # a void no hint names: left to the sweep
    mark, polls = len(running.sim.seen), _polls()
    assert await running.push(body) == 202
    await _next_poll(polls)
    reads = running.seen_since(mark)
    assert "/v1/check_ins" in reads  # the ordinary poll ran
    assert not [path for path in reads if path.startswith(("/v1/issued_tickets/", "/v1/orders"))]
    with pytest.raises(TimeoutError):
        await running.receiver.wait_for(1, timeout=1)
