"""The sink contract (``notifier.sinks.base.Sink``), written once and run against every sink.

Each sink runs against a real destination: the memory sink against itself, the webhook
sink against a ``notifier.dev.receiver.Receiver`` on 127.0.0.1, the Kafka sink against the
session's broker, read back with confluent-kafka (another client than the sink's aiokafka).
A new sink plugs in by adding a ``Destination`` factory to ``DESTINATIONS`` and passing.

The contract: one outcome per event, in the order the events were handed over; an empty
batch does no I/O; ``close`` may be called again; an event delivered again keeps its id
(subscribers deduplicate on it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # stubs omit the re-export
    AdminClient,
    NewTopic,
)

from notifier.dev.broker import EmbeddedBroker
from notifier.dev.receiver import Receiver
from notifier.envelope import OutboxEvent, event_id
from notifier.errors import FatalDeliveryError
from notifier.sinks.base import Pipelined, Sink
from notifier.sinks.kafka import KafkaSink
from notifier.sinks.memory import MemorySink
from notifier.sinks.webhook import WebhookSink

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
T0 = datetime(2025, 3, 1, 18, 30, tzinfo=UTC)
WAIT = 10.0  # the longest any read-back waits for what it expects
# Larger than a Kafka producer's 1 MiB request size: the sink fails the record before sending.
OVERSIZED = 1_200_000
# Not symmetric in a batch of six: outcomes handed back reversed would put errors elsewhere.
REFUSED = (0, 3)


def make_event(ticket: str, sequence: int = 1) -> OutboxEvent:
    """An event as the outbox holds it; ``ticket`` and ``sequence`` make its id."""
    return OutboxEvent(
        id=event_id("main-hall", ticket, "ticket.checked_in", sequence),
        type="ticket.checked_in",
        ce_source="/eventpop/acme/main-hall",
        subject=ticket,
        time=T0 + timedelta(seconds=sequence),
        partition_key=f"eventpop:main-hall:{ticket}",
        organizer="acme",
        source_id="main-hall",
        data=json.dumps({"ticket_id": ticket, "sequence": sequence}).encode(),
    )


@dataclass
class Destination:
    """A sink and what a subscriber at the other end saw.

    ``arrived(n)`` waits (bounded) until at least ``n`` events were accepted and returns the
    ids they were accepted under, in arrival order; ``arrivals_now()`` counts, without
    waiting, every attempt that reached the destination, accepted or not. ``refusable``
    turns an event into one this destination refuses; ``aimed_at(port)`` builds the same
    kind of sink aimed at another address (None for a sink with no network address).
    """

    sink: Sink
    arrived: Callable[[int], Awaitable[list[str]]]
    arrivals_now: Callable[[], Awaitable[int]]
    refusable: Callable[[OutboxEvent], OutboxEvent]
    aimed_at: Callable[[int], Sink] | None


def oversized(event: OutboxEvent) -> OutboxEvent:
    """Kafka refuses it: a record larger than the producer may send."""
    return replace(event, data=json.dumps({"padding": "x" * OVERSIZED}).encode())


def unparsable(event: OutboxEvent) -> OutboxEvent:
    """A webhook receiver refuses it: the body is signed, but its ``data`` is not JSON (400)."""
    return replace(event, data=b'{"ticket_id": ')


@asynccontextmanager
async def memory_destination(_: EmbeddedBroker, __: str) -> AsyncIterator[Destination]:
    sink = MemorySink("memory:contract")

    async def arrived(count: int) -> list[str]:
        return [event.id for event in sink.received]

    async def arrivals_now() -> int:
        return len(sink.received)

    def refusable(event: OutboxEvent) -> OutboxEvent:
        sink.fail_for[event.id] = FatalDeliveryError("refused by the test")
        return event

    yield Destination(sink, arrived, arrivals_now, refusable, aimed_at=None)
    await sink.close()


@asynccontextmanager
async def webhook_destination(_: EmbeddedBroker, __: str) -> AsyncIterator[Destination]:
    receiver = Receiver(SECRET)
    url = await receiver.start()
    made: list[WebhookSink] = []

    def webhook(target: str) -> WebhookSink:
        made.append(WebhookSink("webhook:contract", target, secret=SECRET, timeout=WAIT))
        return made[-1]

    async def arrived(count: int) -> list[str]:
        await receiver.wait_for(count, timeout=WAIT)
        accepted = [r for r in receiver.requests if 200 <= r.status < 300]
        # The id is sent twice: as the Standard Webhooks id and as the CloudEvent's id.
        assert [json.loads(r.body)["id"] for r in accepted] == [
            r.headers["webhook-id"] for r in accepted
        ]
        return [r.headers["webhook-id"] for r in accepted]

    async def arrivals_now() -> int:
        return len(receiver.requests)

    def aimed_at(port: int) -> Sink:
        return webhook(f"http://127.0.0.1:{port}/webhook")

    try:
        yield Destination(webhook(url), arrived, arrivals_now, unparsable, aimed_at)
    finally:
        for sink in made:
            await sink.close()
        await receiver.stop()


@asynccontextmanager
async def kafka_destination(broker: EmbeddedBroker, topic: str) -> AsyncIterator[Destination]:
    # One partition: every event of the test is in one total order to read back.
    await asyncio.to_thread(create_topic, broker.bootstrap, topic)
    made: list[KafkaSink] = []

    def kafka(bootstrap: str) -> KafkaSink:
        made.append(
            KafkaSink(
                "kafka:contract",
                bootstrap_servers=[bootstrap],
                topic_for=lambda _: topic,
                request_timeout=2.0,
                delivery_timeout=WAIT,
                close_timeout=WAIT,
            )
        )
        return made[-1]

    async def arrived(count: int) -> list[str]:
        return await asyncio.to_thread(read_ids, broker.bootstrap, topic, count)

    async def arrivals_now() -> int:
        return await asyncio.to_thread(record_count, broker.bootstrap, topic)

    def aimed_at(port: int) -> Sink:
        return kafka(f"127.0.0.1:{port}")

    try:
        yield Destination(kafka(broker.bootstrap), arrived, arrivals_now, oversized, aimed_at)
    finally:
        for sink in made:
            await sink.close()


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1)]).values():
        future.result(timeout=WAIT)


def _consumer(bootstrap: str, topic: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"contract-{topic}",
            "enable.auto.commit": False,
        }
    )


def read_ids(bootstrap: str, topic: str, count: int) -> list[str]:
    """The ``ce_id`` header of the topic's records from the start, once ``count`` are read."""
    consumer = _consumer(bootstrap, topic)
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        ids: list[str] = []
        deadline = time.monotonic() + WAIT
        while len(ids) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                headers = dict(message.headers() or [])
                ce_id = headers["ce_id"]
                assert isinstance(ce_id, bytes)
                ids.append(ce_id.decode())
        return ids
    finally:
        consumer.close()


