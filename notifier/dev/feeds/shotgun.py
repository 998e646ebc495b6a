"""Shotgun in ``notifier demo``: a seeded simulator, its source config, its door traffic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifier.dev.feeds.base import Action, Served, new_token, ticket_action
from notifier.dev.simulators import shotgun


class ShotgunFeed(Served):
    provider, organizer = "shotgun", "fabric"

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = shotgun.ShotgunSimulator()
        self.token = token or new_token()
        self.ids = self.sim.seed(173027, self.token, tickets, rng_seed=7)

    async def start(self, port: int = 0) -> None:
        await self._serve(await shotgun.serve(self.sim, port=port))

    def source(self) -> dict[str, Any]:
        return {
            "id": "shotgun-main",
            "provider": "shotgun",
            "organizer_id": 173027,
            "token": self.token,
            "base_url": self.base_url,
            "allow_insecure_http": True,
        }

    def _valid(self, t: int) -> bool:
        wire = self.sim.ticket(t)
        return bool(wire["ticket_status"] == "valid" and wire["ticket_scanned_at"] is None)

    def _do(self, test: Callable[[int], bool], act: Callable[[int], object], what: str) -> Action:
        return ticket_action(self.ids, test, act, what)

    def actions(self) -> list[tuple[float, Action]]:
        sim = self.sim
        return [
            (0.5, self._do(self._valid, sim.scan, "scans ticket {ticket} at the door")),
            (
                0.1,
                self._do(
                    lambda t: sim.ticket(t)["ticket_scanned_at"] is not None,
                    sim.unscan,
                    "undoes the scan of ticket {ticket}",
                ),
            ),
            (0.1, self._do(self._valid, sim.refund, "refunds ticket {ticket}")),
            (
                0.1,
                self._do(
                    self._valid,
                    lambda t: sim.transfer(t, "Sam", "Rivera", "sam@x.io"),
                    "transfers ticket {ticket} to Sam Rivera",
                ),
            ),
            (0.1, self._do(self._valid, self._resell, "resells ticket {ticket}")),
            (0.1, self._do(self._valid, sim.cancel, "cancels ticket {ticket}")),
        ]

    def _resell(self, ticket: int) -> None:
        self.ids.append(
            self.sim.resell(ticket, first_name="Kim", last_name="Lee", email="kim@example.com")
        )
