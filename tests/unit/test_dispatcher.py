"""The dispatcher's decisions (pure) and its draining behaviour over the in-memory parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from notifier.envelope import OutboxEvent, event_id
from notifier.errors import DeliveryError, FatalDeliveryError, RetriableDeliveryError
from notifier.model import SourceId
from notifier.sinks.base import Acks, Pipelined
from notifier.sinks.dispatcher import KAFKA_BACKOFF_CAP, Dispatcher, decide
from notifier.sinks.kafka import KafkaSink
from notifier.sinks.memory import MemorySink
from notifier.sinks.retry import RetrySchedule
from notifier.store.base import Delivery, DeliveryStatus, Outcome, Routed
from notifier.store.memory import MemoryStore

T0 = datetime(2025, 6, 7, 21, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule(delays=(0, 5, 300), jitter=0.0)


def _event(n: int = 1) -> OutboxEvent:
    return OutboxEvent(
        id=event_id("src", f"T{n}", "ticket.checked_in", 1),
        type="ticket.checked_in",
        ce_source="/shotgun/acme/src",
        subject=f"T{n}",
        time=T0,
        partition_key=f"shotgun:src:T{n}",
        organizer="acme",
        source_id="src",
        data=b"{}",
    )


def _delivery(attempts: int = 0) -> Delivery:
    return Delivery(position=1, sink="webhook:doors", event=_event(), attempts=attempts)


def test_an_acknowledged_delivery_is_delivered() -> None:
    """No error: delivered."""
    outcome = decide(_delivery(), None, schedule=SCHEDULE, now=100.0, rand=0.5)
    assert outcome.status is DeliveryStatus.DELIVERED


@pytest.mark.parametrize(("attempts", "delay"), [(0, 5.0), (1, 300.0)])
def test_a_retriable_failure_waits_the_scheduled_delay(attempts: int, delay: float) -> None:
    """After n failed attempts the next one is due after the schedule's n-th delay."""
    error = RetriableDeliveryError("HTTP 500", status=500)
    outcome = decide(_delivery(attempts), error, schedule=SCHEDULE, now=100.0, rand=0.5)
    assert outcome.status is DeliveryStatus.PENDING
    assert outcome.retry_at == 100.0 + delay
    assert outcome.error == "HTTP 500"


def test_the_last_failure_parks_the_delivery() -> None:
    """When the schedule is spent the delivery is parked, never dropped."""
    error = RetriableDeliveryError("HTTP 500", status=500)
    outcome = decide(_delivery(2), error, schedule=SCHEDULE, now=100.0, rand=0.5)
    assert outcome.status is DeliveryStatus.PARKED


def test_retry_after_lengthens_the_wait() -> None:
    """An endpoint's Retry-After beyond the schedule's delay is honoured."""
    error = RetriableDeliveryError("HTTP 429", status=429, retry_after=60)
    outcome = decide(_delivery(0), error, schedule=SCHEDULE, now=100.0, rand=0.5)
    assert outcome.retry_at == 160.0


def test_a_fatal_failure_parks_at_once() -> None:
    """410 Gone parks the delivery without further attempts."""
    error = FatalDeliveryError("410 Gone", status=410)
    outcome = decide(_delivery(0), error, schedule=SCHEDULE, now=100.0, rand=0.5)
    assert outcome.status is DeliveryStatus.PARKED


@pytest.mark.parametrize("attempts", [0, 3, 50])
def test_kafka_failures_back_off_and_are_never_parked(attempts: int) -> None:
    """Without a schedule (Kafka), failures back off up to a cap and stay pending."""
    error = RetriableDeliveryError("broker down")
    outcome = decide(_delivery(attempts), error, schedule=None, now=100.0, rand=0.999)
    assert outcome.status is DeliveryStatus.PENDING
    assert 100.0 < outcome.retry_at <= 100.0 + KAFKA_BACKOFF_CAP * 1.2


class GoneSink(MemorySink):
    """Answers 410 to everything."""

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        return [FatalDeliveryError("410 Gone", status=410) for _ in batch]


