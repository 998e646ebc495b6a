"""The shared provider suite's view of Nuweb: its simulator on 127.0.0.1 and the adapter."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from aiohttp import web

from notifier.dev.simulators.faults import Fault
from notifier.dev.simulators.nuweb import NuwebSimulator, serve
from notifier.providers.base import Provider
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.nuweb import (
    DEEP_INTERVAL,
    ORDER_ITEMS_INTERVAL,
    RETRY_POLICY,
    NuwebProvider,
)
from tests.providers.harness import DeepReadHarness, ProviderHarness, ShiftedClock, Transition

COMPANY = 12
EVENT = 5
TOKEN = "harness-nuweb-token"


class NuwebHarness:
    """Implements ``ProviderHarness`` for Nuweb (pages of five entry tickets)."""

    provider = "nuweb"
    transitions: frozenset[Transition] = frozenset(
        {
            "ticket.checked_in",
            "ticket.checked_out",
            "ticket.refunded",
            "ticket.check_in_reverted",
            "ticket.holder_changed",
            "ticket.voided",
            "ticket.reinstated",
            "ticket.canceled",
            "ticket.resold",
        }
    )
    backdated_scans = True
    deep_interval = DEEP_INTERVAL

    def __init__(self, page_size: int = 5) -> None:
        self.clock = ShiftedClock()
        # No rate limit to speak of: the shared suite tests behaviour, not pacing.
        self.sim = NuwebSimulator(rate_limit=10_000, entry_page_size=page_size, clock=self.clock)
        self._runner: web.AppRunner | None = None
        self._base_url = ""
        self._ticket_type = 0
        self._ids: list[int] = []
        self._clients: list[ProviderHttpClient] = []
        self._holders = 0

    async def start(self) -> None:
        """Seed five valid, unscanned tickets and serve the simulator."""
        self.sim.add_company(COMPANY, TOKEN)
        self.sim.add_event(COMPANY, EVENT)
        self._ticket_type = self.sim.add_ticket_type(EVENT, "General Admission")
        self._ids = [self.sim.sell(self._ticket_type) for _ in range(12)]
        self._runner = await serve(self.sim, "127.0.0.1", 0)
        self._base_url = "http://127.0.0.1:" + str(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for client in self._clients:
            await client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def adapter(self, *, lookback: timedelta = timedelta(0)) -> Provider:
        policy = RetryPolicy(max_attempts=2, retry_after_headers=RETRY_POLICY.retry_after_headers)
        client = ProviderHttpClient(self._base_url, policy=policy)
        self._clients.append(client)
        return NuwebProvider(
            "nuweb-harness",
            TOKEN,
            COMPANY,
            event_ids=[EVENT],
            base_url=self._base_url,
            lookback=lookback,
            http=client,
            clock=self.clock,
        )

    def ticket_ids(self) -> list[str]:
        return [str(ticket_id) for ticket_id in self._ids]

    def issue(self) -> str:
        return str(self.sim.sell(self._ticket_type))

    def apply(self, transition: Transition, ticket_id: str, *, at: datetime | None = None) -> None:
        ticket = int(ticket_id)
        match transition:
            case "ticket.checked_in":
                self.sim.scan_in(ticket, at=at)
            case "ticket.checked_out":
                self.sim.scan_out(ticket, at=at)
            case "ticket.refunded":
                self.sim.refund(ticket)
            case "ticket.check_in_reverted":
                self.sim.unscan(ticket)
            case "ticket.voided":
                self.sim.lock(ticket)
            case "ticket.reinstated":
                self.sim.unlock(ticket)
            case "ticket.canceled":
                self.sim.cancel(ticket)
                self._order_items_due()
            case "ticket.resold":
                self.sim.resell(ticket, "Resale Buyer", "buyer@example.com")
                self._order_items_due()
            case "ticket.holder_changed":
                self._holders += 1
                name = "New Holder" + str(self._holders)
                self.sim.transfer(ticket, name, "holder" + str(self._holders) + "@example.com")
            case _:
                raise ValueError("nuweb cannot show " + transition)

    def _order_items_due(self) -> None:
        # The adapter reads order items (where cancellations and resales show) once a
        # minute: step past that so the next poll reads them, as a minute later would.
        self.clock.advance(ORDER_ITEMS_INTERVAL.total_seconds())

    def sync_late(self, ticket_id: str, at: datetime) -> None:
        ticket = int(ticket_id)
        self.sim.scan_in(ticket, at=at)
        # The simulator back-dates only scannedOn; a sync whose modification time is in
        # the past too has no public switch, so it is set on the entry itself.
        self.sim._entries[ticket].modified_at = at
        self._ids.remove(ticket)

    def legacy_cursor(self, cursor: str) -> str:
        state = orjson.loads(cursor)
        del state["deep_anchors"], state["deep_read_at"]
        # Order items came later still than deep reads.
        for key in (
            "order_items",
            "order_items_read_at",
            "order_items_since",
            "overrides",
            "reconciled_at",
        ):
            del state[key]
        return orjson.dumps(state).decode()

    def push_fault(self, fault: Fault) -> None:
        self.sim.faults.push(fault)

    def redirect_next_to(self, origin: str) -> None:
        self.sim.next_origin = origin

    @property
    def requests_served(self) -> int:
        return self.sim.requests_served


def _conforms(harness: NuwebHarness) -> ProviderHarness:
    return harness  # mypy checks NuwebHarness against the protocol here


def _deep(harness: NuwebHarness) -> DeepReadHarness:
    return harness
