"""Scenario 3, webhook endpoint outage and misbehaviour, on a compressed retry schedule:
one endpoint down long enough to park everything, one too slow (timeouts), one answering
500s, one 429 with Retry-After, one 410 Gone; a healthy one is unaffected; parked
deliveries replayed with the CLI arrive with the ids Kafka has."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from notifier.cli import main
from notifier.config import load_config
from notifier.dev.broker import EmbeddedBroker
from notifier.dev.receiver import Scripted
from notifier.service import open_runtime, run_service
from tests.integration.pipeline import create_topic
from tests.reliability.ground_truth import check, from_webhook, read_kafka
from tests.reliability.harness import (
    PARTITIONS,
    Driver,
    EndpointSpec,
    Stack,
    assert_no_secrets,
    has_baseline,
    parked,
    start_stack,
    until,
    webhook_has_all,
)

FAST = ("0s", "100ms", "200ms")
ENDPOINTS = (
    EndpointSpec("healthy", schedule=FAST),
    EndpointSpec("down", schedule=FAST),
    EndpointSpec("slow", timeout="300ms", schedule=("0s", "100ms", "100ms", "100ms", "100ms")),
    EndpointSpec("errors", schedule=("0s", "100ms", "100ms", "100ms", "100ms", "100ms")),
    EndpointSpec("limited", schedule=FAST),
    EndpointSpec("gone", schedule=FAST),
)
CHANGES = 40


@pytest.fixture
async def stack(
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    topic = unique_topic("webhooks")
    create_topic(kafka_broker.bootstrap, topic)
    built = await start_stack(
        tmp_path, bootstrap=kafka_broker.bootstrap, topic=topic, endpoints=ENDPOINTS
    )
    for name, value in built.env.items():
        monkeypatch.setenv(name, value)
    yield built
    await built.close()


def _sink_parked(state: Path, sink: str) -> int:
    import sqlite3

    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        return int(
            db.execute(
                "SELECT count(*) FROM deliveries WHERE sink = ? AND status = 'parked'", (sink,)
            ).fetchone()[0]
        )
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_misbehaving_endpoints_lose_nothing_and_never_hold_up_the_others(
    stack: Stack, capfd: pytest.CaptureFixture[str]
) -> None:
    """Down/slow/500/429/410 endpoints: the healthy one gets everything at once; after a
    CLI replay every endpoint has every event, with the same ids as on Kafka."""
    r = stack.receivers
    # down for a long stretch: 500 to every attempt (a 503 would also slow it down)
    r["down"].responses.extend(Scripted(500) for _ in range(1000))
    r["slow"].responses.extend(Scripted(200, delay=1.0) for _ in range(6))
    r["errors"].responses.extend(Scripted(500) for _ in range(8))
    r["limited"].responses.extend(Scripted(429, retry_after="1") for _ in range(2))
    r["gone"].responses.append(Scripted(410))
    config = load_config(stack.config, os.environ)
    runtime = await open_runtime(config)
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(runtime, stop))
    try:
        await until(lambda: asyncio.to_thread(has_baseline, stack.state), within=20)
        driver = Driver(stack.sim, stack.tickets, rng=random.Random(3))
        for _ in range(CHANGES):
            driver.step()
        changed = time.monotonic()
        await until(lambda: _has_all(stack, driver, "healthy"), within=20, step=0.05)
        healthy_seconds = time.monotonic() - changed
        # everything for "down" is parked after its three attempts; "gone" is disabled
        expected = driver.truth.transitions

        async def all_parked() -> bool:
            return await asyncio.to_thread(_sink_parked, stack.state, "webhook:down") == expected

        await until(all_parked, within=30)
        for name in ("slow", "errors", "limited"):
            await until(functools.partial(_has_all, stack, driver, name), within=40)
        assert await asyncio.to_thread(_sink_parked, stack.state, "webhook:gone") >= 1
        # only requests already in flight beside the 410 (concurrency 8) were accepted
        assert len(r["gone"].events) < 8
        # the operator fixes "down", replays it, and re-enables "gone"
        r["down"].responses.clear()
        config_path = str(stack.config)
        assert (
            await asyncio.to_thread(main, ["replay", "-c", config_path, "--endpoint", "down"]) == 0
        )
        assert (
            await asyncio.to_thread(
                main, ["replay", "-c", config_path, "--endpoint", "gone", "--enable"]
            )
            == 0
        )
        runtime.dispatcher.notify()
        for name in ("down", "gone"):
            await until(functools.partial(_has_all, stack, driver, name), within=30)
        assert await asyncio.to_thread(parked, stack.state) == 0
    finally:
        stop.set()
        await service
        await runtime.close()
    assert healthy_seconds < 5, f"the healthy endpoint waited {healthy_seconds:.1f} s"
    kafka = read_kafka(stack.bootstrap, stack.topic, partitions=PARTITIONS)
    check(driver.truth, kafka, channel="kafka", ordered_arrival=True)
    kafka_ids = {(e.subject, e.type): e.id for e in kafka}
    for name, receiver in r.items():
        report = check(
            driver.truth, from_webhook(receiver.events), channel=name, ordered_arrival=False
        )
        print(report.line())
        for event in receiver.events:
            assert kafka_ids[(str(event["subject"]), str(event["type"]))] == event["id"]
    # the slow endpoint really timed out, the limited one really got 429s
    # (a timed-out request still completes at the endpoint: a duplicate with the same id)
    assert len(r["slow"].events) > len({event["id"] for event in r["slow"].events})
    assert any(req.status == 429 for req in r["limited"].requests)
    captured = capfd.readouterr()
    assert_no_secrets([("output", captured.out + captured.err)], stack.secrets)


async def _has_all(stack: Stack, driver: Driver, name: str) -> bool:
    return webhook_has_all(stack.receivers[name], driver.truth, None)
