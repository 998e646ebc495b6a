"""Figure 6: ``--sources`` Shotgun sources polled every 5 s by one process.

A child process serves the simulators (one per ten sources, so no simulator scans a huge
index) and a verifying webhook ``Receiver``, and checks in ``--rate`` random tickets per
minute; it is somebody else's server, so its CPU is not ours. This process runs the real
service (``open_runtime`` + ``run_service``: a poll loop per source, the dispatcher, one
SQLite store) with ``poll_interval`` 5 s. After a warm-up that absorbs the baseline polls,
it measures over ``--seconds``: CPU time / wall time (cores used) and the event-loop lag,
the lateness of a 100 ms ticker (p50/p99).

Naive: in this process, the same sources polled every 5 s by a loop per source that reads
every page (no cursor), ``json.loads`` it and compares each whole record with the previous
poll's; measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Row, cpu_seconds, parse_args, percentile, print_table, quiet_logs
from bench.delivery import new_secret
from notifier.config.models import Config
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.observability import POLLS
from notifier.service import open_runtime, run_service

CADENCE = 5.0
PER_SIMULATOR = 10
TICK = 0.1
TARGET_CORES = 1.0
TARGET_LAG_MS = 50.0


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sources", type=int, default=1_000)
    parser.add_argument("--tickets", type=int, default=200, help="per source")
    parser.add_argument("--rate", type=float, default=1_000, help="scans per minute, overall")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=40)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)


# --------------------------------------------------------------------------- child process


async def _serve(sources: int, tickets: int, rate: float) -> None:
    sims: list[ShotgunSimulator] = []
    all_tickets: list[tuple[ShotgunSimulator, int]] = []
    for source in range(sources):
        if source % PER_SIMULATOR == 0:
            sims.append(ShotgunSimulator())
        sim = sims[-1]
        sim.add_organizer(source, f"token-{source}")
        event = sim.add_event(source)
        all_tickets += [(sim, sim.create_ticket(event)) for _ in range(tickets)]
    runners = [await serve(sim) for sim in sims]
    secret = new_secret()
    receiver = Receiver(secret)
    ports = [runner.addresses[0][1] for runner in runners]
    print(json.dumps({"ports": ports, "webhook": await receiver.start(), "secret": secret}))
    sys.stdout.flush()
    scanner = asyncio.create_task(_scan_forever(all_tickets, rate))
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    scanner.cancel()
    await receiver.stop()
    for runner in runners:
        await runner.cleanup()


async def _scan_forever(tickets: list[tuple[ShotgunSimulator, int]], rate: float) -> None:
    rng = random.Random(6)
    while True:
        await asyncio.sleep(60.0 / rate)
        sim, ticket = rng.choice(tickets)
        sim.scan(ticket)


class Simulators:
    """The child process and what it serves."""

    def __init__(self, sources: int, tickets: int, rate: float) -> None:
        command = [sys.executable, "-m", "bench.scale", "--serve", "--sources", str(sources)]
        command += ["--tickets", str(tickets), "--rate", str(rate)]
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.ports: list[int] = info["ports"]
        self.webhook: str = info["webhook"]
        self.secret: str = info["secret"]

    def url(self, source: int) -> str:
        return f"http://127.0.0.1:{self.ports[source // PER_SIMULATOR]}"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# --------------------------------------------------------------------------- measuring


class LagMeter:
    """Lateness of a ``TICK`` ticker: how long ready callbacks wait for the loop."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.recording = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            expected = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            if self.recording:
                self.lags.append(max(0.0, time.perf_counter() - expected))


async def _window(seconds: float, warmup: float, meter: LagMeter) -> float:
    """Cores used over ``seconds`` after ``warmup``."""
    await asyncio.sleep(warmup)
    meter.recording = True
    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    meter.recording = False
    return (cpu_seconds() - cpu) / (time.perf_counter() - wall)


def _polls_ok() -> float:
    return sum(
        sample.value
        for metric in POLLS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("outcome", "ok") == "ok"
    )


