"""KafkaSink against a real Kafka-protocol broker (Tansu), read back by an independent client.

The reader is confluent-kafka (librdkafka), not aiokafka, so a bug shared by the sink's
client and the reader cannot cancel out; records are parsed with the cloudevents SDK's Kafka
binding, so the headers are checked against the spec's mapping rather than our own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # stubs omit the re-export
    AdminClient,
    NewTopic,
)

from notifier.dev.broker import EmbeddedBroker
from notifier.envelope import OutboxEvent, event_id
from notifier.errors import (
    AccessDeniedError,
    ConfigError,
    DeliveryError,
    FatalDeliveryError,
    RetriableDeliveryError,
)
from notifier.sinks.base import Sink
from notifier.sinks.kafka import (
    MAX_BATCH_SIZE,
    KafkaSink,
    TopicRouter,
    record_headers,
    translate_error,
)
from notifier.sinks.partitioner import partition_for

# Short client timeouts so "broker gone" tests finish fast; DELIVERY_BOUND is the promise.
REQUEST_TIMEOUT = 1.5
DELIVERY_BOUND = 3.0
READ_TIMEOUT = 10.0
T0 = datetime(2025, 3, 1, 18, 30, tzinfo=UTC)


def make_event(
    ticket: str = "T1",
    *,
    event_type: str = "ticket.checked_in",
    sequence: int = 1,
    source: str = "main-hall",
    payload: dict[str, Any] | None = None,
) -> OutboxEvent:
    """An OutboxEvent as the outbox would hold it (eventpop provider, organizer acme)."""
    data = payload if payload is not None else {"ticket_id": ticket, "sequence": sequence}
    return OutboxEvent(
        id=event_id(source, ticket, event_type, sequence),
        type=event_type,
        ce_source=f"/eventpop/acme/{source}",
        subject=ticket,
        time=T0 + timedelta(seconds=sequence),
        partition_key=f"eventpop:{source}:{ticket}",
        organizer="acme",
        source_id=source,
        data=json.dumps(data).encode(),
    )


def create_topics(bootstrap: str, *names: str, partitions: int = 4) -> None:
    """Create topics with the admin API, waiting (bounded) until each exists."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    for future in admin.create_topics(new, operation_timeout=5).values():
        future.result(timeout=10)


@dataclass(frozen=True)
class Record:
    """What a consumer saw, narrowed from confluent's all-Optional accessors."""

    partition: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    @classmethod
    def of(cls, message: Message) -> Record:
        partition, key, value = message.partition(), message.key(), message.value()
        assert partition is not None
        assert key is not None
        assert value is not None
        headers: dict[str, bytes] = {}
        raw = message.headers() or []
        for name, header in raw.items() if isinstance(raw, dict) else raw:
            assert isinstance(header, bytes)
            headers[name] = header
        return cls(partition, key, value, headers)

    def cloudevent(self) -> BaseCloudEvent:
        """Parse with the cloudevents SDK's Kafka binary-mode binding."""
        kafka_message = KafkaMessage(headers=self.headers, key=self.key, value=self.value)
        return from_binary_event(kafka_message)


def read_back(bootstrap: str, topic: str, expected: int) -> list[Record]:
    """Read ``expected`` records from every partition of ``topic``, bounded by READ_TIMEOUT.

    Partitions are assigned directly: no group join, so no rebalance delay.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=5)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while len(records) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                records.append(Record.of(message))
        return records
    finally:
        consumer.close()


def to_topic(topic: str) -> TopicRouter:
    return lambda _event: topic


class SinkFactory(Protocol):
    def __call__(
        self,
        topic_for: TopicRouter,
        *,
        bootstrap: str | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
    ) -> KafkaSink: ...


@pytest.fixture
async def make_sink(kafka_broker: EmbeddedBroker) -> AsyncIterator[SinkFactory]:
    """Build sinks (default: the session broker) and close them all, bounded, at teardown."""
    sinks: list[KafkaSink] = []

    def make(
        topic_for: TopicRouter,
        *,
        bootstrap: str | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
    ) -> KafkaSink:
        sink = KafkaSink(
            bootstrap_servers=[bootstrap or kafka_broker.bootstrap],
            topic_for=topic_for,
            request_timeout=REQUEST_TIMEOUT,
            delivery_timeout=DELIVERY_BOUND,
            close_timeout=DELIVERY_BOUND,
            max_batch_size=max_batch_size,
        )
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        await sink.close()


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A private broker for tests that stop and restart it (never the session one).

    Request it before ``make_sink`` so that the sinks are closed before it stops.
    """
    with EmbeddedBroker() as broker:
        yield broker


