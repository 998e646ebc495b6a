"""Figure 1: provider API requests per steady-state poll, per provider, on the simulators.

Each simulator is seeded with ``--tickets`` tickets (their update times spread over the
past days by a settable clock), served on 127.0.0.1, and read by the real adapter with
its default settings (lookback included) and no request budget. Polls run 5 s apart
on the simulators' clock, ``--changes`` check-ins spread over each interval; requests are counted by
the simulator, as the mean over 12 polls after 25 warm-up polls (which fill the default
2 min lookback windows of Eventpop and Nuweb with earlier changes, as in a real steady
state). Those two re-read their lookback window only on a deep read, once a minute of
their clock (the simulators'), and Nuweb reads inventory once a minute: the 12 measured
polls (one minute) hold exactly one of each.
The naive baseline is a full scan of every page: the same adapter with no cursor, which
pages through everything (what a poller without a cursor does every poll); its request
count is what such a poller pays every single poll.

Ticket Tailor has no updated-since filter: check-ins come from their own feed every poll,
and the adapter sweeps the issued tickets of its events as often as half of the key's
request budget allows, for voids, refunds and transfers. Its row is measured over twelve
minutes of polls so the sweeps' cost is amortised over every poll, and its full scan
counts events, issued tickets and orders, what a poller without a cursor must read to see
refunds (bench/tickettailor_setup.py). Its target is 1/20 of that full scan.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiohttp import web

from bench.common import Row, parse_args, print_table, quiet_logs
from notifier.dev.simulators import eventpop, nuweb, shotgun
from notifier.providers.base import Provider
from notifier.providers.eventpop import EventpopProvider
from notifier.providers.http import ProviderHttpClient
from notifier.providers.nuweb import NuwebProvider
from notifier.providers.shotgun import ShotgunProvider

TARGET = 1 / 100
# Polls 5 s apart on the simulators' clock; the warm-up fills the default 2 min lookback
# windows (Eventpop, Nuweb) with earlier changes, as in a real steady state, and the mean
# over a minute of polls includes one deep read (Eventpop, Nuweb) and Nuweb's
# once-a-minute inventory read: a shorter or unaligned span would over- or undercount them.
INTERVAL = timedelta(seconds=5)
WARMUP_POLLS = 25
MEASURED_POLLS = 12
TOKEN = "bench-token"  # noqa: S105 - the simulators' fake token
ORG = 4242
EVENT = 5


class Clock:
    """A settable clock: seeding spreads updates over the past, changes happen at ``now``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class Setup(Protocol):
    """One provider's simulator, seeded, and how to change tickets and read it."""

    name: str
    incremental: bool

    def seed(self, tickets: int, clock: Clock) -> None: ...

    def change(self, count: int) -> None: ...

    def app(self) -> web.Application: ...

    def adapter(self, base_url: str, http: ProviderHttpClient, clock: Clock) -> Provider: ...

    def served(self) -> int: ...


def _seeded(tickets: int, clock: Clock, create: Callable[[], int]) -> list[int]:
    ids = []
    for _ in range(tickets):
        clock.now += timedelta(seconds=1)
        ids.append(create())
    clock.now = datetime.now(UTC)
    return ids


class ShotgunSetup:
    name, incremental = "shotgun", True

    def seed(self, tickets: int, clock: Clock) -> None:
        self.sim = shotgun.ShotgunSimulator(clock=clock)
        self.sim.add_organizer(ORG, TOKEN)
        event = self.sim.add_event(ORG)
        self.ids = _seeded(tickets, clock, lambda: self.sim.create_ticket(event))
        self.next = 0

    def change(self, count: int) -> None:
        for ticket in self.ids[self.next : self.next + count]:
            self.sim.scan(ticket)
        self.next += count

    def app(self) -> web.Application:
        return shotgun.build_app(self.sim)

    def adapter(self, base_url: str, http: ProviderHttpClient, clock: Clock) -> Provider:
        return ShotgunProvider("bench", ORG, TOKEN, base_url=base_url, http=http)

    def served(self) -> int:
        return self.sim.requests_served


class EventpopSetup:
    name, incremental = "eventpop", True

    def seed(self, tickets: int, clock: Clock) -> None:
        self.sim = eventpop.EventpopSimulator(clock=clock, expires_in=10**9)
        self.sim.add_organizer(ORG, TOKEN)
        self.sim.add_event(ORG, EVENT)
        self.ids = _seeded(tickets, clock, lambda: self.sim.create_ticket(EVENT))
        self.next = 0

    def change(self, count: int) -> None:
        for ticket in self.ids[self.next : self.next + count]:
            self.sim.use(ticket)
        self.next += count

    def app(self) -> web.Application:
        return eventpop.build_app(self.sim)

    def adapter(self, base_url: str, http: ProviderHttpClient, clock: Clock) -> Provider:
        return EventpopProvider(
            "bench",
            ORG,
            TOKEN,
            event_ids=[EVENT],
            base_url=base_url + "/api/public",
            per_page=eventpop.MAX_PER_PAGE,
            http=http,
            clock=clock,
        )

    def served(self) -> int:
        return self.sim.requests_served


