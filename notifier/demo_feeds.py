"""The four providers of ``notifier demo``: each a seeded simulator, its source config, and
the door traffic a driver plays on it (scans, undos, voids, refunds, transfers, sell-outs)."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from notifier.simulators import eventpop, nuweb, shotgun, tickettailor

Action = Callable[[random.Random], str]


class Feed(Protocol):
    """One provider account of the demo."""

    provider: str
    organizer: str
    token: str  # the credential the source config must carry (Ticket Tailor: its API key)
    base_url: str

    async def start(self, port: int = 0) -> None:
        """Serve the simulator on ``127.0.0.1:port`` (0: a free port); sets ``base_url``."""
        ...

    async def stop(self) -> None: ...

    def source(self) -> dict[str, Any]: ...

    def actions(self) -> list[tuple[float, Action]]: ...


class _Served:
    """Serving an aiohttp simulator app on a free loopback port."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _serve(self, runner: web.AppRunner, path: str = "") -> None:
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}{path}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _new_token() -> str:
    return "demo." + secrets.token_urlsafe(16)


def _pick(rng: random.Random, ids: list[Any], test: Callable[[Any], bool]) -> Any | None:
    for candidate in rng.sample(ids, min(40, len(ids))):
        if test(candidate):
            return candidate
    return None


def _act(
    ids: list[Any], test: Callable[[Any], bool], do: Callable[[Any], object], what: str
) -> Action:
    """An action on a random ticket that passes ``test``; says what it did, or nothing."""

    def action(rng: random.Random) -> str:
        ticket = _pick(rng, ids, test)
        if ticket is None:
            return ""
        do(ticket)
        return what.format(ticket=ticket)

    return action


class ShotgunFeed(_Served):
    provider, organizer = "shotgun", "fabric"

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = shotgun.ShotgunSimulator()
        self.token = token or _new_token()
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
        return _act(self.ids, test, act, what)

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


class EventpopFeed(_Served):
    provider, organizer = "eventpop", "siam-live"
    ORG, EVENT = 4242, 71001

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = eventpop.EventpopSimulator()
        self.token = token or _new_token()
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
            return _act(self.ids, test, do, what)

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


class NuwebFeed(_Served):
    provider, organizer = "nuweb", "harbour-club"
    COMPANY, EVENT = 12, 5

    def __init__(self, tickets: int, token: str | None = None) -> None:
        super().__init__()
        self.sim = nuweb.NuwebSimulator()
        self.token = token or _new_token()
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
            return _act(self.ids, test, do, what)

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


class TicketTailorFeed(_Served):
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
            return _act(self.ids, test, do, what)

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


FEEDS: dict[str, Callable[[int, str | None], Feed]] = {
    "shotgun": ShotgunFeed,
    "eventpop": EventpopFeed,
    "nuweb": NuwebFeed,
    "tickettailor": TicketTailorFeed,
}


def feed_for(provider: str, tickets: int, token: str | None = None) -> Feed:
    """One provider's feed, holding ``token`` (a new one if None): ``notifier simulate``."""
    return FEEDS[provider](tickets, token)


def all_feeds(tickets: int) -> list[Feed]:
    return [feed_for(provider, tickets) for provider in FEEDS]
