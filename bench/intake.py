"""Figure 3: intake + diff throughput, provider JSON bytes -> records -> diff -> events.

Ours: ``orjson.loads`` -> ``shotgun.parse_page`` -> ``diff_tickets`` against the in-memory
state -> ``to_outbox_event`` (the CloudEvents envelope, data serialized), page by page, as
the poller does. Naive: ``json.loads`` and a comparison of each whole record dict with the
previous poll's dict for that ticket, emitting a before/after dict per difference.

Both start from the state the first poll left (built untimed) and then time the second
poll of every ticket, ``--changed`` percent of them scanned in between. One thread: the
figure is per core. Page bodies are generated before the clock starts.
"""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import Row, parse_args, print_table, quiet_logs, timed
from bench.workload import pages
from notifier.diff import DiffContext, TicketState, diff_tickets
from notifier.envelope import to_outbox_event
from notifier.model import SourceId, TicketId
from notifier.providers.shotgun import parse_page

SOURCE = SourceId("bench")
TARGET_RATE = 200_000
TARGET_RATIO = 5.0


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=1.0, help="percent changed")


def _context() -> DiffContext:
    return DiffContext(
        provider="shotgun", organizer="bench", source=SOURCE, detected_at=datetime.now(UTC)
    )


def ours_poll(bodies: Sequence[bytes], state: dict[TicketId, TicketState]) -> int:
    """One poll of every page the way the poller does it; returns the number of events."""
    context = _context()
    emitted = 0
    for body in bodies:
        records, _ = parse_page(orjson.loads(body), source=SOURCE)
        change = diff_tickets(state, records, context=context)
        emitted += len([to_outbox_event(event) for event in change.events])
        state.update(change.states)
    return emitted


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
    state: dict[TicketId, TicketState] = {}
    ours_poll(list(pages(tickets)), state)
    gc.collect()
    with timed() as ours:
        ours_events = ours_poll(second, state)
    del state
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
        ours_wall=tickets / ours.seconds,
        naive_cpu=tickets / naive.cpu,
        naive_wall=tickets / naive.seconds,
        loads_cpu=tickets / loads.cpu,
        ours_events=ours_events,
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
