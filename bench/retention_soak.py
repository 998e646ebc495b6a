"""Soak: the state file levels off under retention (docs/reliability.md, "Bounded resources").

    PYTHONPATH=. .venv/bin/python -m bench.retention_soak --events 1000000 --days 60

Drives the real ``SqliteStore`` through ``--days`` of simulated time (its clock is
injected; everything else is real: the transactions, the outbox, the delivery rows, the
file on disk). Every simulated hour one commit lands what a busy organizer produces
(tickets issued and checked in, each with its ticket state, events of ~600 bytes routed to
Kafka and one webhook), the dispatcher's path marks them delivered (0.1 % of webhook
deliveries are parked), and the retention pass runs as ``notifier run`` runs it; once a
day the tickets of the event that ended ``ended_events`` days ago are retired. Each day
the file size (database + WAL) and the row counts are printed; the first week, before
anything is old enough to delete, gives the growth rate without retention.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.common import parse_args, quiet_logs
from notifier.envelope import OutboxEvent, event_id
from notifier.model import Holder, SourceId, TicketId, TicketStatus
from notifier.state import TicketState
from notifier.store.base import DeliveryStatus, Outcome, Routed
from notifier.store.sqlite import SqliteStore

SOURCE = SourceId("soak")
DAY = 86_400.0
HOUR = 3_600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SINKS = ("kafka", "webhook:crm")


class SimClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _event(ticket: str, kind: str, sequence: int, day: int, rng: random.Random) -> OutboxEvent:
    moment = datetime.fromtimestamp(T0 + day * DAY, UTC)
    data = {
        "specversion": "1.0",
        "ticket_id": ticket,
        "sequence": sequence,
        "event_id": f"concert-{day}",
        "holder": {"first_name": "Guest", "last_name": ticket, "email": f"{ticket}@example.com"},
        "ticket_type": {"id": "ga", "name": "General Admission", "price": 3999},
        "before": {"status": "valid", "checked_in_at": None},
        "after": {"status": "valid", "checked_in_at": moment.isoformat()},
        "details": {"gate": rng.choice(["north", "south", "east"]), "scanner": "sc-" + ticket},
        "padding": "x" * 220,  # brings an event to the ~600 B of a real one
    }
    return OutboxEvent(
        id=event_id(SOURCE, ticket, kind, sequence),
        type=kind,
        ce_source="/shotgun/acme/soak",
        subject=ticket,
        time=moment,
        partition_key=f"shotgun:soak:{ticket}",
        organizer="acme",
        source_id=SOURCE,
        data=orjson.dumps(data),
    )


def _state(ticket: str, checked_in: bool, day: int) -> TicketState:
    when = datetime.fromtimestamp(T0 + day * DAY, UTC) if checked_in else None
    return TicketState(
        status=TicketStatus.VALID,
        checked_in_at=when,
        checked_out_at=None,
        holder=Holder("Guest", ticket, f"{ticket}@example.com", None),
        sequence=2 if checked_in else 1,
    )


async def _deliver(store: SqliteStore, now: float, rng: random.Random) -> None:
    """What the dispatcher records once the sinks acknowledged: delivered (some parked)."""
    for sink in SINKS:
        while batch := await store.due(sink, now=now, limit=4000):
            parked = sink != "kafka"
            await store.record(
                sink,
                [
                    Outcome(
                        d.position,
                        DeliveryStatus.PARKED
                        if parked and rng.random() < 0.001
                        else DeliveryStatus.DELIVERED,
                    )
                    for d in batch
                ],
            )


def _counts(path: Path) -> tuple[int, int, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return tuple(
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 -- constants
            for table in ("outbox", "deliveries", "tickets")
        )
    finally:
        db.close()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(str(path) + "-wal")) if p.exists())


async def soak(
    path: Path,
    *,
    events: int,
    days: int,
    delivered_days: float,
    parked_days: float,
    ended_days: int,
) -> list[tuple[int, int, int, int, int, int]]:
    clock = SimClock()
    rng = random.Random(7)
    store = await SqliteStore(path, clock=clock).open()
    per_hour = max(2, -(-events // (days * 24)))  # rounded up: at least ``events``
    committed = 0
    serial = 0
    rows: list[tuple[int, int, int, int, int, int]] = []
    try:
        for day in range(days):
            fresh: list[str] = []  # today's tickets not yet checked in
            for _hour in range(24):
                states: dict[TicketId, TicketState] = {}
                ticket_events: dict[TicketId, str] = {}
                batch: list[Routed] = []
                for _ in range(per_hour):
                    if fresh and rng.random() < 0.5:
                        ticket = fresh.pop(rng.randrange(len(fresh)))
                        event = _event(ticket, "ticket.checked_in", 2, day, rng)
                        states[TicketId(ticket)] = _state(ticket, True, day)
                    else:
                        serial += 1
                        ticket = f"t{serial}"
                        fresh.append(ticket)
                        event = _event(ticket, "ticket.issued", 1, day, rng)
                        states[TicketId(ticket)] = _state(ticket, False, day)
                    ticket_events[TicketId(ticket)] = f"concert-{day}"
                    batch.append(Routed(event=event, sinks=SINKS))
                await store.commit(
                    SOURCE,
                    tickets=states,
                    events=batch,
                    cursor=str(serial),
                    ticket_events=ticket_events,
                )
                committed += len(batch)
                clock.now += HOUR
                await _deliver(store, clock.now, rng)
                await store.prune_outbox(
                    delivered_before=clock.now - delivered_days * DAY,
                    parked_before=clock.now - parked_days * DAY,
                )
            if day >= ended_days:
                await store.retire_events(SOURCE, [f"concert-{day - ended_days}"])
            outbox, deliveries, tickets = _counts(path)
            rows.append((day + 1, committed, outbox, deliveries, tickets, _size(path)))
            print(
                f"day {day + 1:3}  events {committed:>9,}  outbox {outbox:>8,}  "
                f"deliveries {deliveries:>9,}  tickets {tickets:>8,}  "
                f"file {_size(path) / 1e6:8.1f} MB",
                flush=True,
            )
    finally:
        await store.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=60)
        parser.add_argument("--delivered-days", type=float, default=7)
        parser.add_argument("--parked-days", type=float, default=30)
        parser.add_argument("--ended-days", type=int, default=30)
        parser.add_argument("--state", type=Path, default=None, help="keep the file here")

    args = parse_args(argv, __doc__ or "", configure)
    if args.smoke:
        args.events, args.days, args.delivered_days, args.parked_days, args.ended_days = (
            20_000,
            10,
            2,
            4,
            3,
        )
    quiet_logs()
    directory = Path(tempfile.mkdtemp(prefix="notifier-soak-"))
    path = args.state or directory / "state.db"
    started = time.monotonic()
    rows = asyncio.run(
        soak(
            path,
            events=args.events,
            days=args.days,
            delivered_days=args.delivered_days,
            parked_days=args.parked_days,
            ended_days=args.ended_days,
        )
    )
    elapsed = time.monotonic() - started
    week = min(int(args.delivered_days), len(rows))
    per_event = rows[week - 1][5] / rows[week - 1][1]
    peak = max(row[5] for row in rows)
    last = rows[-1]
    print(
        f"\n{last[1]:,} events over {args.days} simulated days in {elapsed:.0f} s; "
        f"retention {args.delivered_days:g} d delivered / {args.parked_days:g} d parked / "
        f"{args.ended_days} d after an event ended\n"
        f"growth before retention starts: {per_event:,.0f} B per event "
        f"(without retention: {last[1] * per_event / 1e6:,.0f} MB by the end)\n"
        f"with retention: peak {peak / 1e6:,.1f} MB, final {last[5] / 1e6:,.1f} MB, "
        f"{last[2]:,} outbox rows and {last[4]:,} tickets kept"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
