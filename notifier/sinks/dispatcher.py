"""Drains the outbox: one worker per sink, so a slow or dead sink never delays another.

A delivery is marked delivered only after its sink acknowledged it. A webhook failure
follows the endpoint's retry schedule and is parked when the schedule is spent; a Kafka
failure is retried with capped backoff and never parked, since a broker outage is the
operator's to fix and every event must reach the topic in order once it is back.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import structlog

from notifier.errors import DeliveryError, FatalDeliveryError, RetriableDeliveryError
from notifier.observability import DELIVERIES, DETECTION_LATENCY
from notifier.sinks.base import Sink
from notifier.sinks.retry import RetrySchedule, next_delay
from notifier.store.base import Delivery, DeliveryStatus, Outcome, SinkSwitches

log = structlog.get_logger(__name__)

# Each attempt against a dead broker already takes the sink's delivery timeout, so a short
# cap costs little while down and lets the outbox drain within seconds of the broker's return.
KAFKA_BACKOFF_CAP = 5.0
GONE = 410


@dataclass(frozen=True, slots=True)
class DrainReport:
    delivered: int = 0
    retrying: int = 0
    parked: int = 0
    gone: bool = False  # a 410 in the batch switched the sink off


def decide(
    delivery: Delivery,
    error: DeliveryError | None,
    *,
    schedule: RetrySchedule | None,
    now: float,
    rand: float,
) -> Outcome:
    """What becomes of one attempt (pure): delivered, retried at a time, or parked."""
    position = delivery.position
    if error is None:
        return Outcome(position=position, status=DeliveryStatus.DELIVERED)
    if isinstance(error, FatalDeliveryError):
        return Outcome(position=position, status=DeliveryStatus.PARKED, error=str(error))
    retry_after = error.retry_after if isinstance(error, RetriableDeliveryError) else None
    if schedule is None:
        backoff = min(KAFKA_BACKOFF_CAP, 0.5 * 2 ** min(delivery.attempts, 10))
        delay = max(backoff * (0.8 + 0.4 * rand), retry_after or 0.0)
    else:
        maybe = next_delay(
            schedule, attempts_made=delivery.attempts + 1, retry_after=retry_after, rand=rand
        )
        if maybe is None:
            return Outcome(position=position, status=DeliveryStatus.PARKED, error=str(error))
        delay = maybe
    return Outcome(
        position=position, status=DeliveryStatus.PENDING, retry_at=now + delay, error=str(error)
    )


@runtime_checkable
class Paced(Protocol):
    """A sink that asks to be called more slowly (a webhook endpoint that answered 429/503)."""

    def batch_limit(self) -> int: ...

    def not_before(self) -> float: ...


class Dispatcher:
    """Moves due deliveries from the outbox to their sinks and records each outcome."""

    def __init__(
        self,
        outbox: SinkSwitches,
        sinks: Sequence[Sink],
        *,
        schedules: Mapping[str, RetrySchedule],
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        batch_size: int = 2000,
    ) -> None:
        self._outbox = outbox
        self._sinks = {sink.name: sink for sink in sinks}
        self._schedules = schedules
        self._clock = clock
        self._rand = rand
        self._batch_size = batch_size
        self._wake = {name: asyncio.Event() for name in self._sinks}

    def notify(self) -> None:
        """New events were committed: wake every idle worker now rather than after ``idle``."""
        for event in self._wake.values():
            event.set()

    async def drain(self) -> DrainReport:
        """Deliver everything due now, every sink concurrently; return when none is due."""
        disabled = await self._outbox.disabled_sinks()
        reports = await asyncio.gather(
            *(self._drain_sink(sink) for name, sink in self._sinks.items() if name not in disabled)
        )
        return DrainReport(
            delivered=sum(r.delivered for r in reports),
            retrying=sum(r.retrying for r in reports),
            parked=sum(r.parked for r in reports),
        )

    async def run(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        """Keep draining until ``stop`` is set; ``notify()`` cuts an idle wait short."""
        workers = [
            asyncio.create_task(self._run_sink(sink, stop, idle), name=f"sink:{name}")
            for name, sink in self._sinks.items()
        ]
        await asyncio.gather(*workers)

    async def _run_sink(self, sink: Sink, stop: asyncio.Event, idle: float) -> None:
        while not stop.is_set():
            try:
                if sink.name in await self._outbox.disabled_sinks():
                    report = DrainReport()
                else:
                    report = await self._drain_sink(sink)
            except Exception:  # a store hiccup must not kill the worker: log, wait, retry
                log.exception("dispatch_failed", sink=sink.name)
                report = DrainReport()
            if report.delivered == 0:
                await _wait_any(stop, self._wake[sink.name], seconds=idle)

    async def _drain_sink(self, sink: Sink) -> DrainReport:
        total = DrainReport()
        while True:
            limit = self._batch_size
            if isinstance(sink, Paced):
                if time.monotonic() < sink.not_before():
                    return total  # the endpoint asked for a pause; its worker idles meanwhile
                limit = min(limit, sink.batch_limit())
            batch = await self._due(sink.name, limit)
            if not batch:
                return total
            report = await self._deliver_batch(sink, batch)
            total = DrainReport(
                delivered=total.delivered + report.delivered,
                retrying=total.retrying + report.retrying,
                parked=total.parked + report.parked,
            )
            if report.delivered == 0:
                return total
            if report.gone:
                return total  # a 410 in this batch switched the endpoint off: stop here

    async def _due(self, sink: str, limit: int) -> list[Delivery]:
        """Due deliveries, in commit order. A sink without a retry schedule (Kafka) keeps
        per-key order, so it delivers strictly in commit order: nothing overtakes a delivery
        still waiting for its retry (else events committed during a broker outage, fresh and
        due at once, would reach the topic before older ones of the same ticket)."""
        now = self._clock()
        if sink in self._schedules:
            return await self._outbox.due(sink, now=now, limit=limit)
        head = await self._outbox.due(sink, now=math.inf, limit=limit)
        return list(itertools.takewhile(lambda delivery: delivery.next_attempt_at <= now, head))

    async def _deliver_batch(self, sink: Sink, batch: list[Delivery]) -> DrainReport:
        errors = await sink.deliver([delivery.event for delivery in batch])
        now = self._clock()
        schedule = self._schedules.get(sink.name)
        outcomes = [
            decide(delivery, error, schedule=schedule, now=now, rand=self._rand())
            for delivery, error in zip(batch, errors, strict=True)
        ]
        await self._outbox.record(sink.name, outcomes)
        gone = await self._disable_if_gone(sink.name, errors)
        _observe(sink.name, batch, outcomes, now=now)
        return replace(_count(outcomes, errors, sink.name), gone=gone)

    async def _disable_if_gone(self, sink: str, errors: Sequence[DeliveryError | None]) -> bool:
        # Only 410 Gone switches a sink off; other fatal errors (a record too large for the
        # broker) park that one event and leave the sink serving the rest.
        fatal = next((e for e in errors if _is_gone(e)), None)
        if fatal is not None:
            await self._outbox.disable_sink(sink, str(fatal))
            log.error("sink_disabled", sink=sink, reason=str(fatal))
        return fatal is not None


def _observe(
    sink: str, batch: Sequence[Delivery], outcomes: Sequence[Outcome], *, now: float
) -> None:
    delivered = DETECTION_LATENCY.labels("delivered", sink)
    for status, count in Counter(outcome.status for outcome in outcomes).items():
        DELIVERIES.labels(sink, status.value).inc(count)  # one label lookup per status
    for delivery, outcome in zip(batch, outcomes, strict=True):
        if outcome.status is DeliveryStatus.DELIVERED:
            delivered.observe(max(0.0, now - delivery.event.time.timestamp()))


def _is_gone(error: DeliveryError | None) -> bool:
    return isinstance(error, FatalDeliveryError) and error.status == GONE


def _count(
    outcomes: Sequence[Outcome], errors: Sequence[DeliveryError | None], sink: str
) -> DrainReport:
    for outcome, error in zip(outcomes, errors, strict=True):
        if error is not None:
            log.warning(
                "delivery_failed",
                sink=sink,
                position=outcome.position,
                error=str(error),
                parked=outcome.status is DeliveryStatus.PARKED,
            )
    return DrainReport(
        delivered=sum(o.status is DeliveryStatus.DELIVERED for o in outcomes),
        retrying=sum(o.status is DeliveryStatus.PENDING for o in outcomes),
        parked=sum(o.status is DeliveryStatus.PARKED for o in outcomes),
    )


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, *, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    wake.clear()