class NuwebSetup:
    name, incremental = "nuweb", True

    def seed(self, tickets: int, clock: Clock) -> None:
        self.sim = nuweb.NuwebSimulator(clock=clock, rate_limit=10**9)
        self.sim.add_company(ORG, TOKEN)
        self.sim.add_event(ORG, EVENT)
        ticket_type = self.sim.add_ticket_type(EVENT, "General Admission")
        self.ids = _seeded(tickets, clock, lambda: self.sim.sell(ticket_type))
        self.next = 0

    def change(self, count: int) -> None:
        for ticket in self.ids[self.next : self.next + count]:
            self.sim.scan_in(ticket)
        self.next += count

    def app(self) -> web.Application:
        return nuweb.build_app(self.sim)

    def adapter(self, base_url: str, http: ProviderHttpClient, clock: Clock) -> Provider:
        return NuwebProvider(
            "bench", TOKEN, ORG, event_ids=[EVENT], base_url=base_url, http=http, clock=clock
        )

    def served(self) -> int:
        return self.sim.requests_served


def _setups() -> list[Setup]:
    setups: list[Setup] = [ShotgunSetup(), EventpopSetup(), NuwebSetup()]
    try:
        from bench.tickettailor_setup import TicketTailorSetup
    except ImportError:  # the Ticket Tailor adapter may not be in this build yet
        return setups
    setups.append(TicketTailorSetup())
    return setups


@dataclass(frozen=True, slots=True)
class Counts:
    steady: float
    full_scan: int


async def count_requests(setup: Setup, tickets: int, changes: int) -> Counts:
    clock = Clock(datetime.now(UTC) - timedelta(seconds=tickets + 86_400))
    setup.seed(tickets, clock)
    runner = web.AppRunner(setup.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = "http://127.0.0.1:" + str(runner.addresses[0][1])
    http = ProviderHttpClient(base_url)
    try:
        provider = setup.adapter(base_url, http, clock)
        cursor = await _read_through(provider, None)
        steady = 0
        measured = getattr(setup, "measured_polls", MEASURED_POLLS)
        for poll in range(WARMUP_POLLS + measured):
            for _ in range(changes):  # scans spread over the interval, as doors do
                clock.now += INTERVAL / changes
                setup.change(1)
            before = setup.served()
            cursor = await _read_through(provider, cursor)
            if poll >= WARMUP_POLLS:
                steady += setup.served() - before
        before = setup.served()
        await _read_through(setup.adapter(base_url, http, clock), None)
        full_scan = setup.served() - before
        scan = getattr(setup, "full_scan", None)
        if scan is not None:
            full_scan = await scan(base_url, http)
        return Counts(steady=steady / measured, full_scan=full_scan)
    finally:
        await http.close()
        await runner.cleanup()


async def _read_through(provider: Provider, cursor: str | None) -> str | None:
    """One poll as the service runs it: a read that stops at its page cap (``more``) is
    continued at once from its cursor, so its requests count as the same poll's."""
    while True:
        result = await provider.poll(cursor)
        cursor = result.cursor
        if not result.more:
            return cursor


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=50)
    # Only the Shotgun simulator pages from an index: Eventpop's and Nuweb's filter and sort
    # every ticket per page, and Ticket Tailor's renders each order by scanning every ticket,
    # so a full scan of theirs is quadratic. They run smaller (docs/benchmarks.md
    # extrapolates: a steady poll's requests do not grow with the ticket count).
    parser.add_argument("--filtering-sim-tickets", type=int, default=20_000)
    parser.add_argument("--tt-tickets", type=int, default=10_000)
    parser.add_argument(
        "--providers",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=None,
        help="comma-separated subset to run, e.g. eventpop,nuweb (default: all)",
    )


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "", _options)
    quiet_logs()
    tickets = 500 if args.smoke else args.tickets
    changes = 5 if args.smoke else args.changes
    rows = []
    for setup in _setups():
        if args.providers is not None and setup.name not in args.providers:
            continue
        caps = {"shotgun": tickets, "tickettailor": args.tt_tickets}
        size = min(tickets, caps.get(setup.name, args.filtering_sim_tickets))
        counts = asyncio.run(count_requests(setup, size, changes))
        print(setup.name, size, counts, file=sys.stderr, flush=True)
        ratio = counts.steady / counts.full_scan
        target = getattr(setup, "target", TARGET)
        rows.append(
            Row(
                f"{setup.name}: requests/poll, {size:,} tickets, {changes} changes",
                counts.steady,
                counts.full_scan,
                "req",
                target=f"<= 1/{round(1 / target)} of full scan"
                if setup.incremental
                else "(no incremental read)",
                met=ratio <= target if setup.incremental else None,
            )
        )
    print_table("Figure 1: API requests per steady-state poll", rows)
    return rows


if __name__ == "__main__":
    main()
