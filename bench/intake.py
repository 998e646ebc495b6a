"""Figure 3: intake + diff throughput, provider JSON bytes -> records -> diff -> events.

Ours: the real ``SourcePoller`` over a SQLite store, fed by a provider that replays page
bodies the way the Shotgun adapter reads them (20 pages a poll): ``shotgun.wire_page``
(msgspec decodes each ticket's id, tracked fields and event times: no records) -> skip
every ticket whose digest is the remembered one -> parse the changed (their JSON decoded
now) -> read back their stored states ->
``diff_tickets`` -> PII policy -> ``to_outbox_event`` (the CloudEvents envelope, data
serialized). The poller commits a first sweep (untimed), then the second sweep is timed as
a dry run: its commit is not part of the figure. Naive: ``json.loads`` and a comparison of
each whole record dict with the previous poll's dict for that ticket, emitting a
before/after dict per difference.

Both start from the state the first poll left (built untimed) and then time the second
poll of every ticket, ``--changed`` percent of them scanned in between. The CPU figure is
the whole process's (the store's thread included). Page bodies are generated before the
clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import Row, parse_args, print_table, quiet_logs, timed
from bench.workload import pages
from notifier.diff import DiffContext, diff_tickets
from notifier.model import SourceId, TicketId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.base import PollResult, WireTickets
from notifier.providers.shotgun import parse_page, ticket_parser, wire_page
from notifier.state import TicketState
from notifier.store.sqlite import SqliteStore

SOURCE = SourceId("bench")
TARGET_RATE = 200_000
TARGET_RATIO = 5.0
PAGES_PER_POLL = 20  # the Shotgun adapter's page cap per poll


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=1.0, help="percent changed")


class ReplayedPages:
    """A Provider that serves recorded Shotgun pages, 20 pages a poll like the adapter:
    unparsed (``wire_page``), as the adapter hands them to the poller."""

    def __init__(self) -> None:
        self._bodies: Sequence[bytes] = ()
        self._next = 0
        self._parse = ticket_parser(SOURCE)

    def serve(self, bodies: Sequence[bytes]) -> None:
        """The pages of the next sweep."""
        self._bodies, self._next = bodies, 0

    @property
    def name(self) -> str:
        return "shotgun"

    async def poll(self, cursor: str | None) -> PollResult:
        chunk = self._bodies[self._next : self._next + PAGES_PER_POLL]
        self._next += len(chunk)
        read = [wire_page(body) for body in chunk]
        tickets = WireTickets(
            [ticket for page in read for ticket in page.ids],
            [digest for page in read for digest in page.digests],
            [item for page in read for item in page.items],
            self._parse,
        )
        more = self._next < len(self._bodies)
        return PollResult(tickets=tickets, cursor=str(self._next), requests=len(chunk), more=more)

    async def close(self) -> None:
        """Nothing to release."""


def baseline_states(bodies: Sequence[bytes]) -> dict[TicketId, TicketState]:
    """The states a first poll of these pages leaves (what the store holds before poll 2)."""
    context = DiffContext(
        provider="shotgun", organizer="bench", source=SOURCE, detected_at=datetime.now(UTC)
    )
    states: dict[TicketId, TicketState] = {}
    for body in bodies:
        records, _ = parse_page(orjson.loads(body), source=SOURCE)
        states.update(diff_tickets({}, records, context=context, emit_new=False).states)
    return states


async def _sweep(poller: SourcePoller, *, dry_run: bool) -> int:
    emitted, more = 0, True
    while more:
        report = await poller.poll_once(dry_run=dry_run, full=True)
        emitted += len(report.events)
        more = report.more
    return emitted


async def ours_poll(path: Path, first: Sequence[bytes], second: Sequence[bytes]) -> Timing:
    """A running poller's sweep of ``second`` after it committed ``first`` (untimed)."""
    store = await SqliteStore(path).open()
    pages_read = ReplayedPages()
    poller = SourcePoller(
        SourceSettings(organizer="bench", source=SOURCE, provider="shotgun"),
        provider=pages_read,
        store=store,
        route=lambda _: ("kafka",),
        clock=lambda: datetime.now(UTC),
    )
    try:
        pages_read.serve(first)
        await _sweep(poller, dry_run=False)
        pages_read.serve(second)
        gc.collect()
        with timed() as clock:
            emitted = await _sweep(poller, dry_run=True)  # the commit is not part of the figure
    finally:
        await store.close()
    return Timing(emitted, clock.cpu, clock.seconds)


@dataclass(frozen=True, slots=True)
class Timing:
    events: int
    cpu: float
    wall: float


def naive_poll(bodies: Sequence[bytes], previous: dict[Any, dict[str, Any]]) -> int:
    """Full-record comparison: every ticket dict against last poll's dict for that id."""
    events: list[dict[str, Any]] = []
    for body in bodies:
        for item in json.loads(body)["data"]:
            ticket_id = item["ticket_id"]
            before = previous.get(ticket_id)
            if before != item:
                events.append({"ticket_id": ticket_id, "before": before, "after": item})
                previous[ticket_id] = item
    return len(events)


@dataclass(frozen=True, slots=True)
class Rates:
    """Records per CPU second (the per-core figure) and per wall second, and events."""

    ours_cpu: float
    ours_wall: float
    naive_cpu: float
    naive_wall: float
    loads_cpu: float
    ours_events: int
    naive_changes: int


def measure(tickets: int, changed_percent: float) -> Rates:
    """One steady poll of every ticket, ours then naive, from the state the first left."""
    every = round(100 / changed_percent) if changed_percent > 0 else 0
    second = list(pages(tickets, changed_every=every))
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        ours = asyncio.run(ours_poll(Path(tmp) / "state.db", list(pages(tickets)), second))
    previous: dict[Any, dict[str, Any]] = {}
    naive_poll(list(pages(tickets)), previous)
    gc.collect()
    with timed() as naive:
        naive_changes = naive_poll(second, previous)
    del previous
    with timed() as loads:
        for body in second:
            orjson.loads(body)
    return Rates(
        ours_cpu=tickets / ours.cpu,
        ours_wall=tickets / ours.wall,
        naive_cpu=tickets / naive.cpu,
        naive_wall=tickets / naive.seconds,
        loads_cpu=tickets / loads.cpu,
        ours_events=ours.events,
        naive_changes=naive_changes,
    )


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    tickets = 5_000 if args.smoke else args.tickets
    rates = measure(tickets, args.changed)
    ratio = rates.ours_cpu / rates.naive_cpu
    rows = [
        Row(
            f"intake+diff per CPU second, {tickets:,} tickets, {args.changed:g}% changed",
            rates.ours_cpu,
            rates.naive_cpu,
            "records/s",
            target=f">= {TARGET_RATE:,}/s and >= {TARGET_RATIO:g}x naive",
            met=rates.ours_cpu >= TARGET_RATE and ratio >= TARGET_RATIO,
        ),
        Row(
            "the same per wall second (shared machine)",
            rates.ours_wall,
            rates.naive_wall,
            "records/s",
        ),
        Row("reference: orjson.loads alone per CPU second", rates.loads_cpu, None, "records/s"),
    ]
    notes = [
        f"events emitted: ours {rates.ours_events:,}, naive {rates.naive_changes:,} changed records"
    ]
    print_table("Figure 3: intake + diff throughput (one core)", rows, notes=notes)
    return rows


if __name__ == "__main__":
    main()