def assert_all_retriable(outcomes: Sequence[DeliveryError | None], count: int) -> None:
    assert len(outcomes) == count
    assert all(isinstance(outcome, RetriableDeliveryError) for outcome in outcomes), outcomes


def test_kafka_sink_satisfies_the_sink_protocol() -> None:
    """KafkaSink type-checks as a Sink and takes every event."""
    sink: Sink = KafkaSink(bootstrap_servers=["127.0.0.1:1"], topic_for=to_topic("x"))
    assert sink.name == "kafka"
    assert sink.wants(make_event())


def test_headers_are_the_binary_mode_attributes_in_order() -> None:
    """ce_* for every context attribute, content-type for datacontenttype, all UTF-8."""
    event = make_event("T1", sequence=2)
    assert record_headers(event) == [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.id.encode()),
        ("ce_source", b"/eventpop/acme/main-hall"),
        ("ce_type", b"ticket.checked_in"),
        ("ce_subject", b"T1"),
        ("ce_time", b"2025-03-01T18:30:02Z"),
        ("content-type", b"application/json"),
        ("ce_partitionkey", b"eventpop:main-hall:T1"),
    ]


@pytest.mark.parametrize(
    "moment",
    [T0, datetime(2025, 3, 1, 20, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))],
)
def test_headers_carry_every_context_attribute(moment: datetime) -> None:
    """The headers, written out for speed, stay in step with ``OutboxEvent.attributes()``."""
    event = replace(make_event("T7", sequence=3), time=moment)
    expected = [
        ("content-type" if name == "datacontenttype" else f"ce_{name}", value.encode())
        for name, value in event.attributes().items()
    ]
    assert record_headers(event) == expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KafkaConnectionError(), RetriableDeliveryError),
        (KafkaTimeoutError(), RetriableDeliveryError),
        (NotLeaderForPartitionError(), RetriableDeliveryError),
        (UnknownTopicOrPartitionError(), RetriableDeliveryError),
        (TimeoutError(), RetriableDeliveryError),
        (OSError("connection reset"), RetriableDeliveryError),
        (MessageSizeTooLargeError(), FatalDeliveryError),
        (TopicAuthorizationFailedError(), AccessDeniedError),  # retried, never parked
    ],
)
def test_translate_error(exc: BaseException, expected: type[DeliveryError]) -> None:
    """Client errors map onto what the dispatcher should do, keeping the cause."""
    error = translate_error(exc)
    assert type(error) is expected
    assert error.__cause__ is exc


class RefusingProducer:
    """Stands in for AIOKafkaProducer: two partitions; refuses partition 0's first batch."""

    def __init__(self, **_config: Any) -> None:
        self.handed_over: list[tuple[int, int]] = []  # (partition, records) per batch taken
        self._refused = False

    async def start(self) -> None:
        """Nothing to connect to."""

    async def flush(self) -> None:
        """Nothing is ever pending."""

    async def stop(self) -> None:
        """Nothing to release."""

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(1024, 0)  # a few records each, so a key spans several batches

    async def send_batch(
        self, batch: BatchBuilder, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        if partition == 0 and not self._refused:
            self._refused = True
            raise KafkaTimeoutError()
        self.handed_over.append((partition, batch.record_count()))
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


async def test_a_partition_whose_record_batch_was_refused_takes_no_more_of_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Partition 0's first record batch is refused: its later events fail too (none may
    overtake them); partition 1's events are delivered."""
    producer = RefusingProducer()
    monkeypatch.setattr("notifier.sinks.kafka.AIOKafkaProducer", lambda **_: producer)
    tickets = {
        partition_for(make_event(f"T{n}").partition_key.encode(), [0, 1]): f"T{n}" for n in range(9)
    }
    events = [make_event(tickets[p], sequence=s) for s in range(1, 13) for p in (0, 1)]
    sink = KafkaSink(bootstrap_servers=["127.0.0.1:1"], topic_for=to_topic("t"))

    outcomes = await sink.deliver(events)
    await sink.close()

    on_0 = [o for e, o in zip(events, outcomes, strict=True) if e.subject == tickets[0]]
    on_1 = [o for e, o in zip(events, outcomes, strict=True) if e.subject == tickets[1]]
    assert all(isinstance(o, RetriableDeliveryError) for o in on_0)
    assert on_1 == [None] * 12
    assert {partition for partition, _ in producer.handed_over} == {1}
    assert sum(records for _, records in producer.handed_over) == 12