def _config(sims: Simulators, sources: int, state: Path) -> Config:
    organizers = [
        {
            "id": f"org{source}",
            "name": f"Organizer {source}",
            "sources": [
                {
                    "id": f"src{source}",
                    "provider": "shotgun",
                    "organizer_id": source,
                    "token": f"token-{source}",
                    "base_url": sims.url(source),
                    "allow_insecure_http": True,
                }
            ],
        }
        for source in range(sources)
    ]
    return Config.model_validate(
        {
            "state": {"path": str(state)},
            "defaults": {"poll_interval": f"{CADENCE:g}s"},
            "webhooks": [
                {
                    "name": "doors",
                    "url": sims.webhook,
                    "allow_insecure_http": True,
                    "secret": sims.secret,
                }
            ],
            "organizers": organizers,
        }
    )


async def ours(
    sims: Simulators, sources: int, seconds: float, warmup: float
) -> tuple[float, LagMeter, float]:
    stop, meter = asyncio.Event(), LagMeter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        runtime = await open_runtime(_config(sims, sources, Path(tmp) / "state.db"))
        service = asyncio.create_task(run_service(runtime, stop))
        ticker = asyncio.create_task(meter.run(stop))
        try:
            await asyncio.sleep(warmup)
            before = _polls_ok()
            cores = await _window(seconds, 0.0, meter)
            polls = _polls_ok() - before
        finally:
            stop.set()
            await asyncio.gather(service, ticker)
            await runtime.close()
    return cores, meter, polls / seconds


async def _naive_source(
    session: aiohttp.ClientSession, url: str, source: int, stop: asyncio.Event
) -> None:
    previous: dict[Any, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer token-{source}"}
    await asyncio.sleep(random.uniform(0, CADENCE))  # the service's start-up jitter
    while not stop.is_set():
        started = time.monotonic()
        next_url: str | None = url + "/tickets"
        query: dict[str, str] | None = {"organizer_id": str(source)}
        changes = []
        while next_url is not None:
            async with session.get(next_url, params=query, headers=headers) as response:
                page = json.loads(await response.read())
            for item in page["data"]:
                if previous.get(item["ticket_id"]) != item:
                    changes.append(item)
                previous[item["ticket_id"]] = item
            next_url, query = page["pagination"]["next"], None
        await asyncio.sleep(max(0.0, CADENCE - (time.monotonic() - started)))


async def naive(
    sims: Simulators, sources: int, seconds: float, warmup: float
) -> tuple[float, LagMeter]:
    stop, meter = asyncio.Event(), LagMeter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loops = [
            asyncio.create_task(_naive_source(session, sims.url(source), source, stop))
            for source in range(sources)
        ]
        ticker = asyncio.create_task(meter.run(stop))
        try:
            cores = await _window(seconds, warmup, meter)
        finally:
            stop.set()
            await asyncio.gather(*loops, ticker)
    return cores, meter


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    sources = 20 if args.smoke else args.sources
    tickets = 20 if args.smoke else args.tickets
    seconds, warmup = (1.5, 1.5) if args.smoke else (args.seconds, args.warmup)
    if args.serve:
        asyncio.run(_serve(sources, tickets, args.rate))
        return []
    sims = Simulators(sources, tickets, args.rate)
    try:
        cores, lag, polls = asyncio.run(ours(sims, sources, seconds, warmup))
        naive_cores, naive_lag = asyncio.run(naive(sims, sources, seconds, warmup))
    finally:
        sims.close()
    rows = [
        Row("CPU, cores used", cores, naive_cores, "cores", f"< {TARGET_CORES:g} core", cores < 1),
        Row(
            "event-loop lag p50",
            percentile(lag.lags, 0.5) * 1000,
            percentile(naive_lag.lags, 0.5) * 1000,
            "ms",
        ),
        Row(
            "event-loop lag p99",
            percentile(lag.lags, 0.99) * 1000,
            percentile(naive_lag.lags, 0.99) * 1000,
            "ms",
            f"< {TARGET_LAG_MS:g} ms",
            percentile(lag.lags, 0.99) * 1000 < TARGET_LAG_MS,
        ),
    ]
    notes = [
        f"{sources:,} sources x {tickets} tickets, cadence {CADENCE:g} s, {args.rate:g} scans/min,"
        f" measured {seconds:g} s after {warmup:g} s warm-up; ours completed {polls:.0f} polls/s "
        f"(expected {sources / CADENCE:.0f}/s)"
    ]
    print_table(f"Figure 6: {sources:,} sources in one process", rows, notes=notes)
    return rows


if __name__ == "__main__":
    main()
