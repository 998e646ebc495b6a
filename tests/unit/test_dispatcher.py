"""The dispatcher's decisions (pure) and its draining behaviour over the in-memory parts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from notifier.envelope import OutboxEvent, event_id
from notifier.errors import DeliveryError, FatalDeliveryError, RetriableDeliveryError
from notifier.model import SourceId
from notifier.sinks.dispatcher import KAFKA_BACKOFF_CAP, Dispatcher, decide
from notifier.sinks.memory import MemorySink
from notifier.sinks.retry import RetrySchedule
from notifier.store.base import Delivery, DeliveryStatus, Routed
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
