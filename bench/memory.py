"""Figure 4: memory per tracked ticket, in the state store and in the process.

Ours: ``--tickets`` unique Shotgun tickets are parsed and diffed into states, committed
to the SQLite store, then a *fresh* process loads that source the way the poller does
after a restart (``SqliteStore.load(..., as_fingerprints=True)``: the poller keeps one
digest per ticket, ``dict[TicketId, int]``, and reads full states back only for tickets
that changed); its RSS growth per ticket is the figure. SQLite's page cache is bounded
by its default ``cache_size`` (about 2 MB) and is not subtracted. The store figure is the
database file size (after a checkpoint) per ticket.

Naive: the previous snapshot a full-scan poller keeps to compare whole records, i.e. the
``json.loads`` dict of every ticket in a dict by id (RSS growth per ticket in a fresh
process), and the same records stored as JSON text, one SQLite row per ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.common import Row, parse_args, print_table, quiet_logs, rss_bytes
from bench.intake import baseline_states
from bench.workload import pages
from notifier.model import SourceId, TicketId
from notifier.store.sqlite import SqliteStore

SOURCE = SourceId("bench")
TARGET_RSS = 150


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)


async def _write_store(path: Path, tickets: int) -> None:
    store = await SqliteStore(path).open()
    try:
        await store.commit(
            SOURCE, tickets=baseline_states(list(pages(tickets))), events=[], cursor=None
        )
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _write_naive_store(path: Path, tickets: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, record TEXT)")
        for body in pages(tickets):
            rows = [(item["ticket_id"], json.dumps(item)) for item in orjson.loads(body)["data"]]
            db.executemany("INSERT INTO tickets VALUES (?, ?)", rows)


def _child(kind: str, tickets: int, db: str | None) -> None:
    """Runs in a fresh interpreter: prints RSS growth (bytes) of holding the state."""
    gc.collect()
    before = rss_bytes()
    kept: Any
    if kind == "ours":
        assert db is not None
        store = SqliteStore(db)
        kept = asyncio.run(_load_snapshot(store))
    else:
        kept = {}
        for body in pages(tickets):
            for item in json.loads(body)["data"]:
                kept[item["ticket_id"]] = item
    gc.collect()
    print(rss_bytes() - before, len(kept))


async def _load_snapshot(store: SqliteStore) -> dict[TicketId, int]:
    await store.open()
    try:
        return (await store.load(SOURCE, as_fingerprints=True)).fingerprints
    finally:
        await store.close()


def _measure_child(kind: str, tickets: int, db: Path | None) -> float:
    command = [sys.executable, "-m", "bench.memory", "--child", kind, "--tickets", str(tickets)]
    if db is not None:
        command += ["--db", str(db)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    grown, count = result.stdout.split()
    if int(count) != tickets:
        raise RuntimeError(f"{kind}: loaded {count} tickets, expected {tickets}")
    return int(grown) / tickets


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    tickets = 2_000 if args.smoke else args.tickets
    if args.child is not None:
        _child(args.child, tickets, args.db)
        return []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        ours_db, naive_db = Path(tmp) / "state.db", Path(tmp) / "naive.db"
        asyncio.run(_write_store(ours_db, tickets))
        _write_naive_store(naive_db, tickets)
        ours_store = ours_db.stat().st_size / tickets
        naive_store = naive_db.stat().st_size / tickets
        ours_rss = _measure_child("ours", tickets, ours_db)
    naive_rss = _measure_child("naive", tickets, None)
    rows = [
        Row(
            f"process RSS per tracked ticket, {tickets:,} tickets",
            ours_rss,
            naive_rss,
            "B",
            target=f"<= {TARGET_RSS} B",
            met=ours_rss <= TARGET_RSS,
        ),
        Row(f"state store bytes per ticket, {tickets:,} tickets", ours_store, naive_store, "B"),
    ]
    print_table("Figure 4: memory per tracked ticket", rows)
    return rows


if __name__ == "__main__":
    main()