@pytest.mark.parametrize(
    "settings",
    [
        {"security_protocol": "SASL_SSL", "sasl_plain_username": "svc"},
        {"security_protocol": "PLAINTEXT", "sasl_mechanism": "PLAIN"},
        {"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"},
    ],
)
def test_unusable_security_settings_are_config_errors(settings: dict[str, Any]) -> None:
    """Half a SASL setup or an unreadable CA file is refused when the sink is built."""
    with pytest.raises(ConfigError, match="kafka"):
        KafkaSink(bootstrap_servers=["127.0.0.1:1"], topic_for=to_topic("x"), **settings)


async def test_events_read_back_as_binary_mode_cloudevents(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """Every attribute, the key and the data survive the trip, per the CloudEvents binding."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic)
    events = [make_event(f"T{n}", sequence=n, payload={"n": n, "name": "Ann"}) for n in (1, 2)]

    outcomes = await make_sink(to_topic(topic)).deliver(events)

    assert outcomes == [None, None]
    records = {m.key: m for m in read_back(kafka_broker.bootstrap, topic, len(events))}
    for event in events:
        record = records[event.partition_key.encode()]
        parsed = record.cloudevent()
        assert parsed.get_id() == event.id
        assert parsed.get_type() == event.type
        assert parsed.get_source() == event.ce_source
        assert parsed.get_subject() == event.subject
        assert parsed.get_time() == event.time
        assert parsed.get_datacontenttype() == "application/json"
        assert parsed.get_extension("partitionkey") == event.partition_key
        assert parsed.get_data() == json.loads(event.data)
        assert record.value == event.data


async def test_same_key_lands_on_one_partition_in_order(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """One ticket's events share a partition and keep their order; tickets spread out."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic, partitions=4)
    tickets = [f"T{n}" for n in range(8)]
    events = [make_event(t, sequence=s) for s in range(1, 6) for t in tickets]

    assert await make_sink(to_topic(topic)).deliver(events) == [None] * len(events)

    partitions: defaultdict[bytes, set[int]] = defaultdict(set)
    order: defaultdict[bytes, list[str]] = defaultdict(list)
    for record in read_back(kafka_broker.bootstrap, topic, len(events)):
        partitions[record.key].add(record.partition)
        order[record.key].append(record.cloudevent().get_id())
    for ticket in tickets:
        key = f"eventpop:main-hall:{ticket}".encode()
        assert len(partitions[key]) == 1
        assert order[key] == [e.id for e in events if e.subject == ticket]
    assert len(set().union(*partitions.values())) > 1


def partitions_chosen_by_librdkafka(
    bootstrap: str, topic: str, keys: list[bytes]
) -> dict[bytes, int]:
    """Produce ``keys`` with librdkafka's Java-compatible partitioner; where each landed."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    landed: dict[bytes, int] = {}

    def report(error: object, message: Message) -> None:
        key, partition = message.key(), message.partition()
        assert error is None
        assert key is not None
        assert partition is not None
        landed[key] = partition

    for key in keys:
        producer.produce(topic, value=b"{}", key=key, on_delivery=report)
    assert producer.flush(READ_TIMEOUT) == 0
    return landed


async def test_a_key_lands_where_other_kafka_clients_put_it(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """The sink picks partitions itself; librdkafka's murmur2 (Java's) picks the same ones."""
    ours, theirs = unique_topic("ours"), unique_topic("theirs")
    create_topics(kafka_broker.bootstrap, ours, theirs, partitions=7)
    events = [make_event(f"T{n}") for n in range(60)]
    keys = [event.partition_key.encode() for event in events]

    assert await make_sink(to_topic(ours)).deliver(events) == [None] * len(events)

    expected = partitions_chosen_by_librdkafka(kafka_broker.bootstrap, theirs, keys)
    landed = {r.key: r.partition for r in read_back(kafka_broker.bootstrap, ours, len(events))}
    assert landed == expected
    assert len(set(landed.values())) > 3


async def test_one_key_over_many_record_batches_keeps_its_order(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """Small record batches: each partition's fill and go out in turn, in event order."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic, partitions=2)
    tickets = ["T1", "T2", "T3"]
    events = [make_event(t, sequence=s) for s in range(1, 41) for t in tickets]

    sink = make_sink(to_topic(topic), max_batch_size=1024)  # a few records per batch
    assert await sink.deliver(events) == [None] * len(events)

    order: defaultdict[bytes, list[str]] = defaultdict(list)
    for record in read_back(kafka_broker.bootstrap, topic, len(events)):
        order[record.key].append(record.cloudevent().get_id())
    for ticket in tickets:
        wanted = [e.id for e in events if e.subject == ticket]
        assert order[f"eventpop:main-hall:{ticket}".encode()] == wanted


