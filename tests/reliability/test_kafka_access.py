"""Kafka is never parked: while the broker answers TOPIC_AUTHORIZATION_FAILED (the principal
lost WRITE on the topic), every delivery stays pending and is retried with back-off, the
refusals are counted (``notifier_kafka_access_errors_total``) and logged once per interval;
once the ACL is granted again everything drains. ``notifier deliveries`` lists the Kafka
sink's pending rows and ``notifier replay --endpoint kafka`` re-queues Kafka deliveries parked by an
older version."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY

from notifier.cli import main
from notifier.sinks.dispatcher import Dispatcher
from notifier.sinks.kafka import KafkaSink
from notifier.store.base import DeliveryStatus, Outcome, Routed
from notifier.store.sqlite import SqliteStore
from tests.integration.test_kafka_sink import create_topics, make_event
from tests.reliability.kafka_acl import AclBroker

EVENTS = 12


@pytest.fixture
async def acl_broker() -> AsyncIterator[AclBroker]:
    broker = AclBroker()
    await broker.start()
    yield broker
    await broker.stop()


def _refusals(sink: str) -> float:
    value = REGISTRY.get_sample_value(
        "notifier_kafka_access_errors_total",
        {"sink": sink, "error_type": "TopicAuthorizationFailedError"},
    )
    return value or 0.0


async def test_an_acl_refusal_is_retried_surfaced_and_never_parked(
    acl_broker: AclBroker, tmp_path: Path
) -> None:
    # In a thread: the proxy runs on this event loop and must answer the admin client.
    await asyncio.to_thread(create_topics, acl_broker.bootstrap, "acl-events", partitions=2)
    store = await SqliteStore(tmp_path / "state.db").open()
    events = [make_event(f"T{n}", sequence=1) for n in range(EVENTS)]
    await store.commit(
        "main-hall",  # type: ignore[arg-type]
        tickets={},
        events=[Routed(event=event, sinks=("kafka",)) for event in events],
        cursor="c1",
    )
    sink = KafkaSink(
        "kafka",
        bootstrap_servers=[acl_broker.bootstrap],
        topic_for=lambda _event: "acl-events",
        request_timeout=3.0,
        delivery_timeout=5.0,
    )
    now = [1_000_000.0]
    dispatcher = Dispatcher(store, [sink], schedules={}, clock=lambda: now[0])
    before = _refusals("kafka")
    acl_broker.denied = True
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(5):
                await dispatcher.drain()
                now[0] += 3600  # far past any back-off: every round retries
        rows = await store.deliveries(sink="kafka")
        assert [row.status for row in rows] == [DeliveryStatus.PENDING] * EVENTS
        assert all(row.attempts == 5 for row in rows)
        assert all("TopicAuthorizationFailedError" in (row.last_error or "") for row in rows)
        assert acl_broker.refused_responses >= 5
        assert _refusals("kafka") - before == 5 * EVENTS
        denied_lines = [line for line in logs if line["event"] == "sink_access_denied"]
        assert len(denied_lines) == 1  # throttled: one line per minute, with the count
        assert denied_lines[0]["refusals"] == EVENTS
        assert not [line for line in logs if line["event"] == "delivery_failed"]

        acl_broker.denied = False  # the operator grants WRITE again
        report = await dispatcher.drain()
        assert report.delivered == EVENTS
        assert await store.deliveries(sink="kafka", status=DeliveryStatus.PENDING) == []
        assert await store.deliveries(sink="kafka", status=DeliveryStatus.PARKED) == []
    finally:
        await sink.close()
        await store.close()


CONFIG = """\
state:
  path: {state}
kafka:
  bootstrap_servers: ["127.0.0.1:1"]
organizers:
  - id: acme
    name: Acme
    sources:
      - id: main-hall
        provider: shotgun
        organizer_id: 1
        token: t0ken-for-the-cli-test
        base_url: http://127.0.0.1:9
        allow_insecure_http: true
"""


async def test_deliveries_and_replay_cover_the_kafka_sink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Kafka delivery parked by an older version (which parked ACL refusals) is listed by
    ``deliveries --endpoint kafka`` and re-queued by ``replay --endpoint kafka``."""
    state = tmp_path / "state.db"
    config = tmp_path / "notifier.yaml"
    config.write_text(CONFIG.format(state=state))
    store = await SqliteStore(state).open()
    events = [make_event("T1", sequence=1), make_event("T2", sequence=1)]
    await store.commit(
        "main-hall",  # type: ignore[arg-type]
        tickets={},
        events=[Routed(event=event, sinks=("kafka",)) for event in events],
        cursor="c1",
    )
    [first, second] = await store.deliveries(sink="kafka")
    await store.record(
        "kafka",
        [
            Outcome(first.position, DeliveryStatus.PARKED, error="TopicAuthorizationFailedError"),
        ],
    )
    await store.close()

    assert await _cli(["deliveries", "-c", str(config), "--endpoint", "kafka"]) == 0
    listed = capsys.readouterr().out
    assert first.event.id in listed
    assert second.event.id in listed  # pending ones too
    assert await _cli(["deliveries", "-c", str(config), "--endpoint", "kafka", "--failed"]) == 0
    parked_only = capsys.readouterr().out
    assert first.event.id in parked_only
    assert second.event.id not in parked_only

    assert await _cli(["replay", "-c", str(config), "--endpoint", "kafka"]) == 0
    assert "re-queued 1 deliveries for kafka" in capsys.readouterr().out
    store = await SqliteStore(state).open()
    try:
        statuses = {d.event.id: d.status for d in await store.deliveries(sink="kafka")}
    finally:
        await store.close()
    assert statuses == {
        first.event.id: DeliveryStatus.PENDING,
        second.event.id: DeliveryStatus.PENDING,
    }
    json.dumps(statuses)  # plain data


async def _cli(argv: list[str]) -> int:
    """The CLI runs its own event loop: run it in a thread, as a user's shell would."""
    return await asyncio.to_thread(main, ["--no-log-json", *argv])
