"""Eventpop's ProviderHarness: the simulator on 127.0.0.1 and the adapter pointed at it."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from notifier.dev.simulators.eventpop import EventpopSimulator, serve
from notifier.dev.simulators.faults import Fault
from notifier.providers.base import Provider
from notifier.providers.eventpop import (
    DEEP_INTERVAL,
    EventpopProvider,
    decode_cursor,
    encode_cursor,
)
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from tests.fakes import no_wait
from tests.providers.harness import DeepReadHarness, ShiftedClock, Transition

ORGANIZER = 4242
EVENT = 71001
TOKEN = "harness-eventpop-token"


class EventpopHarness:
    """Drives ``EventpopSimulator`` for the shared provider suite (pages of five)."""

    provider = "eventpop"
    transitions: frozenset[Transition] = frozenset(
        {"ticket.checked_in", "ticket.check_in_reverted", "ticket.voided", "ticket.holder_changed"}
    )
    backdated_scans = True
    # Eventpop pages carry no links: there is no next URL to redirect (see redirect_next_to).
    follows_links = False
    page_size = 5
    deep_interval = DEEP_INTERVAL

    def __init__(self) -> None:
        self.clock = ShiftedClock()
        self.sim = EventpopSimulator(clock=self.clock)
        self._runner: web.AppRunner | None = None
        self._base_url = ""
        self._clients: list[ProviderHttpClient] = []
        self._valid: list[int] = []

    async def start(self) -> None:
        self.sim.add_organizer(ORGANIZER, TOKEN)
        self.sim.add_event(ORGANIZER, EVENT)
        for _ in range(12):
            self.issue()
        self._runner = await serve(self.sim, "127.0.0.1", 0)
        port = self._runner.addresses[0][1]
        self._base_url = "http://127.0.0.1:" + str(port) + "/api/public"

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
        return EventpopProvider(
            "eventpop-harness",
            ORGANIZER,
            TOKEN,
            event_ids=[EVENT],
            base_url=self._base_url,
            per_page=self.page_size,
            lookback=lookback,
            http=client,
            clock=self.clock,
        )

    def ticket_ids(self) -> list[str]:
        return [str(ticket_id) for ticket_id in self._valid]

    def issue(self) -> str:
        number = len(self._valid) + 1
        ticket_id = self.sim.create_ticket(
            EVENT, firstname="Guest", lastname=str(number), email=str(number) + "@x.co.th"
        )
        self._valid.append(ticket_id)
        return str(ticket_id)

    def apply(self, transition: Transition, ticket_id: str, *, at: datetime | None = None) -> None:
        number = int(ticket_id)
        if transition == "ticket.checked_in":
            self.sim.use(number, at=at)
        elif transition == "ticket.check_in_reverted":
            self.sim.unuse(number)
        elif transition == "ticket.voided":
            self.sim.revoke(number, "cancelled by organizer")
        elif transition == "ticket.holder_changed":
            self.sim.transfer(number, "Kanya Srisuk", "kanya@x.co.th", "0898765432")
        else:
            raise ValueError("Eventpop cannot show " + transition)
        if transition != "ticket.holder_changed" and number in self._valid:
            self._valid.remove(number)

    def sync_late(self, ticket_id: str, at: datetime) -> None:
        number = int(ticket_id)
        self.sim.use(number, at=at)
        self.sim.touch(number, at=at)
        if number in self._valid:
            self._valid.remove(number)

    def legacy_cursor(self, cursor: str) -> str:
        # The older format is the positions alone, which encode_cursor still writes.
        legacy = encode_cursor(decode_cursor(cursor))
        assert legacy is not None
        return legacy

    def push_fault(self, fault: Fault) -> None:
        self.sim.faults.push(fault)

    def redirect_next_to(self, origin: str) -> None:
        """A no-op: Eventpop pages by query parameters, never by a server-given link.

        The adapter builds every URL from its configured base, so there is no link a
        thief could plant; ``follows_links = False`` tells the suite to skip that test.
        """

    @property
    def requests_served(self) -> int:
        return self.sim.requests_served


def _conforms(harness: EventpopHarness) -> DeepReadHarness:
    return harness  # mypy checks EventpopHarness against the protocol here