async def test_a_batch_submitted_before_the_previous_is_acked_lands_after_it(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """submit(A), submit(B), then both acks: on each key's partition, A's event then B's."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic)
    tickets = [f"T{n}" for n in range(8)]
    first = [make_event(t, sequence=1) for t in tickets]
    second = [make_event(t, sequence=2) for t in tickets]
    sink = make_sink(to_topic(topic))

    in_flight = [await sink.submit(first), await sink.submit(second)]

    assert [await acks.outcomes() for acks in in_flight] == [[None] * 8, [None] * 8]
    order: defaultdict[bytes, list[str]] = defaultdict(list)
    for record in read_back(kafka_broker.bootstrap, topic, 2 * len(tickets)):
        order[record.key].append(record.cloudevent().get_id())
    for a, b in zip(first, second, strict=True):
        assert order[a.partition_key.encode()] == [a.id, b.id]


async def test_a_routing_failure_fails_that_event_alone(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """``topic_for`` raising for one event: that event is retriable, the others are acked."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic)

    def route(event: OutboxEvent) -> str:
        if event.subject == "T2":
            raise KeyError("no topic for T2")
        return topic

    outcomes = await make_sink(route).deliver([make_event(f"T{n}") for n in (1, 2, 3)])

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], RetriableDeliveryError)
    assert isinstance(outcomes[1].__cause__, KeyError)


