"""Drains the outbox: one worker per sink, so a slow or dead sink never delays another.

A delivery is marked delivered only after its sink acknowledged it. A webhook failure
follows the endpoint's retry schedule and is parked when the schedule is spent; a Kafka
failure is retried with capped backoff and never parked, since a broker outage is the
operator's to fix and every event must reach the topic in order once it is back.

A ``Pipelined`` sink (Kafka) gets each batch read from the outbox in slices, the next slice
handed over while the previous one awaits its acks, so a broker round trip and the outbox
write of a slice's outcomes overlap with sending the next; outcomes are still recorded
slice by slice in outbox order, each only after its acks. The outbox is read between
batches only, once every slice is settled: it cannot be read past deliveries still in
flight except by reading them again, which cost more time than the overlap saved.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from notifier.errors import (
    AccessDeniedError,
    DeliveryError,
    FatalDeliveryError,
    RetriableDeliveryError,
)
from notifier.observability import DELIVERIES, DETECTION_LATENCY, KAFKA_ACCESS_ERRORS
from notifier.sinks.base import Acks, Paced, Pipelined, Sink
from notifier.sinks.failure_log import FailureLog
from notifier.sinks.retry import RetrySchedule, next_delay
from notifier.store.base import Delivery, DeliveryStatus, Outcome, SinkSwitches

log = structlog.get_logger(__name__)

# Each attempt against a dead broker already takes the sink's delivery timeout, so a short
# cap costs little while down and lets the outbox drain within seconds of the broker's return.
KAFKA_BACKOFF_CAP = 5.0
GONE = 410
# A paced sink (webhook) takes ``batch_limit()`` events at a time (its concurrency); reading
# this many slices per outbox query and recording them in one write cuts the store round trips
# that dominated webhook delivery, while each slice still waits for the previous one's answers.
PACED_SLICES_PER_READ = 8
# A sink refused access (ACL, SASL) logs at most once per this many seconds, with a count:
# the refusal repeats on every retry until an operator acts.
ACCESS_LOG_INTERVAL = 60.0


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
    if schedule is None or isinstance(error, AccessDeniedError):
        # Kafka, or any sink refusing access: capped back-off, never parked.
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


@dataclass(frozen=True, slots=True)
class _Submitted:
    batch: list[Delivery]
    acks: Acks


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
        batch_size: int = 4000,
        slice_size: int = 2000,
        # One slice in flight by default: a slice that fails while the next is already
        # sent would let that next one reach the topic before the failed one's retry, out
        # of per-key order (as Kafka's own max.in.flight > 1 without idempotence). Two
        # measured 5 % faster on loopback; more pays off on a slow network.
        pipeline_depth: int = 1,
        failure_log: FailureLog | None = None,
    ) -> None:
        self._outbox = outbox
        self._failures = failure_log or FailureLog()
        self._sinks = {sink.name: sink for sink in sinks}
        # Checked once: a runtime protocol check walks the class's attributes on every call.
        self._paced = {sink.name: sink for sink in sinks if isinstance(sink, Paced)}
        self._pipelined = {
            sink.name: sink
            for sink in sinks
            if isinstance(sink, Pipelined) and sink.name not in self._paced
        }
        self._schedules = schedules
        self._clock = clock
        self._rand = rand
        self._batch_size = batch_size
        self._slice_size = max(1, slice_size)
        self._depth = max(1, pipeline_depth)
        self._wake = {name: asyncio.Event() for name in self._sinks}
        # Per sink: when access refusals were last logged, and how many since.
        self._access_logged: dict[str, float] = {}
        self._access_unlogged: Counter[str] = Counter()

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
        if not workers:  # no sink configured: idle until stopped, so the service reads alive
            await stop.wait()
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
        paced = self._paced.get(sink.name)
        while True:
            if paced is not None and time.monotonic() < paced.not_before():
                return total  # the endpoint asked for a pause; its worker idles meanwhile
            limit = self._batch_size
            if paced is not None:
                limit = min(limit, paced.batch_limit() * PACED_SLICES_PER_READ)
            batch = await self._due(sink.name, limit)
            if not batch:
                return total
            report = await self._deliver_batch(sink, batch)
            total = _sum(total, report)
            if report.delivered == 0 or report.gone:
                return total  # nothing got through, or a 410 switched the endpoint off

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
        if (pipelined := self._pipelined.get(sink.name)) is not None:
            return await self._deliver_pipelined(pipelined, batch)
        if (paced := self._paced.get(sink.name)) is not None:
            return await self._deliver_paced(sink, paced, batch)
        errors = await sink.deliver([delivery.event for delivery in batch])
        return await self._settle(sink.name, batch, errors)

    async def _deliver_paced(self, sink: Sink, paced: Paced, batch: list[Delivery]) -> DrainReport:
        """Deliver ``batch`` ``batch_limit()`` events at a time, as the endpoint's pace allows.

        The outcomes of every attempt are recorded together at the end: one outbox write
        per read instead of one per handful of events. A slice that delivered nothing, a 410
        or a pause the endpoint asked for ends the attempts, as it ended the drain when each
        slice was read on its own; deliveries not attempted stay pending, untouched.
        """
        errors: list[DeliveryError | None] = []
        while len(errors) < len(batch):
            part = batch[len(errors) : len(errors) + paced.batch_limit()]
            answered = await sink.deliver([delivery.event for delivery in part])
            errors.extend(answered)
            if not _got_through(answered) or time.monotonic() < paced.not_before():
                break
        return await self._settle(sink.name, batch[: len(errors)], errors)

    async def _deliver_pipelined(self, sink: Pipelined, batch: list[Delivery]) -> DrainReport:
        """Deliver ``batch`` in slices, the next submitted while earlier ones await acks.

        Up to ``pipeline_depth`` slices are in flight; they are settled (outcomes recorded)
        oldest first, each once its acks are in, so the outbox records deliveries in order
        and only after the sink acknowledged them. A slice with a failure that will be
        retried, one that delivered nothing, or a 410 ends submissions, so no later slice
        overtakes a delivery waiting for its retry; slices already in flight are still
        settled with what became of them (their events had been sent, as the later events
        of one batch always were). If this is cancelled, no unsettled slice is recorded:
        those deliveries stay pending and are sent again, with the same ids.
        """
        slices = deque(_slices(batch, self._slice_size))
        window: deque[_Submitted] = deque()
        total = DrainReport()
        while slices or window:
            if slices and len(window) < self._depth:
                part = slices.popleft()
                acks = await sink.submit([delivery.event for delivery in part])
                window.append(_Submitted(part, acks))
                continue
            submitted = window.popleft()
            outcomes = await submitted.acks.outcomes()
            report = await self._settle(sink.name, submitted.batch, outcomes)
            total = _sum(total, report)
            if report.retrying or report.gone or not report.delivered:
                slices.clear()
        return total

    async def _settle(
        self, sink: str, batch: list[Delivery], errors: Sequence[DeliveryError | None]
    ) -> DrainReport:
        """Record what became of each delivery of ``batch``, once the sink has answered."""
        now = self._clock()
        schedule = self._schedules.get(sink)
        outcomes = [
            decide(delivery, error, schedule=schedule, now=now, rand=self._rand())
            for delivery, error in zip(batch, errors, strict=True)
        ]
        await self._outbox.record(sink, outcomes)
        gone = await self._disable_if_gone(sink, errors)
        statuses = Counter(outcome.status for outcome in outcomes)
        _observe(sink, batch, outcomes, statuses, now=now)
        failed = len(outcomes) - statuses[DeliveryStatus.DELIVERED]
        if failed:
            denied = [error for error in errors if isinstance(error, AccessDeniedError)]
            if denied:  # counted, and logged on a line of its own that says what to do
                self._surface_access(sink, denied)
            others = [
                error
                for error in errors
                if error is not None and not isinstance(error, AccessDeniedError)
            ]
            if others:
                self._failures.failed(
                    sink,
                    failed=len(others),
                    parked=statuses[DeliveryStatus.PARKED],
                    error=str(others[-1]),
                )
        elif outcomes:
            self._failures.succeeded(sink)
        return DrainReport(
            delivered=statuses[DeliveryStatus.DELIVERED],
            retrying=statuses[DeliveryStatus.PENDING],
            parked=statuses[DeliveryStatus.PARKED],
            gone=gone,
        )

    def _surface_access(self, sink: str, denied: Sequence[AccessDeniedError]) -> None:
        """Count every refusal; log one line per ``ACCESS_LOG_INTERVAL`` with the count."""
        for error_type, count in Counter(error.error_type for error in denied).items():
            KAFKA_ACCESS_ERRORS.labels(sink, error_type).inc(count)
        self._access_unlogged[sink] += len(denied)
        now = time.monotonic()
        last = self._access_logged.get(sink)
        if last is not None and now - last < ACCESS_LOG_INTERVAL:
            return
        self._access_logged[sink] = now
        log.error(
            "sink_access_denied",
            sink=sink,
            error=str(denied[-1]),
            error_type=denied[-1].error_type,
            refusals=self._access_unlogged.pop(sink),
            action="grant the ACL or fix the credentials; deliveries are retried, never parked",
        )

    async def _disable_if_gone(self, sink: str, errors: Sequence[DeliveryError | None]) -> bool:
        # Only 410 Gone switches a sink off; other fatal errors (a record too large for the
        # broker) park that one event and leave the sink serving the rest.
        fatal = next((e for e in errors if _is_gone(e)), None)
        if fatal is not None:
            await self._outbox.disable_sink(sink, str(fatal))
            log.error("sink_disabled", sink=sink, reason=str(fatal))
        return fatal is not None


def _observe(
    sink: str,
    batch: Sequence[Delivery],
    outcomes: Sequence[Outcome],
    statuses: Counter[DeliveryStatus],
    *,
    now: float,
) -> None:
    for status, count in statuses.items():
        DELIVERIES.labels(sink, status.value).inc(count)  # once per status, not per event
    observe = DETECTION_LATENCY.labels("delivered", sink).observe
    for delivery, outcome in zip(batch, outcomes, strict=True):
        if outcome.status is DeliveryStatus.DELIVERED:
            observe(max(0.0, now - delivery.event.time.timestamp()))


def _slices(batch: list[Delivery], size: int) -> list[list[Delivery]]:
    return [batch[start : start + size] for start in range(0, len(batch), size)]


def _sum(total: DrainReport, report: DrainReport) -> DrainReport:
    return DrainReport(
        delivered=total.delivered + report.delivered,
        retrying=total.retrying + report.retrying,
        parked=total.parked + report.parked,
        gone=total.gone or report.gone,
    )


def _got_through(errors: Sequence[DeliveryError | None]) -> bool:
    """Something was delivered and nothing answered 410 Gone."""
    return any(error is None for error in errors) and not any(_is_gone(e) for e in errors)


def _is_gone(error: DeliveryError | None) -> bool:
    return isinstance(error, FatalDeliveryError) and error.status == GONE


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, *, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    wake.clear()