class TooLargeSink(MemorySink):
    """Refuses every record as too large (fatal, but not 'gone')."""

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        return [FatalDeliveryError("record too large") for _ in batch]


async def _commit(store: MemoryStore, sinks: Sequence[str], count: int = 2) -> None:
    events = [Routed(event=_event(n), sinks=tuple(sinks)) for n in range(count)]
    await store.commit(SourceId("src"), tickets={}, events=events, cursor=None)


async def test_a_gone_endpoint_is_disabled_and_others_still_receive() -> None:
    """410 disables that endpoint only; the healthy sink gets every event."""
    store = MemoryStore()
    gone, healthy = GoneSink("webhook:gone"), MemorySink("kafka")
    await _commit(store, ["webhook:gone", "kafka"])
    dispatcher = Dispatcher(store, [gone, healthy], schedules={"webhook:gone": SCHEDULE})
    await dispatcher.drain()
    assert len(healthy.received) == 2
    assert "webhook:gone" in await store.disabled_sinks()


async def test_a_fatal_error_that_is_not_gone_keeps_the_sink_enabled() -> None:
    """A record too large is parked alone; the sink stays on."""
    store = MemoryStore()
    await _commit(store, ["kafka"], count=1)
    await Dispatcher(store, [TooLargeSink("kafka")], schedules={}).drain()
    assert await store.disabled_sinks() == {}
    (parked,) = await store.deliveries(status=DeliveryStatus.PARKED)
    assert parked.last_error == "record too large"


async def test_a_disabled_sink_receives_nothing_until_enabled() -> None:
    """Deliveries to a disabled endpoint wait, pending, until an operator re-enables it."""
    store = MemoryStore()
    sink = MemorySink("webhook:doors")
    await store.disable_sink("webhook:doors", "410 Gone")
    await _commit(store, ["webhook:doors"], count=1)
    dispatcher = Dispatcher(store, [sink], schedules={})
    await dispatcher.drain()
    assert sink.received == []
    await store.enable_sink("webhook:doors")
    await dispatcher.drain()
    assert len(sink.received) == 1


