"""Ticket Tailor read hints: what a delivery may name, and how much reading it may cost.

The hints are taken from verified deliveries only, yet bounded as if forged: at most 100
wait on a source's trigger (a flood past that only wakes), at most 100 in the adapter, and
their reads spend an allowance of their own, one request per hinted ticket or order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from notifier.dev.simulators.tickettailor import TicketTailorSimulator, serve
from notifier.model import TicketRecord, TicketStatus
from notifier.providers.base import HintedReads, ReadHint
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.tickettailor import RequestShare, TicketTailorProvider
from notifier.providers.tickettailor.hints import webhook_hints
from notifier.push.server import HintParser, IngestRoute, ingest_app
from notifier.push.signatures import TICKETTAILOR_HEADER, tickettailor_check, tickettailor_header
from notifier.push.triggers import MAX_PENDING_HINTS, Trigger

SECRET = b"tt-hint-secret"
API_KEY = "sk_hints_51c0"


def _body(event: object, payload: object) -> bytes:
    envelope = {"id": "wh_1", "created_at": 1, "event": event, "resource_url": None}
    return orjson.dumps({**envelope, "payload": payload})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _body("ISSUED_TICKET.UPDATED", {"id": "it_50199"}),
            [ReadHint("issued_ticket", "it_50199")],
        ),
        (_body("ORDER.UPDATED", {"id": "or_737353"}), [ReadHint("order", "or_737353")]),
        # Every poll reads the new-ticket feed: a created ticket only wakes.
        (_body("ISSUED_TICKET.CREATED", {"id": "it_50199"}), []),
        (_body("EVENT.UPDATED", {"id": "ev_40981"}), []),
        (_body("ISSUED_TICKET.UPDATED", {"id": "../orders/or_1"}), []),
        (_body("ISSUED_TICKET.UPDATED", {"id": "it_1?limit=100"}), []),
        (_body("ISSUED_TICKET.UPDATED", {"id": "x" * 65}), []),
        (_body("ISSUED_TICKET.UPDATED", {"id": 50199}), []),
        (_body("ISSUED_TICKET.UPDATED", "it_50199"), []),
        (_body(["ISSUED_TICKET.UPDATED"], {"id": "it_50199"}), []),
        (b"[1, 2]", []),
        (b"\xff\xfe not json", []),
        (b"", []),
    ],
)
def test_only_a_plain_id_of_an_update_is_a_hint(body: bytes, expected: list[ReadHint]) -> None:
    assert webhook_hints(body) == expected


# -- the trigger, behind the real ingest endpoint


@dataclass
class Endpoint:
    base: str
    trigger: Trigger

    async def post(self, body: bytes) -> int:
        header = tickettailor_header(SECRET, body, at=int(time.time()))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.base}/ingest/tt", data=body, headers={TICKETTAILOR_HEADER: header}
            ) as r,
        ):
            return r.status


async def _endpoint(parse: HintParser) -> AsyncIterator[Endpoint]:
    trigger = Trigger()
    route = IngestRoute("tickettailor", tickettailor_check(SECRET), trigger, hints=parse)
    runner = web.AppRunner(ingest_app({"tt": route}), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield Endpoint(f"http://127.0.0.1:{runner.addresses[0][1]}", trigger)
    finally:
        await runner.cleanup()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    async for running in _endpoint(webhook_hints):
        yield running


def _hints_counted(outcome: str) -> float:
    labels = {"provider": "tickettailor", "outcome": outcome}
    return REGISTRY.get_sample_value("notifier_push_hints_total", labels) or 0.0


async def test_a_flood_keeps_a_hundred_hints_and_still_wakes(endpoint: Endpoint) -> None:
    kept, dropped = _hints_counted("kept"), _hints_counted("dropped")
    bodies = [_body("ISSUED_TICKET.UPDATED", {"id": f"it_{n}"}) for n in range(300)]
    statuses = await asyncio.gather(*(endpoint.post(body) for body in bodies))
    assert set(statuses) == {202}
    assert _hints_counted("kept") - kept == MAX_PENDING_HINTS
    assert _hints_counted("dropped") - dropped == 300 - MAX_PENDING_HINTS
    trigger = endpoint.trigger
    assert (trigger.received, trigger.hints_dropped) == (300, 300 - MAX_PENDING_HINTS)
    hints = trigger.take()
    assert len(hints) == MAX_PENDING_HINTS
    assert {hint.kind for hint in hints} == {"issued_ticket"}
    assert not trigger.pending
    assert trigger.take() == ()


async def test_a_repeated_delivery_is_one_hint(endpoint: Endpoint) -> None:
    body = _body("ORDER.UPDATED", {"id": "or_7"})
    assert [await endpoint.post(body) for _ in range(3)] == [202, 202, 202]
    assert endpoint.trigger.take() == (ReadHint("order", "or_7"),)


async def test_a_failing_hint_parser_still_wakes() -> None:
    def broken(body: bytes) -> Sequence[ReadHint]:
        raise RuntimeError("a parser bug")

    async for running in _endpoint(broken):
        assert await running.post(_body("ISSUED_TICKET.UPDATED", {"id": "it_1"})) == 202
        assert running.trigger.pending
        assert running.trigger.take() == ()


# -- the adapter's reads, against the simulator


@dataclass
class Box:
    sim: TicketTailorSimulator
    provider: TicketTailorProvider
    tickets: list[str]
    orders: list[str]

    async def poll_reads(self) -> tuple[list[str], list[TicketRecord]]:
        """One poll: the single-object paths it read, and the records it returned."""
        mark = len(self.sim.seen)
        result = await self.provider.poll(self.cursor)
        self.cursor = result.cursor
        paths = [request.path_qs.split("?")[0] for request in list(self.sim.seen)[mark:]]
        single = [p for p in paths if p.startswith(("/v1/issued_tickets/", "/v1/orders/"))]
        return single, list(result.tickets)

    cursor: str | None = None


@pytest.fixture
async def box() -> AsyncIterator[Box]:
    sim = TicketTailorSimulator()
    sim.add_box_office(API_KEY)
    now = datetime.now(UTC)
    event = sim.add_event(now - timedelta(hours=1), now + timedelta(hours=4))
    tickets, orders = [], []
    for _ in range(80):
        order, issued = sim.create_order(event, quantity=2)
        orders.append(order)
        tickets.extend(issued)
    api = await serve(sim)
    client = ProviderHttpClient(
        f"http://127.0.0.1:{api.addresses[0][1]}", policy=RetryPolicy(max_attempts=1)
    )
    # A small budget: the first sweep is the last one this test sees, and the hints'
    # allowance refills at 0.025 reads a second.
    provider = TicketTailorProvider(
        "tt-main",
        API_KEY,
        base_url=f"http://127.0.0.1:{api.addresses[0][1]}",
        http=client,
        share=RequestShare(requests_per_minute=6),
    )
    running = Box(sim, provider, tickets, orders)
    try:
        while True:  # the baseline, to the end of the first sweep
            result = await provider.poll(running.cursor)
            running.cursor = result.cursor
            if not result.more:
                break
        yield running
    finally:
        await client.close()
        await api.cleanup()


async def test_the_adapter_offers_hinted_reads(box: Box) -> None:
    assert isinstance(box.provider, HintedReads)


async def test_hinted_reads_are_bounded_by_count_and_by_their_allowance(box: Box) -> None:
    box.provider.hint([ReadHint("issued_ticket", t) for t in box.tickets[:150]])
    reads, _ = await box.poll_reads()
    assert len(reads) == 100  # the adapter kept a hundred; the other fifty were dropped
    assert len(set(reads)) == 100
    box.provider.hint([ReadHint("issued_ticket", t) for t in box.tickets[150:]])
    reads, _ = await box.poll_reads()
    assert reads == []  # the allowance is spent: they wait for it (or for the sweep)


async def test_an_order_hint_reads_the_order_once_for_all_its_tickets(box: Box) -> None:
    order, first, second = box.orders[3], box.tickets[6], box.tickets[7]
    box.sim.refund_order(order)
    box.provider.hint(
        [
            ReadHint("issued_ticket", first),
            ReadHint("order", order),
            ReadHint("issued_ticket", second),
        ]
    )
    reads, records = await box.poll_reads()
    assert reads == [f"/v1/orders/{order}"]
    refunded = {r.ticket_id: r.status for r in records if r.ticket_id in (first, second)}
    assert refunded == {first: TicketStatus.REFUNDED, second: TicketStatus.REFUNDED}


async def test_a_hint_naming_nothing_costs_one_read_and_fails_nothing(box: Box) -> None:
    box.provider.hint([ReadHint("issued_ticket", "it_1"), ReadHint("order", "or_1")])
    reads, records = await box.poll_reads()
    assert sorted(reads) == ["/v1/issued_tickets/it_1", "/v1/orders/or_1"]
    assert records == []
    reads, _ = await box.poll_reads()
    assert reads == []  # read once: a hint that found nothing is not read again
