"""Scenario 2, broker outage: the Kafka broker is stopped while ``notifier run`` polls live
and a driver changes tickets; events queue in the outbox (its depth read from ``/metrics``),
polling and webhooks carry on, and after the broker is back on the same port (empty: Tansu
keeps nothing across a restart, so the topic is recreated) the outbox drains to it.

Shared by the CI test (``test_broker_outage.py``, 10 s) and the soak (``soak.py``, 60 s).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from confluent_kafka import KafkaException

from notifier.dev.broker import EmbeddedBroker
from tests.integration.pipeline import create_topic
from tests.reliability.ground_truth import CheckReport, check, from_webhook, read_kafka
from tests.reliability.harness import (
    PARTITIONS,
    SOURCE,
    Driver,
    Service,
    Stack,
    assert_no_secrets,
    has_baseline,
    log_texts,
    outstanding,
    start_stack,
    until,
    webhook_has_all,
)

SAMPLE_EVERY = 0.5


@dataclass
class OutageFigures:
    outage: float
    ops: int = 0
    max_pending_metric: float = 0.0
    max_pending_store: int = 0
    polls_during_outage: float = 0.0
    webhook_events_during_outage: int = 0
    drain_seconds: float = 0.0
    reports: list[CheckReport] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"broker down {self.outage:.0f} s; {self.ops} driver changes; "
            f"{self.polls_during_outage:.0f} successful polls while it was down; "
            f"{self.webhook_events_during_outage} webhook deliveries while it was down",
            f"max outbox depth: notifier_outbox_pending {self.max_pending_metric:.0f} "
            f"(store: {self.max_pending_store} pending deliveries); "
            f"drained {self.drain_seconds:.1f} s after the broker was back",
            *(report.line() for report in self.reports),
        ]


async def broker_outage(tmp_path: Path, *, outage: float, seed: int) -> OutageFigures:
    """Run the scenario and check it; raises AssertionError on any loss or a stalled poll."""
    broker = EmbeddedBroker()
    broker.start()  # on the loop's thread, as EmbeddedBroker asks
    topic = "outage"
    try:
        create_topic(broker.bootstrap, topic)
        stack = await start_stack(tmp_path, bootstrap=broker.bootstrap, topic=topic)
        try:
            return await _scenario(stack, broker, outage, random.Random(seed))
        finally:
            await stack.close()
    finally:
        broker.close()


async def _scenario(
    stack: Stack, broker: EmbeddedBroker, outage: float, rng: random.Random
) -> OutageFigures:
    figures = OutageFigures(outage=outage)
    service = Service(stack)
    await service.start()
    try:
        await service.started()
        await until(lambda: asyncio.to_thread(has_baseline, stack.state), within=30)
        driver = Driver(stack.sim, stack.tickets, rng=rng)
        # Changes start with the outage: the broker forgets what it held before it stopped.
        broker.stop()
        polls_before = await polls_ok(stack.port)
        webhook_before = len(stack.receivers["doors"].events)
        stop = asyncio.Event()
        changes = asyncio.create_task(driver.run(stop, every=0.1))
        down_until = time.monotonic() + outage
        while time.monotonic() < down_until:
            await _sample(stack, figures)
            await asyncio.sleep(SAMPLE_EVERY)
        await _sample(stack, figures)
        figures.polls_during_outage = await polls_ok(stack.port) - polls_before
        figures.webhook_events_during_outage = len(stack.receivers["doors"].events) - webhook_before
        broker.start(broker.port)
        back = time.monotonic()
        _recreate(broker.bootstrap, stack.topic)
        await asyncio.sleep(1.0)  # a little more live traffic once it is back
        stop.set()
        await changes
        figures.ops = driver.ops

        async def drained() -> bool:
            return await asyncio.to_thread(outstanding, stack.state) == 0 and webhook_has_all(
                stack.receivers["doors"], driver.truth, None
            )

        await until(drained, within=max(90.0, outage * 2), step=0.2)
        figures.drain_seconds = time.monotonic() - back
    finally:
        code = await service.terminate()
    assert code == 0, service.tail()
    assert figures.max_pending_metric > 0, "the outbox depth never showed in /metrics"
    assert figures.polls_during_outage > 0, "polling stopped while the broker was down"
    assert figures.webhook_events_during_outage > 0, "the webhook waited for Kafka"
    kafka = read_kafka(stack.bootstrap, stack.topic, partitions=PARTITIONS)
    figures.reports = [
        check(driver.truth, kafka, channel="kafka", ordered_arrival=True),
        check(
            driver.truth,
            from_webhook(stack.receivers["doors"].events),
            channel="webhook:doors",
            ordered_arrival=False,
        ),
    ]
    assert_no_secrets(log_texts(stack.logs), stack.secrets)
    return figures


async def _sample(stack: Stack, figures: OutageFigures) -> None:
    pending = await metric_value(stack.port, "notifier_outbox_pending")
    figures.max_pending_metric = max(figures.max_pending_metric, pending or 0.0)
    figures.max_pending_store = max(
        figures.max_pending_store, await asyncio.to_thread(outstanding, stack.state)
    )


def _recreate(bootstrap: str, topic: str) -> None:
    """The restarted broker is empty; the producer may have auto-created the topic first."""
    try:
        create_topic(bootstrap, topic)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise


async def _metrics_text(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=2)
        ) as response,
    ):
        return await response.text()


async def metric_value(port: int, name: str, **labels: str) -> float | None:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    text = await _metrics_text(port)
    total: float | None = None
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        if not (line.startswith(name + " ") or line.startswith(name + "{")):
            continue
        head, _, value = line.rpartition(" ")
        if all(label in head for label in wanted):
            total = (total or 0.0) + float(value)
    return total


async def polls_ok(port: int) -> float:
    return await metric_value(port, "notifier_polls_total", source=SOURCE, outcome="ok") or 0.0