class RecordingStore(MemoryStore):
    """A MemoryStore that keeps the positions of every ``record`` call, in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[list[int]] = []
        self.wrote = asyncio.Event()

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        self.recorded.append([outcome.position for outcome in outcomes])
        await super().record(sink, outcomes)
        self.wrote.set()


class FutureAcks:
    def __init__(self, future: asyncio.Future[list[DeliveryError | None]]) -> None:
        self._future = future

    async def outcomes(self) -> list[DeliveryError | None]:
        return await self._future


class AckedByTest(MemorySink):
    """A pipelined sink (like Kafka's) whose acks the test gives, slice by slice."""

    def __init__(self, name: str = "kafka") -> None:
        super().__init__(name)
        self.slices: list[list[OutboxEvent]] = []
        self._acks: list[asyncio.Future[list[DeliveryError | None]]] = []
        self._submitted = asyncio.Condition()

    async def submit(self, batch: Sequence[OutboxEvent]) -> Acks:
        future: asyncio.Future[list[DeliveryError | None]] = asyncio.Future()
        self.slices.append(list(batch))
        self._acks.append(future)
        async with self._submitted:
            self._submitted.notify_all()
        return FutureAcks(future)

    async def submitted(self, count: int) -> None:
        """Wait (bounded) until ``count`` slices have been submitted."""
        async with asyncio.timeout(5), self._submitted:
            await self._submitted.wait_for(lambda: len(self.slices) >= count)

    def ack(self, index: int, error: DeliveryError | None = None) -> None:
        """Answer slice ``index``: every event acked, or every event failed with ``error``."""
        self._acks[index].set_result([error for _ in self.slices[index]])


def _pipelined(store: MemoryStore, sink: MemorySink, *, batch: int = 4) -> Dispatcher:
    return Dispatcher(store, [sink], schedules={}, batch_size=batch, slice_size=2, pipeline_depth=2)


async def _statuses(store: MemoryStore) -> dict[int, tuple[DeliveryStatus, int]]:
    return {d.position: (d.status, d.attempts) for d in await store.deliveries()}


def test_the_kafka_sink_is_pipelined_and_the_memory_sink_is_not() -> None:
    """Pipelining is chosen by what a sink offers (``submit``), not by its name."""
    kafka: Pipelined = KafkaSink(bootstrap_servers=["127.0.0.1:1"], topic_for=lambda _: "x")
    assert isinstance(kafka, Pipelined)
    assert not isinstance(MemorySink("kafka"), Pipelined)


async def test_the_next_slice_is_sent_before_the_previous_one_is_acked() -> None:
    """Slice 2 goes out while slice 1 awaits its acks; nothing is recorded before an ack."""
    store, sink = RecordingStore(), AckedByTest()
    await _commit(store, ["kafka"], count=4)
    drain = asyncio.create_task(_pipelined(store, sink).drain())

    await sink.submitted(2)

    assert [[e.subject for e in part] for part in sink.slices] == [["T0", "T1"], ["T2", "T3"]]
    assert store.recorded == []
    sink.ack(0)
    sink.ack(1)
    assert (await drain).delivered == 4


async def test_by_default_a_slice_waits_for_the_previous_ones_acks() -> None:
    """One slice in flight unless asked: a failed slice can never be overtaken by the next."""
    store, sink = RecordingStore(), AckedByTest()
    await _commit(store, ["kafka"], count=4)
    dispatcher = Dispatcher(store, [sink], schedules={}, batch_size=4, slice_size=2)
    drain = asyncio.create_task(dispatcher.drain())
    await sink.submitted(1)
    for _ in range(5):
        await asyncio.sleep(0)  # give the dispatcher every chance to send slice 2 early
    assert len(sink.slices) == 1
    sink.ack(0)
    await sink.submitted(2)
    sink.ack(1)
    assert (await drain).delivered == 4
    assert store.recorded == [[1, 2], [3, 4]]


async def test_outcomes_are_recorded_in_outbox_order_even_when_acks_come_out_of_order() -> None:
    """Slice 2 acked first is still recorded after slice 1, which is recorded once acked."""
    store, sink = RecordingStore(), AckedByTest()
    await _commit(store, ["kafka"], count=4)
    drain = asyncio.create_task(_pipelined(store, sink).drain())
    await sink.submitted(2)

    sink.ack(1)
    await asyncio.sleep(0)  # let the dispatcher run: it must still wait for slice 1
    assert store.recorded == []
    sink.ack(0)
    await drain

    assert store.recorded == [[1, 2], [3, 4]]


async def test_a_failure_in_the_later_slice_leaves_the_earlier_one_delivered() -> None:
    """Slice 2 fails (answered first): slice 1 is still delivered, slice 2 waits to retry."""
    store, sink = RecordingStore(), AckedByTest()
    await _commit(store, ["kafka"], count=4)
    drain = asyncio.create_task(_pipelined(store, sink).drain())
    await sink.submitted(2)

    sink.ack(1, RetriableDeliveryError("broker down"))
    sink.ack(0)
    report = await drain

    assert (report.delivered, report.retrying) == (2, 2)
    assert await _statuses(store) == {
        1: (DeliveryStatus.DELIVERED, 1),
        2: (DeliveryStatus.DELIVERED, 1),
        3: (DeliveryStatus.PENDING, 1),
        4: (DeliveryStatus.PENDING, 1),
    }


async def test_a_failed_slice_stops_the_slices_not_yet_sent() -> None:
    """Slice 1 fails: slice 2, already in flight, is settled as acked; slice 3 never goes."""
    store, sink = RecordingStore(), AckedByTest()
    await _commit(store, ["kafka"], count=6)
    drain = asyncio.create_task(_pipelined(store, sink, batch=6).drain())
    await sink.submitted(2)

    sink.ack(0, RetriableDeliveryError("broker down"))
    sink.ack(1)
    await drain

    assert len(sink.slices) == 2
    assert await _statuses(store) == {
        1: (DeliveryStatus.PENDING, 1),
        2: (DeliveryStatus.PENDING, 1),
        3: (DeliveryStatus.DELIVERED, 1),
        4: (DeliveryStatus.DELIVERED, 1),
        5: (DeliveryStatus.PENDING, 0),
        6: (DeliveryStatus.PENDING, 0),
    }


async def test_a_cancelled_drain_records_nothing_still_in_flight() -> None:
    """Cancelled while slice 2 awaits its acks: slice 1 stays delivered, slice 2 untouched."""
    store, sink = RecordingStore(), AckedByTest()
    await _commit(store, ["kafka"], count=4)
    drain = asyncio.create_task(_pipelined(store, sink).drain())
    await sink.submitted(2)
    sink.ack(0)
    async with asyncio.timeout(5):
        await store.wrote.wait()

    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain

    assert await _statuses(store) == {
        1: (DeliveryStatus.DELIVERED, 1),
        2: (DeliveryStatus.DELIVERED, 1),
        3: (DeliveryStatus.PENDING, 0),
        4: (DeliveryStatus.PENDING, 0),
    }


class PacedSink(MemorySink):
    """A webhook-like sink: ``limit`` events at a time; can ask for a pause after a slice."""

    def __init__(self, name: str, *, limit: int, pause_after: int | None = None) -> None:
        super().__init__(name)
        self.limit = limit
        self.pause_after = pause_after
        self.slices: list[int] = []
        self._not_before = 0.0

    def batch_limit(self) -> int:
        return self.limit

    def not_before(self) -> float:
        return self._not_before

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        self.slices.append(len(batch))
        if len(self.slices) == self.pause_after:
            self._not_before = time.monotonic() + 3600  # e.g. a 429 with Retry-After
        return await super().deliver(batch)


async def test_a_paced_sink_gets_its_batch_limit_at_a_time_and_one_write_per_read() -> None:
    """Six events, two at a time (the endpoint's concurrency), recorded in one write."""
    store, sink = RecordingStore(), PacedSink("webhook:doors", limit=2)
    await _commit(store, ["webhook:doors"], count=6)

    report = await Dispatcher(store, [sink], schedules={"webhook:doors": SCHEDULE}).drain()

    assert report.delivered == 6
    assert sink.slices == [2, 2, 2]
    assert store.recorded == [[1, 2, 3, 4, 5, 6]]


async def test_a_pause_asked_for_mid_read_leaves_the_rest_untouched() -> None:
    """After the slice that asked to slow down, nothing more is sent or counted as tried."""
    store = RecordingStore()
    sink = PacedSink("webhook:doors", limit=2, pause_after=1)
    await _commit(store, ["webhook:doors"], count=6)

    report = await Dispatcher(store, [sink], schedules={"webhook:doors": SCHEDULE}).drain()

    assert report.delivered == 2
    assert sink.slices == [2]
    statuses = await _statuses(store)
    assert [statuses[p] for p in (1, 2)] == [(DeliveryStatus.DELIVERED, 1)] * 2
    assert [statuses[p] for p in (3, 4, 5, 6)] == [(DeliveryStatus.PENDING, 0)] * 4


async def test_a_paced_slice_that_delivered_nothing_ends_the_read() -> None:
    """A dead endpoint costs one slice of attempts per drain, not a whole read of them."""
    store, sink = RecordingStore(), PacedSink("webhook:doors", limit=2)
    sink.fail_with = RetriableDeliveryError("HTTP 503", status=503)
    await _commit(store, ["webhook:doors"], count=6)

    report = await Dispatcher(store, [sink], schedules={"webhook:doors": SCHEDULE}).drain()

    assert (report.delivered, report.retrying) == (0, 2)
    assert sink.slices == [2]
    statuses = await _statuses(store)
    assert [statuses[p][1] for p in (1, 2, 3, 4, 5, 6)] == [1, 1, 0, 0, 0, 0]
