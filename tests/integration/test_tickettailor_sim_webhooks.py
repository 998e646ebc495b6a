"""The Ticket Tailor simulator's webhooks: which changes send which event, signed as documented."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web

from notifier.dev.simulators.tickettailor import TicketTailorSimulator
from notifier.dev.simulators.webhook_sender import SenderPolicy, WebhookSender
from notifier.push.signatures import tickettailor_check

SECRET = b"tt-simulator-webhook-secret"


class Capture:
    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.verified: list[bool] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        check = tickettailor_check(SECRET)
        self.verified.append(check(request.headers, body, now=time.time()))
        self.deliveries.append(orjson.loads(body))
        return web.Response(status=202)

    def seen(self) -> list[tuple[str, str]]:
        return [(d["event"], d["payload"]["id"]) for d in self.deliveries]


@pytest.fixture
async def wired() -> AsyncIterator[tuple[TicketTailorSimulator, WebhookSender, Capture]]:
    capture = Capture()
    app = web.Application()
    app.router.add_post("/hook", capture.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sim = TicketTailorSimulator()
    sim.add_box_office("sk_hooks")
    sender = WebhookSender(
        f"http://127.0.0.1:{runner.addresses[0][1]}/hook",
        scheme="tickettailor",
        secret=SECRET,
        policy=SenderPolicy(attempts=1, timeout=2.0, first_backoff=0.01),
    )
    sim.webhooks = sender
    try:
        yield sim, sender, capture
    finally:
        await sender.close()
        await runner.cleanup()


def _event(sim: TicketTailorSimulator) -> str:
    now = datetime.now(UTC)
    return sim.add_event(now - timedelta(hours=1), now + timedelta(hours=3))


async def test_a_sale_sends_a_created_ticket_each(
    wired: tuple[TicketTailorSimulator, WebhookSender, Capture],
) -> None:
    sim, sender, capture = wired
    _, tickets = sim.create_order(_event(sim), quantity=2)
    await sender.close()
    assert sorted(capture.seen()) == [("ISSUED_TICKET.CREATED", t) for t in tickets]
    assert capture.verified == [True, True]


async def test_a_void_sends_the_voided_ticket(
    wired: tuple[TicketTailorSimulator, WebhookSender, Capture],
) -> None:
    sim, sender, capture = wired
    sim.webhooks = None
    _, (ticket,) = sim.create_order(_event(sim))
    sim.webhooks = sender
    sim.check_in(ticket)  # no check-in webhook exists
    sim.void(ticket)
    sim.void(ticket)  # already void: nothing changes, nothing is sent
    await sender.close()
    assert capture.seen() == [("ISSUED_TICKET.UPDATED", ticket)]
    (delivery,) = capture.deliveries
    assert delivery["payload"]["status"] == "voided"
    assert delivery["payload"]["voided_at"] is not None
    assert set(delivery) == {"id", "created_at", "event", "resource_url", "payload"}


async def test_a_refund_sends_its_voided_tickets_and_the_order(
    wired: tuple[TicketTailorSimulator, WebhookSender, Capture],
) -> None:
    sim, sender, capture = wired
    sim.webhooks = None
    order, tickets = sim.create_order(_event(sim), quantity=2)
    sim.webhooks = sender
    sim.refund_order(order)
    await sender.close()
    assert sorted(capture.seen()) == sorted(
        [("ISSUED_TICKET.UPDATED", t) for t in tickets] + [("ORDER.UPDATED", order)]
    )
    (payload,) = [d["payload"] for d in capture.deliveries if d["event"] == "ORDER.UPDATED"]
    assert payload["refund_amount"] > 0
    assert payload["status"] == "cancelled"
    assert {t["status"] for t in payload["issued_tickets"]} == {"voided"}
    assert all(capture.verified)


async def test_a_cancellation_sends_the_cancelled_order(
    wired: tuple[TicketTailorSimulator, WebhookSender, Capture],
) -> None:
    sim, sender, capture = wired
    sim.webhooks = None
    order, (ticket,) = sim.create_order(_event(sim))
    sim.webhooks = sender
    sim.cancel_order(order, "event moved")
    await sender.close()
    assert sorted(capture.seen()) == [("ISSUED_TICKET.UPDATED", ticket), ("ORDER.UPDATED", order)]
    (payload,) = [d["payload"] for d in capture.deliveries if d["event"] == "ORDER.UPDATED"]
    assert (payload["status"], payload["refund_amount"]) == ("cancelled", 0)
