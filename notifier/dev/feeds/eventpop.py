"""Eventpop in ``notifier demo``: a seeded simulator, its source config, its door traffic."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from notifier.dev.feeds.base import Action, Served, new_token, ticket_action
from notifier.dev.simulators import eventpop


class EventpopFeed(Served):
    provider, organizer = "eventpop", "siam-live"
    ORG, EVENT = 4242, 71001

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = eventpop.EventpopSimulator()
        self.token = token or new_token()
        self.sim.add_organizer(self.ORG, self.token)
        self.sim.add_event(self.ORG, self.EVENT)
        self.ids = self.sim.seed(self.EVENT, tickets, rng_seed=4242)

    async def start(self, port: int = 0) -> None:
        await self._serve(await eventpop.serve(self.sim, port=port), eventpop.API_PREFIX)

    def source(self) -> dict[str, Any]:
        return {
            "id": "eventpop-main",
            "provider": "eventpop",
            "organizer_id": self.ORG,
            "event_ids": [self.EVENT],
            "access_token": self.token,
            "base_url": self.base_url,
            "allow_insecure_http": True,
        }

    def _status(self, status: str) -> Callable[[int], bool]:
        return lambda t: bool(self.sim.ticket(t)["status"] == status)

    def _sell(self, _: random.Random) -> str:
        ticket = self.sim.create_ticket(
            self.EVENT, firstname="Ploy", lastname="Chaiyaporn", email="ploy@example.co.th"
        )
        self.ids.append(ticket)
        return f"sells ticket {ticket} to Ploy Chaiyaporn"

    def actions(self) -> list[tuple[float, Action]]:
        sim = self.sim

        def act(test: Callable[[int], bool], do: Callable[[int], object], what: str) -> Action:
            return ticket_action(self.ids, test, do, what)

        return [
            (0.5, act(self._status("active"), sim.use, "checks in ticket {ticket}")),
            (0.1, self._sell),
            (0.1, act(self._status("used"), sim.unuse, "reverts the check-in of {ticket}")),
            (
                0.15,
                act(
                    self._status("active"),
                    lambda t: sim.revoke(t, "chargeback"),
                    "revokes ticket {ticket}",
                ),
            ),
            (
                0.15,
                act(
                    self._status("active"),
                    lambda t: sim.transfer(t, "Nok Srisai", "nok@example.co.th", None),
                    "transfers ticket {ticket} to Nok Srisai",
                ),
            ),
        ]
