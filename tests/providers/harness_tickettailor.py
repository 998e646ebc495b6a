"""The Ticket Tailor simulator and adapter as a ``ProviderHarness``.

Every ticket is issued on one event that is live now, so each poll's live sweep sees
its changes, and each in an order of its own, so refunding or canceling the order
touches that ticket only (and voids it, as Ticket Tailor does). ``ticket.reinstated`` is
not offered: the simulator cannot un-void a ticket (whether Ticket Tailor can is
unconfirmed). A back-dated scan is a check-in record whose ``check_in_at`` is in the past.

The suite polls milliseconds apart, so the account's budget here is large enough for
every poll to sweep: what is tested is what a sweep sees, not its cadence (the adapter's
own tests cover that). The adapter builds every request itself from the last object id
read and never follows ``links.next``, so it is not among the link followers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from notifier.dev.simulators.faults import Fault
from notifier.dev.simulators.tickettailor import TicketTailorSimulator, serve
from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.tickettailor import RequestShare, TicketTailorProvider
from tests.providers.harness import Transition

API_KEY = "sk_harness_3f9a"
PAGE_SIZE = 5
SEEDED = 12


class TicketTailorHarness:
    """A simulator with one live event on 127.0.0.1, and adapters reading it in pages of 5."""

    provider = "tickettailor"
    follows_links = False
    transitions: frozenset[Transition] = frozenset(
        {
            "ticket.checked_in",
            "ticket.check_in_reverted",
            "ticket.voided",
            "ticket.refunded",
            "ticket.canceled",
            "ticket.holder_changed",
        }
    )
    backdated_scans = True

    def __init__(self) -> None:
        self.sim = TicketTailorSimulator()
        self._runner: web.AppRunner | None = None
        self._base_url = ""
        self._event_id = ""
        self._ids: list[str] = []
        self._clients: list[ProviderHttpClient] = []
        self._serial = 0

    async def start(self) -> None:
        """Seed a handful of valid, unscanned tickets and serve the simulator."""
        self.sim.add_box_office(API_KEY)
        now = datetime.now(UTC)
        self._event_id = self.sim.add_event(now - timedelta(hours=1), now + timedelta(hours=4))
        for _ in range(SEEDED):
            self.issue()
        runner = await serve(self.sim, "127.0.0.1", 0)
        self._runner = runner
        self._base_url = "http://127.0.0.1:" + str(runner.addresses[0][1])

    async def stop(self) -> None:
        for client in self._clients:
            await client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def adapter(self, *, lookback: timedelta = timedelta(0)) -> Provider:
        """A fresh adapter; no lookback applies (check-ins are records read by id)."""
        del lookback
        client = ProviderHttpClient(self._base_url, policy=RetryPolicy(max_attempts=2))
        self._clients.append(client)
        return TicketTailorProvider(
            "tt-harness",
            API_KEY,
            base_url=self._base_url,
            http=client,
            share=RequestShare(requests_per_minute=10**9),
            page_limit=PAGE_SIZE,
        )

    def ticket_ids(self) -> list[str]:
        """Valid, unscanned tickets, oldest first."""
        return [
            ticket_id
            for ticket_id in self._ids
            if self.sim.tickets[ticket_id]["status"] == "valid"
            and self.sim.tickets[ticket_id]["checked_in"] == "false"
        ]

    def issue(self) -> str:
        """A new valid ticket in an order of its own."""
        self._serial += 1
        _, [ticket_id] = self.sim.create_order(
            self._event_id,
            first_name="Guest",
            last_name=str(self._serial),
            email="guest" + str(self._serial) + "@example.com",
        )
        self._ids.append(ticket_id)
        return ticket_id

    def apply(self, transition: Transition, ticket_id: str, *, at: datetime | None = None) -> None:
        """Show ``transition`` on the ticket; ``at`` back-dates a check-in."""
        order_id = self.sim.tickets[ticket_id]["order_id"]
        if transition == "ticket.checked_in":
            self.sim.check_in(ticket_id, at)
        elif transition == "ticket.check_in_reverted":
            self.sim.undo_check_in(ticket_id)
        elif transition == "ticket.voided":
            self.sim.void(ticket_id)
        elif transition == "ticket.refunded":
            self.sim.refund_order(order_id, max(self.sim.orders[order_id]["total"], 1))
        elif transition == "ticket.canceled":
            self.sim.cancel_order(order_id, "Canceled by the organizer")
        elif transition == "ticket.holder_changed":
            self.sim.transfer(ticket_id, first_name="Nina", last_name="Roy", email="nina@x.io")
        else:
            raise ValueError("unsupported transition: " + transition)

    def push_fault(self, fault: Fault) -> None:
        self.sim.faults.push(fault)

    def redirect_next_to(self, origin: str) -> None:
        self.sim.redirect_next_to(origin)

    @property
    def requests_served(self) -> int:
        return self.sim.requests_served