async def test_topic_for_routes_each_event_type(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """Per-type routing: each topic holds exactly the events routed to it."""
    routes = {"ticket.checked_in": unique_topic("in"), "ticket.voided": unique_topic("void")}
    create_topics(kafka_broker.bootstrap, *routes.values())
    events = [
        make_event("T1", event_type="ticket.checked_in"),
        make_event("T2", event_type="ticket.voided"),
        make_event("T3", event_type="ticket.checked_in"),
    ]

    sink = make_sink(lambda event: routes[event.type])
    assert await sink.deliver(events) == [None, None, None]

    for event_type, topic in routes.items():
        wanted = [e.id for e in events if e.type == event_type]
        records = read_back(kafka_broker.bootstrap, topic, len(wanted))
        assert sorted(r.cloudevent().get_id() for r in records) == sorted(wanted)


async def test_oversized_event_is_fatal_and_spares_the_rest(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """A record over max_request_size gets FatalDeliveryError; its neighbours are acked."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic)
    huge = make_event("T2", payload={"blob": "x" * 2_000_000})
    events = [make_event("T1"), huge, make_event("T3")]

    outcomes = await make_sink(to_topic(topic)).deliver(events)

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], FatalDeliveryError)
    assert outcomes[1].__cause__ is not None


async def test_empty_batch_needs_no_broker(make_sink: SinkFactory) -> None:
    """An empty batch is answered without connecting anywhere."""
    sink = make_sink(to_topic("unused"), bootstrap="127.0.0.1:1")
    assert await sink.deliver([]) == []


async def assert_bounded_once_stopped(broker: EmbeddedBroker, sink: KafkaSink) -> None:
    """Stop the broker; the next deliver returns retriable errors within the bound."""
    broker.stop()
    events = [make_event(f"T{n}") for n in range(1, 4)]
    started = time.monotonic()
    outcomes = await sink.deliver(events)
    elapsed = time.monotonic() - started
    assert_all_retriable(outcomes, len(events))
    assert elapsed < DELIVERY_BOUND + 1.0


async def test_deliver_to_a_stopped_broker_is_bounded_and_retriable(
    own_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """Broker gone after a success: retriable errors within the bound, no hang, no raise."""
    topic = unique_topic("")
    create_topics(own_broker.bootstrap, topic)
    sink = make_sink(to_topic(topic), bootstrap=own_broker.bootstrap)
    assert await sink.deliver([make_event("T0")]) == [None]
    await assert_bounded_once_stopped(own_broker, sink)


async def test_deliver_to_an_unknown_topic_with_the_broker_gone_is_bounded(
    own_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """No metadata for the topic and no broker: the per-call deadline still holds."""
    known, never_seen = unique_topic("known"), unique_topic("never-seen")
    sink = make_sink(
        lambda event: known if event.subject == "T0" else never_seen,
        bootstrap=own_broker.bootstrap,
    )
    assert await sink.deliver([make_event("T0")]) == [None]
    await assert_bounded_once_stopped(own_broker, sink)


async def test_broker_down_at_first_deliver_then_up(
    own_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """A failed lazy start yields retriable errors; the next deliver starts the producer."""
    port = own_broker.port
    own_broker.stop()
    topic = unique_topic("")
    sink = make_sink(to_topic(topic), bootstrap=own_broker.bootstrap)
    events = [make_event("T1"), make_event("T2")]

    started = time.monotonic()
    assert_all_retriable(await sink.deliver(events), len(events))
    assert time.monotonic() - started < DELIVERY_BOUND + 1.0
    assert not await sink.ping()

    own_broker.start(port)
    create_topics(own_broker.bootstrap, topic)
    assert await sink.deliver(events) == [None, None]
    assert await sink.ping()


async def test_held_back_events_reach_a_restarted_broker_with_the_same_ids(
    own_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """Down then back on the same port (topic recreated): a retry delivers the same ce_ids."""
    topic = unique_topic("")
    create_topics(own_broker.bootstrap, topic)
    sink = make_sink(to_topic(topic), bootstrap=own_broker.bootstrap)
    assert await sink.deliver([make_event("T0")]) == [None]
    port = own_broker.port
    own_broker.stop()
    events = [make_event(f"T{n}", sequence=n) for n in range(1, 5)]
    assert_all_retriable(await sink.deliver(events), len(events))

    own_broker.start(port)
    create_topics(own_broker.bootstrap, topic)
    outcomes = await sink.deliver(events)

    assert outcomes == [None] * len(events)
    records = read_back(own_broker.bootstrap, topic, len(events))
    assert sorted(r.cloudevent().get_id() for r in records) == sorted(e.id for e in events)


async def test_close_is_idempotent_and_final(
    kafka_broker: EmbeddedBroker, make_sink: SinkFactory, unique_topic: Callable[[str], str]
) -> None:
    """close() twice is fine; afterwards deliver answers retriable and ping is False."""
    topic = unique_topic("")
    create_topics(kafka_broker.bootstrap, topic)
    sink = make_sink(to_topic(topic))
    assert await sink.ping()
    assert await sink.deliver([make_event()]) == [None]

    await sink.close()
    await sink.close()

    assert_all_retriable(await sink.deliver([make_event()]), 1)
    assert not await sink.ping()
