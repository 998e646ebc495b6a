"""The backbone end to end, with real parts: Shotgun simulator -> diff -> SQLite outbox ->
Tansu broker (read back by confluent-kafka + the cloudevents SDK) and a signed webhook
(verified by the standardwebhooks library)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from notifier.dev.broker import EmbeddedBroker
from notifier.dev.simulators.shotgun import Fault, ShotgunSimulator
from notifier.model import SourceId
from notifier.service import Runtime
from notifier.store.base import DeliveryStatus
from tests.integration.pipeline import (
    ORGANIZER_ID,
    Pipeline,
    create_topic,
    data_of,
    running_pipeline,
    until,
    webhook_types,
)

SOURCE = SourceId("shotgun-main")


async def _pipeline(broker: EmbeddedBroker, topic: str, tmp_path: Path) -> AsyncIterator[Pipeline]:
    sim = ShotgunSimulator(page_size=10)
    token = "tok." + secrets.token_urlsafe(12)
    tickets = sim.seed(ORGANIZER_ID, token, 25, rng_seed=1)
    async for pipeline in running_pipeline(
        broker, topic, tmp_path, sim=sim, token=token, tickets=tickets
    ):
        yield pipeline


@pytest.fixture
async def pipeline(
    kafka_broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> AsyncIterator[Pipeline]:
    async for built in _pipeline(kafka_broker, unique_topic("pipeline"), tmp_path):
        yield built


def _valid_unscanned(pipeline: Pipeline, count: int = 1) -> list[int]:
    found = [
        ticket_id
        for ticket_id in pipeline.ticket_ids
        if pipeline.sim.ticket(ticket_id)["ticket_status"] == "valid"
        and pipeline.sim.ticket(ticket_id)["ticket_scanned_at"] is None
    ]
    assert len(found) >= count, "the seed should leave enough valid, unscanned tickets"
    return found[:count]


async def test_first_poll_is_a_silent_baseline(pipeline: Pipeline) -> None:
    """The first poll records every ticket and publishes nothing."""
    assert await pipeline.once() == 0
    assert pipeline.receiver.events == []
    assert pipeline.kafka_events(1, timeout=2.0) == []
    runtime = await pipeline.open()
    assert len((await runtime.store.load(SOURCE)).tickets) == 25


async def test_a_scan_reaches_kafka_and_the_webhook_as_one_event(pipeline: Pipeline) -> None:
    """A door scan becomes ticket.checked_in on Kafka and on the webhook, with one id."""
    await pipeline.once()
    (ticket,) = _valid_unscanned(pipeline)
    pipeline.sim.scan(ticket)

    assert await pipeline.once() == 0

    (on_kafka,) = pipeline.kafka_events(1)
    assert on_kafka.get_type() == "ticket.checked_in"
    assert on_kafka.get_subject() == str(ticket)
    assert on_kafka.get_source() == "/shotgun/fabric/shotgun-main"
    kafka_data = on_kafka.get_data()
    assert isinstance(kafka_data, dict)
    assert kafka_data["after"]["checked_in_at"] is not None
    assert kafka_data["before"]["checked_in_at"] is None
    (on_webhook,) = pipeline.receiver.events
    assert on_webhook["id"] == on_kafka.get_id()
    assert data_of(on_webhook)["ticket_id"] == str(ticket)


async def test_webhook_signature_verifies_independently(pipeline: Pipeline) -> None:
    """The raw request verifies with the standardwebhooks library and its id is the event id."""
    await pipeline.once()
    pipeline.sim.scan(_valid_unscanned(pipeline)[0])
    await pipeline.once()
    (request,) = [r for r in pipeline.receiver.requests if r.status == 204 or r.status < 300]
    (secret,) = (s.get_secret_value() for s in pipeline.config.webhooks[0].signing_secrets)
    verified = Webhook(secret).verify(request.body, request.headers)
    assert verified["id"] == request.headers["webhook-id"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda sim, t: sim.refund(t), ["ticket.refunded"]),
        (lambda sim, t: sim.cancel(t), ["ticket.canceled"]),
        (
            lambda sim, t: sim.transfer(t, "Sam", "Rivera", "sam@example.com"),
            ["ticket.holder_changed"],
        ),
        (
            lambda sim, t: sim.resell(t, first_name="Kim", last_name="Lee", email="k@example.com"),
            ["ticket.resold", "ticket.issued"],
        ),
    ],
    ids=["refund", "cancel", "transfer", "resale"],
)
async def test_each_change_yields_its_event_type(
    pipeline: Pipeline,
    change: Callable[[ShotgunSimulator, int], object],
    expected: list[str],
) -> None:
    """Refund, cancel, transfer and resale each publish their own type."""
    await pipeline.once()
    change(pipeline.sim, _valid_unscanned(pipeline)[0])
    assert await pipeline.once() == 0
    assert webhook_types(pipeline.receiver) == expected
    assert sorted(e.get_type() for e in pipeline.kafka_events(len(expected))) == sorted(expected)


async def test_an_undone_scan_yields_check_in_reverted(pipeline: Pipeline) -> None:
    """Scan then unscan across two polls: checked_in, then check_in_reverted (sequence 2)."""
    await pipeline.once()
    (ticket,) = _valid_unscanned(pipeline)
    pipeline.sim.scan(ticket)
    await pipeline.once()
    pipeline.sim.unscan(ticket)
    await pipeline.once()
    assert webhook_types(pipeline.receiver) == ["ticket.checked_in", "ticket.check_in_reverted"]
    assert [data_of(e)["sequence"] for e in pipeline.receiver.events] == [1, 2]


async def test_a_restart_between_polls_publishes_no_duplicates(pipeline: Pipeline) -> None:
    """State survives a restart: the next poll after it finds nothing new to publish."""
    await pipeline.once()
    pipeline.sim.scan(_valid_unscanned(pipeline)[0])
    await pipeline.once()
    await pipeline.restart()
    assert await pipeline.once() == 0
    assert len(pipeline.receiver.events) == 1
    assert len(pipeline.kafka_events(2, timeout=3.0)) == 1


async def test_a_receiver_that_was_down_gets_every_event_with_the_same_ids(
    pipeline: Pipeline,
) -> None:
    """Deliveries wait while the endpoint answers 503 and arrive, same ids, once it is back."""
    await pipeline.once()
    pipeline.receiver.down = True
    tickets = _valid_unscanned(pipeline, 3)
    for ticket in tickets:
        pipeline.sim.scan(ticket)
    assert await pipeline.once() == 2  # deliveries remain pending
    assert pipeline.receiver.events == []

    pipeline.receiver.down = False
    runtime = await pipeline.open()

    async def all_delivered(runtime: Runtime = runtime) -> bool:
        await runtime.dispatcher.drain()  # paced: the 503s slowed the endpoint down
        return len(pipeline.receiver.events) == 3

    await until(all_delivered, within=15.0, step=0.2)
    kafka_ids = sorted(e.get_id() for e in pipeline.kafka_events(3))
    assert sorted(e["id"] for e in pipeline.receiver.events) == kafka_ids
    assert await runtime.store.deliveries(status=DeliveryStatus.PENDING) == []


@pytest.mark.slow
async def test_an_exhausted_delivery_is_parked_then_replayed_with_its_id(
    pipeline: Pipeline,
) -> None:
    """After the last attempt the delivery is parked; a replay delivers it, same id."""
    await pipeline.once()
    pipeline.receiver.down = True
    pipeline.sim.scan(_valid_unscanned(pipeline)[0])
    await pipeline.once()
    runtime = await pipeline.open()

    async def parked_one(runtime: Runtime = runtime) -> bool:
        await runtime.dispatcher.drain()  # three immediate attempts, paced by the 503s
        return bool(await runtime.store.deliveries(status=DeliveryStatus.PARKED))

    await until(parked_one, within=20.0, step=0.2)
    (parked,) = await runtime.store.deliveries(status=DeliveryStatus.PARKED)
    assert parked.attempts == 3

    pipeline.receiver.down = False
    assert await runtime.store.requeue(parked.sink) == 1

    async def replayed(runtime: Runtime = runtime) -> bool:
        await runtime.dispatcher.drain()
        return bool(pipeline.receiver.events)

    await until(replayed, within=15.0, step=0.2)
    assert [e["id"] for e in pipeline.receiver.events] == [parked.event.id]


async def test_a_failed_page_mid_read_commits_nothing_then_recovers(pipeline: Pipeline) -> None:
    """A 500 on page 2 (past every retry) fails the poll: no events, cursor kept; next poll
    publishes every change exactly once."""
    await pipeline.once()
    runtime = await pipeline.open()
    cursor_before = (await runtime.store.load(SOURCE)).cursor
    tickets = _valid_unscanned(pipeline, 12)  # two pages of changes at 10 per page
    for ticket in tickets:
        pipeline.sim.scan(ticket)
    pipeline.sim.faults.push(*(Fault.fail_on_page(2) for _ in range(4)))

    assert await pipeline.once() == 1
    assert pipeline.receiver.events == []
    assert (await runtime.store.load(SOURCE)).cursor == cursor_before

    pipeline.sim.faults.clear()
    assert await pipeline.once() == 0
    assert sorted(data_of(e)["ticket_id"] for e in pipeline.receiver.events) == sorted(
        str(t) for t in tickets
    )


async def test_a_malformed_page_commits_nothing_then_recovers(pipeline: Pipeline) -> None:
    """Truncated JSON on every retry fails the poll without phantom events."""
    await pipeline.once()
    (ticket,) = _valid_unscanned(pipeline)
    pipeline.sim.scan(ticket)
    pipeline.sim.faults.push(*(Fault.malformed_json() for _ in range(4)))
    assert await pipeline.once() == 1
    assert pipeline.receiver.events == []
    assert await pipeline.once() == 0
    assert webhook_types(pipeline.receiver) == ["ticket.checked_in"]


async def test_events_held_while_the_broker_is_down_arrive_after_it_returns(
    unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    """Broker stopped during a poll: the webhook still gets the event, Kafka gets it (same id)
    from the outbox once a broker is back on the same port."""
    broker = EmbeddedBroker()
    broker.start()
    topic = unique_topic("outage")
    try:
        async for pipeline in _pipeline(broker, topic, tmp_path):
            await pipeline.once()
            port = broker.port
            broker.stop()
            pipeline.sim.scan(_valid_unscanned(pipeline)[0])
            assert await pipeline.once() == 2
            assert webhook_types(pipeline.receiver) == ["ticket.checked_in"]

            broker.start(port)
            create_topic(broker.bootstrap, topic)
            runtime = await pipeline.open()

            async def kafka_caught_up(runtime: Runtime = runtime) -> bool:
                await runtime.dispatcher.drain()
                return not await runtime.store.deliveries(status=DeliveryStatus.PENDING)

            await until(kafka_caught_up, within=30.0, step=0.25)
            (on_kafka,) = pipeline.kafka_events(1)
            assert on_kafka.get_id() == pipeline.receiver.events[0]["id"]
    finally:
        broker.close()
