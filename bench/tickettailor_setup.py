"""Figure 1's Ticket Tailor setup, apart so a build without that adapter still benchmarks.

One event in its live window (doors open), one ticket per order. Check-ins come from
their feed every poll; voids, refunds and transfers only show in sweeps of the event's
issued tickets, which the adapter runs as often as half of the key's request budget
(5,000 requests / 30 min) allows. A mean over a few polls would catch a sweep or not, so
this setup measures over ``measured_polls`` polls, twelve minutes of them: about ten
sweeps at 10,000 tickets, their cost amortised over every poll.

Its full scan is what a poller without a cursor reads to see the same changes: every page
of events, issued tickets and orders (the orders carry refunds).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from notifier.dev.simulators import tickettailor
from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient
from notifier.providers.tickettailor import TicketTailorProvider

if TYPE_CHECKING:
    from bench.requests_per_poll import Clock

API_KEY = "sk_bench"
PAGE = 100


class TicketTailorSetup:
    """One event in its live window (doors open), one ticket per order."""

    name, incremental = "tickettailor", True
    target = 1 / 20
    measured_polls = 144  # twelve minutes of 5-second polls

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
        self.next = (self.next + count) % len(self.ids)

    def app(self) -> web.Application:
        return tickettailor.build_app(self.sim)

    def adapter(self, base_url: str, http: ProviderHttpClient, clock: Clock) -> Provider:
        # The default budget share: 5,000 requests / 30 min, this source alone on its key.
        return TicketTailorProvider("bench", API_KEY, base_url=base_url, http=http, clock=clock)

    def served(self) -> int:
        return self.sim.requests_served

    async def full_scan(self, base_url: str, http: ProviderHttpClient) -> int:
        """Requests to read every page of events, issued tickets and orders."""
        headers = tickettailor_headers()
        before = self.served()
        for path in ("/v1/events", "/v1/issued_tickets", "/v1/orders"):
            after: str | None = None
            while True:
                params = {"limit": str(PAGE)} | ({"starting_after": after} if after else {})
                result = await http.fetch_json(base_url + path, params=params, headers=headers)
                payload = result.payload
                data = payload.get("data") if isinstance(payload, dict) else None
                if not isinstance(data, list) or len(data) < PAGE:
                    break
                after = str(data[-1]["id"])
        return self.served() - before


def tickettailor_headers() -> dict[str, str]:
    token = base64.b64encode((API_KEY + ":").encode()).decode()
    return {"Authorization": "Basic " + token, "Accept": "application/json"}
