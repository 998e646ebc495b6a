"""A whole pipeline on loopback for end-to-end tests: Shotgun simulator, real broker,
verifying webhook receiver, the real service runtime, and an independent Kafka reader."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # stubs omit the re-export
    AdminClient,
    NewTopic,
)

from notifier.config.models import Config
from notifier.dev.broker import EmbeddedBroker
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.service import Runtime, open_runtime

ORGANIZER_ID = 173027
PARTITIONS = 4


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def pipeline_config(
    *,
    state: Path,
    bootstrap: str,
    topic: str,
    shotgun_url: str,
    token: str,
    webhook_url: str,
    secret: str,
    retry_schedule: tuple[str, ...] = ("0s", "0s", "0s"),
    defaults: dict[str, Any] | None = None,
) -> Config:
    return Config.model_validate(
        {
            "defaults": defaults or {},
            "state": {"path": str(state)},
            "kafka": {"bootstrap_servers": [bootstrap], "topic": topic},
            "webhooks": [
                {
                    "name": "doors",
                    "url": webhook_url,
                    "allow_insecure_http": True,
                    "secret": secret,
                    "retry_schedule": list(retry_schedule),
                    "timeout": "2s",
                }
            ],
            "organizers": [
                {
                    "id": "fabric",
                    "name": "Fabric",
                    "sources": [
                        {
                            "id": "shotgun-main",
                            "provider": "shotgun",
                            "organizer_id": ORGANIZER_ID,
                            "token": token,
                            "base_url": shotgun_url,
                            "allow_insecure_http": True,
                        }
                    ],
                }
            ],
        }
    )


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)])
    for future in futures.values():
        future.result(timeout=10)


def read_topic(
    bootstrap: str, topic: str, *, count: int, timeout: float = 15.0
) -> list[BaseCloudEvent]:
    """Read ``count`` records (or all there are by ``timeout``) with confluent-kafka, parsed
    by the cloudevents SDK's Kafka binding: a reader independent of the code that wrote them."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "pipeline-reader", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    events: list[BaseCloudEvent] = []
    deadline = time.monotonic() + timeout
    try:
        while len(events) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            raw = message.headers() or []
            pairs = raw.items() if isinstance(raw, dict) else raw
            headers = {name: value for name, value in pairs if isinstance(value, bytes)}
            events.append(
                from_binary_event(
                    KafkaMessage(headers=headers, key=message.key(), value=message.value() or b"")
                )
            )
    finally:
        consumer.close()
    return events


@dataclass
class Pipeline:
    """The parts of one end-to-end test; ``once()`` is one `notifier once` in-process."""

    sim: ShotgunSimulator
    receiver: Receiver
    config: Config
    bootstrap: str
    topic: str
    ticket_ids: list[int]
    runtime: Runtime | None = None
    exit_codes: list[int] = field(default_factory=list)

    async def open(self) -> Runtime:
        if self.runtime is None:
            self.runtime = await open_runtime(self.config)
        return self.runtime

    async def restart(self) -> Runtime:
        """Close and reopen everything from the state file, as a new process would."""
        await self.close()
        return await self.open()

    async def once(self) -> int:
        from notifier.service import run_once

        code = await run_once(await self.open())
        self.exit_codes.append(code)
        return code

    async def close(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    def kafka_events(self, count: int, timeout: float = 15.0) -> list[BaseCloudEvent]:
        return read_topic(self.bootstrap, self.topic, count=count, timeout=timeout)


async def until(
    condition: Callable[[], Awaitable[bool]], *, within: float = 20.0, step: float = 0.1
) -> None:
    """Re-check ``condition`` until it holds; TimeoutError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


def webhook_types(receiver: Receiver) -> list[str]:
    return [str(event["type"]) for event in receiver.events]


def data_of(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"]
    assert isinstance(data, dict)
    return data


async def running_pipeline(
    broker: EmbeddedBroker,
    topic: str,
    tmp_path: Path,
    *,
    sim: ShotgunSimulator,
    token: str,
    tickets: list[int],
    defaults: dict[str, Any] | None = None,
) -> AsyncIterator[Pipeline]:
    """Serve a prepared simulator, start a verifying receiver and the topic, and yield the
    pipeline configured against them; everything is stopped afterwards."""
    runner = await serve(sim)
    host, port = runner.addresses[0][:2]
    secret = new_secret()
    receiver = Receiver(secret)
    webhook_url = await receiver.start()
    create_topic(broker.bootstrap, topic)
    config = pipeline_config(
        state=tmp_path / "state.db",
        bootstrap=broker.bootstrap,
        topic=topic,
        shotgun_url=f"http://{host}:{port}",
        token=token,
        webhook_url=webhook_url,
        secret=secret,
        defaults=defaults,
    )
    pipeline = Pipeline(sim, receiver, config, broker.bootstrap, topic, tickets)
    try:
        yield pipeline
    finally:
        await pipeline.close()
        await receiver.stop()
        await runner.cleanup()
