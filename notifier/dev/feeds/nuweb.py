"""Nuweb in ``notifier demo``: a seeded simulator, its source config, its door traffic."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from notifier.dev.feeds.base import Action, Served, new_token, ticket_action
from notifier.dev.simulators import nuweb


class NuwebFeed(Served):
    provider, organizer = "nuweb", "harbour-club"
    COMPANY, EVENT = 12, 5

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = nuweb.NuwebSimulator()
        self.token = token or new_token()
        self.sim.add_company(self.COMPANY, self.token)
        self.sim.add_event(self.COMPANY, self.EVENT)
        self.types = [
            self.sim.add_ticket_type(self.EVENT, name, price_minor=price, total_stock=stock)
            for name, price, stock in (("Early Bird", 1500, tickets), ("VIP", 6000, tickets))
        ]
        self.ids = [
            self.sim.sell(self.types[k % 2], f"Guest {k}", f"guest{k}@example.com")
            for k in range(tickets)
        ]
        self.sold_out = False

    async def start(self, port: int = 0) -> None:
        await self._serve(await nuweb.serve(self.sim, port=port))

    def source(self) -> dict[str, Any]:
        return {
            "id": "nuweb-main",
            "provider": "nuweb",
            "token": self.token,
            "company_id": self.COMPANY,
            "event_ids": [self.EVENT],
            "base_url": self.base_url,
            "allow_insecure_http": True,
            "poll_interval": "2s",
        }

    def _status(self, status: str) -> Callable[[int], bool]:
        return lambda t: bool(self.sim.entry_ticket(t)["variable"].get("status") == status)

    def _sell_out(self, _: random.Random) -> str:
        if self.sold_out:
            return ""
        self.sold_out = True
        self.sim.sell_out(self.types[1])
        return "VIP sells out (shows within a minute: inventory is read once a minute)"

    def _sell(self, _: random.Random) -> str:
        # The simulator sells past the stock as a box office may; the door traffic does not.
        if self.sim.ticket_type(self.types[0])["currentStock"] <= 0:
            return ""
        ticket = self.sim.sell(self.types[0], "Leo Park", "leo@example.com")
        self.ids.append(ticket)
        return f"sells ticket {ticket} (Early Bird) to Leo Park"

    def actions(self) -> list[tuple[float, Action]]:
        sim = self.sim

        def act(test: Callable[[int], bool], do: Callable[[int], object], what: str) -> Action:
            return ticket_action(self.ids, test, do, what)

        def sold(t: int) -> bool:
            return not sim.entry_ticket(t)["variable"] or self._status("sold")(t)

        return [
            (0.4, act(sold, sim.scan_in, "admits ticket {ticket} (zone in)")),
            (0.15, act(self._status("scanned"), sim.scan_out, "ticket {ticket} leaves (zone out)")),
            (0.1, self._sell),
            (0.15, act(sold, sim.refund, "refunds ticket {ticket}")),
            (
                0.1,
                act(
                    sold,
                    sim.cancel,
                    "cancels ticket {ticket} without refund (shows within a minute:"
                    " order items are read once a minute)",
                ),
            ),
            (
                0.1,
                act(
                    sold,
                    lambda t: sim.transfer(t, "Ava Quinn", "ava@example.com"),
                    "transfers ticket {ticket} to Ava Quinn",
                ),
            ),
            (0.1, self._sell_out),
        ]
