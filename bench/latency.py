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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import latency_push, latency_push_rows
from bench.arrivals import Scans, consume, create_topic, make_changes, wait_until
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
NUWEB_BUDGET = 60  # requests a minute per company (docs/providers.md)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1_000, help="scans per minute")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rows", choices=("all", "polled", "push"), default="all")
    parser.add_argument(
        "--tt-tickets", type=int, default=2_000, help="Ticket Tailor push rows: box office size"
    )
    parser.add_argument(
        "--tt-rate",
        type=float,
        default=12,
        help="Ticket Tailor push rows: voids per minute (its budget: see latency_push)",
    )


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


async def ours(bootstrap: str, tickets: int, rate: float, seconds: float) -> Scans:
    sim, ids = _seeded(tickets)
    scans = Scans()
    secret = new_secret()
    receiver = Receiver(secret, on_event=lambda e: scans.arrived("webhook", str(e["subject"])))
    runner = await serve(sim)
    await create_topic(bootstrap, TOPIC)
    url = "http://127.0.0.1:" + str(runner.addresses[0][1])
    stop, consumer_stop = asyncio.Event(), asyncio.Event()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        config = _config(Path(tmp) / "state.db", bootstrap, url, await receiver.start(), secret)
        runtime = await open_runtime(config)
        service = asyncio.create_task(run_service(runtime, stop))
        consumer = asyncio.create_task(consume(bootstrap, TOPIC, scans, consumer_stop))
        try:
            await wait_until(lambda: sim.requests_served >= tickets // sim.page_size + 1, 30)
            await asyncio.sleep(INTERVAL)  # the baseline poll is committed
            await make_changes(_scanner(sim), ids, scans, rate=rate, seconds=seconds)
            await wait_until(lambda: scans.complete(["kafka", "webhook"]), 15)
        finally:
            stop.set()
            await service
            consumer_stop.set()
            await consumer
            await runtime.close()
            await receiver.stop()
            await runner.cleanup()
    return scans


def _seeded(tickets: int) -> tuple[ShotgunSimulator, list[str]]:
    sim = ShotgunSimulator()
    sim.add_organizer(ORG, TOKEN)
    event = sim.add_event(ORG)
    return sim, [str(sim.create_ticket(event)) for _ in range(tickets)]


def _scanner(sim: ShotgunSimulator) -> Callable[[str], None]:
    return lambda ticket: sim.scan(int(ticket))


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
        await wait_until(lambda: sim.requests_served >= tickets // sim.page_size + 1, 30)
        await make_changes(_scanner(sim), ids, scans, rate=rate, seconds=seconds)
        await wait_until(lambda: scans.complete(["naive"]), 30)
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
    rows: list[Row] = []
    notes: list[str] = []
    with EmbeddedBroker() as broker:
        if args.rows in ("all", "polled"):
            measured = asyncio.run(ours(broker.bootstrap, tickets, args.rate, seconds))
            baseline = asyncio.run(naive(tickets, args.rate, seconds))
            rows += [
                _row(path, measured, baseline, fraction)
                for path in ("kafka", "webhook")
                for fraction in (0.5, 0.95, 0.99)
            ]
            notes += [
                f"{len(measured.at):,} scans at {args.rate:g}/min over {seconds:g} s, "
                f"{tickets:,} tickets, poll interval {INTERVAL:g} s; arrived: kafka "
                f"{len(measured.latencies('kafka')):,}, webhook "
                f"{len(measured.latencies('webhook')):,}, "
                f"naive detected {len(baseline.latencies('naive')):,}",
                "naive = detection only (no delivery), full scan every poll",
            ]
        if args.rows in ("all", "push"):
            push_rows, push_notes = _push(broker.bootstrap, args, tickets, seconds)
            rows += push_rows
            notes += push_notes
    print_table("Figure 2: detection latency", rows, notes=notes)
    return rows


def _push(
    bootstrap: str, args: argparse.Namespace, tickets: int, seconds: float
) -> tuple[list[Row], list[str]]:
    """The push rows (``latency_push``): Nuweb scans, Ticket Tailor voids."""
    tt_tickets = 300 if args.smoke else args.tt_tickets
    tt_rate = 60.0 if args.smoke else args.tt_rate  # at least one void in a smoke run
    (nuweb, budgeted), tt = asyncio.run(
        latency_push.all_runs(
            bootstrap,
            (tickets, args.rate),
            (tt_tickets, tt_rate),
            seconds,
            budget=NUWEB_BUDGET,
            smoke=args.smoke,
        )
    )
    rows = [
        *latency_push_rows.comparison_rows(nuweb),
        *latency_push_rows.budget_rows(budgeted, NUWEB_BUDGET),
        *latency_push_rows.comparison_rows(tt),
    ]
    notes = [
        "push rows: the baseline column is the same run with push off (polled every "
        f"{INTERVAL:g} s either way; Ticket Tailor: its sweeps alone); measuring starts "
        "once the baseline's long reads are done",
        latency_push_rows.comparison_note(nuweb, tickets, args.rate),
        latency_push_rows.comparison_note(budgeted, len(budgeted.push.scans.at), args.rate),
        latency_push_rows.comparison_note(tt, tt_tickets, tt_rate),
        f"tickettailor: voids at {tt_rate:g}/min, within the documented budget (5,000 "
        "requests / 30 min): a pushed void costs about 4 requests (the two feeds a woken "
        "poll reads, the ticket, its order), and hinted reads draw on 25% of the budget",
    ]
    return rows, notes


if __name__ == "__main__":
    main()
