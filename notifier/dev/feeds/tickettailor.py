"""Ticket Tailor in ``notifier demo``: a seeded simulator, its source config, its door traffic."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from typing import Any

from notifier.dev.feeds.base import Action, Served, ticket_action
from notifier.dev.simulators import tickettailor


class TicketTailorFeed(Served):
    provider, organizer = "tickettailor", "tulip-fest"

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = tickettailor.TicketTailorSimulator()
        self.token = self.api_key = token or "sk_demo_" + secrets.token_hex(12)
        self.ids = self.sim.seed(self.api_key, tickets, rng_seed=5000)
        self.sold_out = False

    async def start(self, port: int = 0) -> None:
        await self._serve(await tickettailor.serve(self.sim, port=port))

    def source(self) -> dict[str, Any]:
        return {
            "id": "tt-main",
            "provider": "tickettailor",
            "api_key": self.api_key,
            "base_url": self.base_url,
            "allow_insecure_http": True,
            "poll_interval": "2s",
            # The demo is short: a sell-out settles in seconds, not the production ten
            # minutes that outlast Ticket Tailor's swinging counters.
            "inventory_settle": "4s",
        }

    def _valid(self, t: str) -> bool:
        row = self.sim.tickets[t]
        return bool(row["status"] == "valid" and row["checked_in"] == "false")

    def _sell_out(self, _: random.Random) -> str:
        if self.sold_out:
            return ""
        self.sold_out = True
        event = next(iter(self.sim.events.values()))
        ticket_type = event["ticket_types"][0]
        self.sim.sell_out(ticket_type["id"])
        return f"{ticket_type.get('name', 'a ticket type')} sells out"

    def _sell(self, _: random.Random) -> str:
        event_id, event = next(iter(self.sim.events.items()))
        for ticket_type in event["ticket_types"]:
            issued, held = ticket_type["quantity_issued"], ticket_type["quantity_held"]
            if ticket_type["quantity_total"] - issued - held > 0:
                order, tickets = self.sim.create_order(
                    event_id,
                    ticket_type_id=ticket_type["id"],
                    first_name="Ola",
                    last_name="Berg",
                    email="ola@example.com",
                )
                self.ids.extend(tickets)
                return f"sells ticket {tickets[0]} (order {order}) to Ola Berg"
        return ""

    def actions(self) -> list[tuple[float, Action]]:
        sim = self.sim

        def act(test: Callable[[str], bool], do: Callable[[str], object], what: str) -> Action:
            return ticket_action(self.ids, test, do, what)

        def order_of(t: str) -> str:
            return str(sim.tickets[t]["order_id"])

        return [
            (0.4, act(self._valid, sim.check_in, "checks in ticket {ticket}")),
            (0.1, self._sell),
            (
                0.1,
                act(
                    lambda t: sim.tickets[t]["checked_in"] == "true",
                    sim.undo_check_in,
                    "undoes the check-in of {ticket}",
                ),
            ),
            (0.15, act(self._valid, sim.void, "voids ticket {ticket}")),
            (
                0.1,
                act(
                    self._valid,
                    lambda t: sim.refund_order(order_of(t), 1000),
                    "refunds the order of ticket {ticket}",
                ),
            ),
            (
                0.1,
                act(
                    self._valid,
                    lambda t: sim.transfer(
                        t, first_name="Nina", last_name="Roy", email="nina@example.com"
                    ),
                    "transfers ticket {ticket} to Nina Roy",
                ),
            ),
            (0.05, self._sell_out),
        ]
