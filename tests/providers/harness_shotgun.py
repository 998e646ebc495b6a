"""Shotgun behind the shared provider suite's harness protocol."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from notifier.dev.simulators.faults import Fault
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.shotgun import ShotgunProvider
from tests.fakes import no_wait
from tests.providers.harness import Transition

ORGANIZER = 173027
TOKEN = "suite-token-7d2a"


class ShotgunHarness:
    provider = "shotgun"
    transitions: frozenset[Transition] = frozenset(
        {
            "ticket.checked_in",
            "ticket.check_in_reverted",
            "ticket.refunded",
            "ticket.canceled",
            "ticket.resold",
            "ticket.holder_changed",
        }
    )
    backdated_scans = True

    def __init__(self) -> None:
        self.sim = ShotgunSimulator(page_size=5)
        self._runner: web.AppRunner | None = None
        self._base_url = ""
        self._clients: list[ProviderHttpClient] = []
        self._event_id = 0
        self._tickets: list[int] = []

    async def start(self) -> None:
        self.sim.add_organizer(ORGANIZER, TOKEN)
        self._event_id = self.sim.add_event(ORGANIZER)
        self._tickets = [self.sim.create_ticket(self._event_id) for _ in range(12)]
        self._runner = await serve(self.sim)
        host, port = self._runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        for client in self._clients:
            await client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def adapter(self, *, lookback: timedelta = timedelta(0)) -> Provider:
        client = ProviderHttpClient(
            self._base_url, policy=RetryPolicy(max_attempts=2), sleep=no_wait
        )
        self._clients.append(client)
        return ShotgunProvider(
            "suite", ORGANIZER, TOKEN, base_url=self._base_url, lookback=lookback, http=client
        )

    def ticket_ids(self) -> list[str]:
        return [
            str(t)
            for t in self._tickets
            if self.sim.ticket(t)["ticket_status"] == "valid"
            and self.sim.ticket(t)["ticket_scanned_at"] is None
        ]

    def issue(self) -> str:
        ticket = self.sim.create_ticket(self._event_id)
        self._tickets.append(ticket)
        return str(ticket)

    def apply(self, transition: Transition, ticket_id: str, *, at: datetime | None = None) -> None:
        ticket = int(ticket_id)
        match transition:
            case "ticket.checked_in":
                self.sim.scan(ticket, at=at)
            case "ticket.check_in_reverted":
                self.sim.unscan(ticket)
            case "ticket.refunded":
                self.sim.refund(ticket)
            case "ticket.canceled":
                self.sim.cancel(ticket)
            case "ticket.resold":
                self.sim.resell(ticket, first_name="Kim", last_name="Lee", email="kim@example.com")
            case "ticket.holder_changed":
                self.sim.transfer(ticket, "Sam", "Rivera", "sam@example.com")
            case _:
                raise NotImplementedError(transition)

    def push_fault(self, fault: Fault) -> None:
        self.sim.faults.push(fault)

    def redirect_next_to(self, origin: str) -> None:
        self.sim.next_origin = origin

    @property
    def requests_served(self) -> int:
        return self.sim.requests_served
