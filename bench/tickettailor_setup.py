"""Figure 1's Ticket Tailor setup, apart so a build without that adapter still benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient
from notifier.providers.tickettailor import TicketTailorProvider
from notifier.simulators import tickettailor

if TYPE_CHECKING:
    from bench.requests_per_poll import Clock

API_KEY = "sk_bench"


class TicketTailorSetup:
    """One event in its live window (doors open), one ticket per order."""

    name, incremental = "tickettailor", False

    def seed(self, tickets: int, clock: Clock) -> None:
        self.sim = tickettailor.TicketTailorSimulator(clock=clock, rate_limit=10**9)
        self.sim.add_box_office(API_KEY)
        now = datetime.now(UTC)
        event = self.sim.add_event(now - timedelta(hours=1), now + timedelta(hours=4))
        self.ids: list[str] = []
        for _ in range(tickets):
            clock.now += timedelta(seconds=1)
            self.ids.extend(self.sim.create_order(event, first_name="Guest")[1])
        clock.now = now
        self.next = 0

    def change(self, count: int) -> None:
        for ticket in self.ids[self.next : self.next + count]:
            self.sim.check_in(ticket)
        self.next += count

    def app(self) -> web.Application:
        return tickettailor.build_app(self.sim)

    def adapter(self, base_url: str, http: ProviderHttpClient, clock: Clock) -> Provider:
        return TicketTailorProvider("bench", API_KEY, base_url=base_url, http=http, clock=clock)

    def served(self) -> int:
        return self.sim.requests_served
