"""Figure 5: delivery throughput with the outbox in the loop.

Webhooks: ``--webhook-events`` events are committed to the SQLite outbox, routed round
robin to 10 endpoints; ten verifying ``Receiver``s on 127.0.0.1 run in a child process
(a receiver is somebody else's server: it must not eat this process's CPU). The
``Dispatcher`` drains the outbox with one ``WebhookSink`` per endpoint (the default
concurrency of 8), recording every outcome in the outbox. Figure: deliveries/s.

Kafka: ``--kafka-events`` events drained by the ``Dispatcher`` through the ``KafkaSink``
(acks=all and the defaults: 256 KB record batches, outbox reads of 4,000 handed over in
slices of 2,000, one in flight) to the embedded broker (``notifier.dev.broker``).

Naive baseline, same process and outbox: one event at a time, each sent and awaited
(webhook: sign + POST; Kafka: ``send_and_wait``), then its outcome recorded in the
outbox before the next. It runs on fewer events (``--naive-events``): a rate is a rate.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from bench.common import Row, parse_args, print_table, quiet_logs, timed
from notifier.dev.broker import EmbeddedBroker
from notifier.dev.receiver import Receiver
from notifier.envelope import OutboxEvent
from notifier.model import SourceId
from notifier.sinks.base import Sink
from notifier.sinks.dispatcher import Dispatcher
from notifier.sinks.kafka import KafkaSink, record_headers
from notifier.sinks.retry import RetrySchedule
from notifier.sinks.webhook import WebhookSink, signed_headers, structured_body
from notifier.store.base import DeliveryStatus, Outcome, Routed
from notifier.store.sqlite import SqliteStore

ENDPOINTS = 10
TARGET_WEBHOOK = 2_000
TARGET_KAFKA = 20_000
TOPIC = "bench.delivery"
SOURCE = "bench"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--webhook-events", type=int, default=20_000)
    parser.add_argument("--kafka-events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument("--serve-receivers", metavar="SECRET", help=argparse.SUPPRESS)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def make_event(index: int) -> OutboxEvent:
    """A check-in event with a realistic ~700-byte JSON payload."""
    ticket = 90_000_000 + index
    now = datetime.now(UTC)
    data = {
        "type": "ticket.checked_in",
        "schema_version": 1,
        "provider": "shotgun",
        "organizer": "bench",
        "source": SOURCE,
        "event_id": "410000",
        "ticket_id": str(ticket),
        "order_id": str(51_000_000 + index),
        "sequence": 1,
        "detected_at": now.isoformat(),
        "occurred_at": now.isoformat(),
        "ticket_type": {"id": "12345678", "name": "Early Bird", "price_minor": 2999},
        "holder": {"first_name": "Camille", "last_name": "Martin", "email": f"c{index}@ex.com"},
        "before": {"status": "valid", "checked_in_at": None, "checked_out_at": None},
        "after": {"status": "valid", "checked_in_at": now.isoformat(), "checked_out_at": None},
        "details": {"ticket_scan_code": str(42_564_997_260_000 + ticket), "deal_channel": "web"},
    }
    return OutboxEvent(
        id=uuid.uuid4().hex,
        type="ticket.checked_in",
        ce_source=f"/shotgun/bench/{SOURCE}",
        subject=f"ticket/{ticket}",
        time=now,
        partition_key=f"shotgun:{SOURCE}:ticket/{ticket}",
        organizer="bench",
        source_id=SOURCE,
        data=orjson.dumps(data),
    )


async def fill_outbox(store: SqliteStore, count: int, sinks: Sequence[str]) -> None:
    """Commit ``count`` events, event ``i`` owed to ``sinks[i % len(sinks)]``."""
    for start in range(0, count, 5_000):
        routed = [
            Routed(event=make_event(i), sinks=(sinks[i % len(sinks)],))
            for i in range(start, min(count, start + 5_000))
        ]
        await store.commit(SourceId(SOURCE), tickets={}, events=routed, cursor=None)


async def drain_rate(store: SqliteStore, sinks: Sequence[Sink], count: int) -> float:
    """Deliveries/s of one ``Dispatcher.drain`` over ``count`` due deliveries."""
    schedules = {sink.name: RetrySchedule() for sink in sinks if sink.name != "kafka"}
    dispatcher = Dispatcher(store, sinks, schedules=schedules)
    with timed() as watch:
        report = await dispatcher.drain()
    if report.delivered != count:
        raise RuntimeError(f"delivered {report.delivered} of {count}: {report}")
    return count / watch.seconds


async def naive_webhooks(store: SqliteStore, urls: Sequence[str], secret: str) -> float:
    """One signed POST at a time, its outcome recorded before the next."""
    from standardwebhooks import Webhook

    signer = Webhook(secret)
    names = [f"naive:{i}" for i in range(len(urls))]
    due = [d for name in names for d in await store.due(name, now=9e18, limit=10**9)]
    async with aiohttp.ClientSession() as session:
        with timed() as watch:
            for delivery in due:
                body = structured_body(delivery.event)
                headers = signed_headers((signer,), delivery.event, body, at=datetime.now(UTC))
                url = urls[names.index(delivery.sink)]
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    response.raise_for_status()
                outcome = Outcome(position=delivery.position, status=DeliveryStatus.DELIVERED)
                await store.record(delivery.sink, [outcome])
    return len(due) / watch.seconds


async def naive_kafka(store: SqliteStore, bootstrap: str) -> float:
    """``send_and_wait`` per event (acks=all), its outcome recorded before the next."""
    due = await store.due("naive:kafka", now=9e18, limit=10**9)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        with timed() as watch:
            for delivery in due:
                event = delivery.event
                await producer.send_and_wait(
                    TOPIC,
                    value=event.data,
                    key=event.partition_key.encode(),
                    headers=record_headers(event),
                )
                outcome = Outcome(position=delivery.position, status=DeliveryStatus.DELIVERED)
                await store.record(delivery.sink, [outcome])
    finally:
        await producer.stop()
    return len(due) / watch.seconds


class ReceiverProcess:
    """Ten verifying receivers in a child process; their URLs are read from its stdout."""

    def __init__(self, secret: str) -> None:
        command = [sys.executable, "-m", "bench.delivery", "--serve-receivers", secret]
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.urls = self.process.stdout.readline().split()
        if len(self.urls) != ENDPOINTS:
            self.close()
            raise RuntimeError("the receiver process did not start")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # EOF tells the child to stop
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


async def serve_receivers(secret: str) -> None:
    receivers = [Receiver(secret) for _ in range(ENDPOINTS)]
    urls = [await receiver.start() for receiver in receivers]
    print(" ".join(urls), flush=True)
    await asyncio.to_thread(sys.stdin.read)
    for receiver in receivers:
        await receiver.stop()


async def webhook_figures(tmp: Path, events: int, naive_events: int) -> tuple[float, float]:
    secret = new_secret()
    receivers = ReceiverProcess(secret)
    store = await SqliteStore(tmp / "webhooks.db").open()
    try:
        names = [f"webhook:{i}" for i in range(ENDPOINTS)]
        sinks: list[Sink] = [
            WebhookSink(name, url, secret=secret)
            for name, url in zip(names, receivers.urls, strict=True)
        ]
        await fill_outbox(store, events, names)
        ours = await drain_rate(store, sinks, events)
        for sink in sinks:
            await sink.close()
        await fill_outbox(store, naive_events, [f"naive:{i}" for i in range(ENDPOINTS)])
        naive = await naive_webhooks(store, receivers.urls, secret)
    finally:
        await store.close()
        receivers.close()
    return ours, naive


async def kafka_figures(
    tmp: Path, bootstrap: str, events: int, naive_events: int
) -> tuple[float, float]:
    store = await SqliteStore(tmp / "kafka.db").open()
    sink = KafkaSink("kafka", bootstrap_servers=[bootstrap], topic_for=lambda _: TOPIC)
    try:
        await fill_outbox(store, events, ["kafka"])
        await sink.ping()  # producer started and topic metadata known before the clock
        ours = await drain_rate(store, [sink], events)
        await fill_outbox(store, naive_events, ["naive:kafka"])
        naive = await naive_kafka(store, bootstrap)
    finally:
        await sink.close()
        await store.close()
    return ours, naive


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    if args.serve_receivers:
        asyncio.run(serve_receivers(args.serve_receivers))
        return []
    scale = 0.02 if args.smoke else 1.0
    webhook_n, kafka_n = int(args.webhook_events * scale), int(args.kafka_events * scale)
    naive_n = max(100, int(args.naive_events * scale))
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp, EmbeddedBroker() as broker:
        web_ours, web_naive = asyncio.run(webhook_figures(Path(tmp), webhook_n, naive_n))
        kafka_ours, kafka_naive = asyncio.run(
            kafka_figures(Path(tmp), broker.bootstrap, kafka_n, naive_n)
        )
    rows = [
        Row(
            f"signed webhook deliveries/s, 10 receivers, {webhook_n:,} events",
            web_ours,
            web_naive,
            "/s",
            target=f">= {TARGET_WEBHOOK:,}/s",
            met=web_ours >= TARGET_WEBHOOK,
        ),
        Row(
            f"Kafka events/s, acks=all, {kafka_n:,} events",
            kafka_ours,
            kafka_naive,
            "/s",
            target=f">= {TARGET_KAFKA:,}/s",
            met=kafka_ours >= TARGET_KAFKA,
        ),
    ]
    notes = [f"naive baselines measured on {naive_n:,} events each"]
    print_table("Figure 5: delivery throughput (outbox in the loop)", rows, notes=notes)
    return rows


if __name__ == "__main__":
    main()
