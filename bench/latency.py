"""Figure 2: detection latency, from a scan in the simulator to the Kafka record and to the
webhook's 2xx, with the source polled every 2 s and ``--rate`` scans per minute.

Ours: the real service (``open_runtime`` + ``run_service``) polls a Shotgun simulator of
``--tickets`` tickets on 127.0.0.1 with ``poll_interval`` 2 s, delivers to the embedded
broker and to a verifying ``Receiver``; an aiokafka consumer reads the topic. Latency =
arrival time - time of the scan, for every scan of the run (each ticket scanned once).

Naive: a poller in this file that every 2 s reads every page (no cursor), ``json.loads``
them and compares each whole record with the previous poll's; latency = the moment it
notices the change - the scan. It does not even deliver: its figure is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import Row, parse_args, percentile, print_table, quiet_logs
from bench.delivery import new_secret
from notifier.config.models import Config
from notifier.dev.broker import EmbeddedBroker
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.service import open_runtime, run_service

INTERVAL = 2.0
TARGET_P99 = INTERVAL + 0.25
ORG = 173027
TOKEN = "bench-latency-token"  # noqa: S105 - the simulator's fake token
TOPIC = "bench.latency"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1_000, help="scans per minute")
    parser.add_argument("--seconds", type=float, default=60)


@dataclass
class Scans:
    """Scan times by ticket id, and the arrival times seen for each path."""

    at: dict[str, float] = field(default_factory=dict)
    arrivals: dict[str, dict[str, float]] = field(default_factory=dict)

    def arrived(self, path: str, ticket_id: str) -> None:
        self.arrivals.setdefault(path, {}).setdefault(ticket_id, time.time())

    def latencies(self, path: str) -> list[float]:
        seen = self.arrivals.get(path, {})
        return [seen[t] - self.at[t] for t in self.at if t in seen]

    def complete(self, paths: Sequence[str]) -> bool:
        return all(len(self.arrivals.get(path, {})) >= len(self.at) for path in paths)


def _config(state: Path, bootstrap: str, shotgun_url: str, webhook: str, secret: str) -> Config:
    source = {
        "id": "shotgun-main",
        "provider": "shotgun",
        "organizer_id": ORG,
        "token": TOKEN,
        "base_url": shotgun_url,
        "allow_insecure_http": True,
        "requests_per_minute": 100_000,
    }
    return Config.model_validate(
        {
            "state": {"path": str(state)},
            "defaults": {"poll_interval": f"{INTERVAL:g}s"},
            "kafka": {"bootstrap_servers": [bootstrap], "topic": TOPIC},
            "webhooks": [
                {"name": "doors", "url": webhook, "allow_insecure_http": True, "secret": secret}
            ],
            "organizers": [{"id": "bench", "name": "Bench", "sources": [source]}],
        }
    )


async def _scan(
    sim: ShotgunSimulator, ids: list[int], scans: Scans, *, rate: float, seconds: float
) -> None:
    """Scan one ticket every 60/rate s (on a fixed schedule, not drifting) for ``seconds``."""
    period = 60.0 / rate
    start = time.monotonic()
    for count, ticket in enumerate(ids[: int(seconds / period)]):
        await asyncio.sleep(max(0.0, start + count * period - time.monotonic()))
        sim.scan(ticket)
        scans.at[str(ticket)] = time.time()


async def _consume(bootstrap: str, scans: Scans, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            for records in batches.values():
                for record in records:
                    if record.key is not None:
                        scans.arrived("kafka", record.key.decode().rsplit(":", 1)[1])
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()


async def _await(condition: Any, within: float) -> None:
    """Re-check ``condition`` every 50 ms for up to ``within`` seconds (then carry on)."""
    for _ in range(round(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def ours(bootstrap: str, tickets: int, rate: float, seconds: float) -> Scans:
    sim, ids = _seeded(tickets)
    scans = Scans()
    secret = new_secret()
    receiver = Receiver(secret, on_event=lambda e: scans.arrived("webhook", str(e["subject"])))
    runner = await serve(sim)
    await _create_topic(bootstrap)
    url = "http://127.0.0.1:" + str(runner.addresses[0][1])
    stop, consumer_stop = asyncio.Event(), asyncio.Event()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        config = _config(Path(tmp) / "state.db", bootstrap, url, await receiver.start(), secret)
        runtime = await open_runtime(config)
        service = asyncio.create_task(run_service(runtime, stop))
        consumer = asyncio.create_task(_consume(bootstrap, scans, consumer_stop))
        try:
            await _await(lambda: sim.requests_served >= tickets // sim.page_size + 1, 30)
            await asyncio.sleep(INTERVAL)  # the baseline poll is committed
            await _scan(sim, ids, scans, rate=rate, seconds=seconds)
            await _await(lambda: scans.complete(["kafka", "webhook"]), 15)
        finally:
            stop.set()
            await service
            consumer_stop.set()
            await consumer
            await runtime.close()
            await receiver.stop()
            await runner.cleanup()
    return scans


def _seeded(tickets: int) -> tuple[ShotgunSimulator, list[int]]:
    sim = ShotgunSimulator()
    sim.add_organizer(ORG, TOKEN)
    event = sim.add_event(ORG)
    return sim, [sim.create_ticket(event) for _ in range(tickets)]


async def _naive_poller(url: str, scans: Scans, stop: asyncio.Event) -> None:
    previous: dict[Any, dict[str, Any]] = {}
    params = {"organizer_id": str(ORG)}
    headers = {"Authorization": "Bearer " + TOKEN}
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            started = time.monotonic()
            next_url: str | None = url + "/tickets"
            query: dict[str, str] | None = params
            while next_url is not None:
                async with session.get(next_url, params=query, headers=headers) as response:
                    page = json.loads(await response.read())
                for item in page["data"]:
                    before = previous.get(item["ticket_id"])
                    if before is not None and before != item:
                        scans.arrived("naive", str(item["ticket_id"]))
                    previous[item["ticket_id"]] = item
                next_url, query = page["pagination"]["next"], None
            await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))


async def naive(tickets: int, rate: float, seconds: float) -> Scans:
    sim, ids = _seeded(tickets)
    scans = Scans()
    runner = await serve(sim)
    stop = asyncio.Event()
    poller = asyncio.create_task(
        _naive_poller("http://127.0.0.1:" + str(runner.addresses[0][1]), scans, stop)
    )
    try:
        await _await(lambda: sim.requests_served >= tickets // sim.page_size + 1, 30)
        await _scan(sim, ids, scans, rate=rate, seconds=seconds)
        await _await(lambda: scans.complete(["naive"]), 30)
    finally:
        stop.set()
        await poller
        await runner.cleanup()
    return scans


def _row(path: str, scans: Scans, baseline: Scans, fraction: float) -> Row:
    mine = percentile(scans.latencies(path), fraction) * 1000
    theirs = percentile(baseline.latencies("naive"), fraction) * 1000
    name = f"p{round(fraction * 100)} scan -> {path}"
    if fraction < 0.99:
        return Row(name, mine, theirs, "ms")
    target = f"<= {TARGET_P99 * 1000:,.0f} ms"
    return Row(name, mine, theirs, "ms", target=target, met=mine <= TARGET_P99 * 1000)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    tickets = 500 if args.smoke else args.tickets
    seconds = 2.0 if args.smoke else args.seconds
    with EmbeddedBroker() as broker:
        measured = asyncio.run(ours(broker.bootstrap, tickets, args.rate, seconds))
    baseline = asyncio.run(naive(tickets, args.rate, seconds))
    rows = [
        _row(path, measured, baseline, fraction)
        for path in ("kafka", "webhook")
        for fraction in (0.5, 0.95, 0.99)
    ]
    notes = [
        f"{len(measured.at):,} scans at {args.rate:g}/min over {seconds:g} s, "
        f"{tickets:,} tickets, poll interval {INTERVAL:g} s; arrived: kafka "
        f"{len(measured.latencies('kafka')):,}, webhook {len(measured.latencies('webhook')):,}, "
        f"naive detected {len(baseline.latencies('naive')):,}",
        "naive = detection only (no delivery), full scan every poll",
    ]
    print_table("Figure 2: detection latency", rows, notes=notes)
    return rows


if __name__ == "__main__":
    main()