def record_count(bootstrap: str, topic: str) -> int:
    """How many records the topic holds: its high watermark, read without waiting for any."""
    consumer = _consumer(bootstrap, topic)
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=WAIT)
        return int(high) - int(low)
    finally:
        consumer.close()


DestinationFactory = Callable[[EmbeddedBroker, str], AbstractAsyncContextManager[Destination]]
# Every sink the service can build; each runs the whole suite below.
DESTINATIONS: dict[str, DestinationFactory] = {
    "memory": memory_destination,
    "webhook": webhook_destination,
    "kafka": kafka_destination,
}


@pytest.fixture(params=sorted(DESTINATIONS))
async def destination(
    request: pytest.FixtureRequest,
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
) -> AsyncIterator[Destination]:
    async with DESTINATIONS[request.param](kafka_broker, unique_topic("sink")) as opened:
        yield opened


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    opened = Listener()
    await opened.start()
    yield opened
    await opened.stop()


@pytest.fixture
def events() -> list[OutboxEvent]:
    # Two tickets, interleaved, so "in order" covers events of different keys.
    return [make_event(f"T{n % 2}", sequence=n) for n in range(1, 7)]


async def test_every_event_gets_one_outcome_and_arrives(
    destination: Destination, events: list[OutboxEvent]
) -> None:
    """A batch the destination takes: one ``None`` per event; each arrives, once."""
    outcomes = await destination.sink.deliver(events)
    assert outcomes == [None] * len(events)
    arrived = await destination.arrived(len(events))
    assert sorted(arrived) == sorted(event.id for event in events)


async def test_outcomes_are_in_the_order_the_events_were_handed_over(
    destination: Destination, events: list[OutboxEvent]
) -> None:
    """Refused events in the middle of the batch: the errors sit at their positions, the
    other events are delivered and arrive."""
    batch = [destination.refusable(e) if n in REFUSED else e for n, e in enumerate(events)]
    outcomes = await destination.sink.deliver(batch)
    assert len(outcomes) == len(batch)
    assert [n for n, outcome in enumerate(outcomes) if outcome is not None] == list(REFUSED)
    accepted = [e.id for n, e in enumerate(batch) if n not in REFUSED]
    assert sorted(await destination.arrived(len(accepted))) == sorted(accepted)


async def test_an_empty_batch_after_a_delivery_sends_nothing(
    destination: Destination, events: list[OutboxEvent]
) -> None:
    """On a sink already in use, an empty batch answers ``[]`` and reaches nobody."""
    assert await destination.sink.deliver(events[:1]) == [None]
    await destination.arrived(1)
    assert await destination.sink.deliver([]) == []
    if isinstance(destination.sink, Pipelined):
        assert await (await destination.sink.submit([])).outcomes() == []
    assert await destination.arrivals_now() == 1


@pytest.mark.parametrize("kind", sorted(k for k in DESTINATIONS if k != "memory"))
async def test_an_empty_batch_opens_no_connection(
    kind: str,
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    listener: Listener,
) -> None:
    """A fresh sink handed an empty batch does not even connect to its destination."""
    async with DESTINATIONS[kind](kafka_broker, unique_topic("sink")) as destination:
        assert destination.aimed_at is not None
        sink = destination.aimed_at(listener.port)
        async with asyncio.timeout(WAIT):
            assert await sink.deliver([]) == []
            if isinstance(sink, Pipelined):
                assert await (await sink.submit([])).outcomes() == []
        await asyncio.sleep(0.2)  # time for a connection attempt to land, had there been one
        assert listener.connections == 0


async def test_close_is_idempotent(destination: Destination, events: list[OutboxEvent]) -> None:
    """``close`` after use, then again: the second call is harmless."""
    assert await destination.sink.deliver(events[:1]) == [None]
    await destination.sink.close()
    await destination.sink.close()


async def test_a_fresh_sink_closes_twice() -> None:
    """A sink never used closes, twice, without reaching for a destination."""
    sinks: list[Sink] = [
        MemorySink(),
        WebhookSink("webhook:x", "http://127.0.0.1:9/webhook", secret=SECRET),
        KafkaSink(bootstrap_servers=["127.0.0.1:9"], topic_for=lambda _: "x"),
    ]
    for sink in sinks:
        async with asyncio.timeout(WAIT):
            await sink.close()
            await sink.close()


async def test_a_redelivered_event_keeps_its_id(
    destination: Destination, events: list[OutboxEvent]
) -> None:
    """The same event delivered twice (an outbox retry, a replay) arrives twice under its id."""
    event = events[0]
    assert await destination.sink.deliver([event]) == [None]
    assert await destination.sink.deliver([event]) == [None]
    assert await destination.arrived(2) == [event.id, event.id]
