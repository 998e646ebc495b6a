"""Realistic data for a simulated box office: three events and their orders, with some
check-ins, voids, cancellations and refunds (the demo and the CLI's simulator)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifier.dev.simulators.tickettailor.state import TicketTailorSimulator


def seed_box_office(
    sim: TicketTailorSimulator, api_key: str, tickets: int, rng_seed: int = 0
) -> list[str]:
    """A box office with a live, a future and a past event; returns the ticket ids."""
    rng = random.Random(rng_seed)
    sim.add_box_office(api_key)
    now = sim.now()
    events = [
        sim.add_event(now - timedelta(hours=1), name="Tulip Festival (tonight)"),
        sim.add_event(now + timedelta(days=14), name="Spring Social"),
        sim.add_event(now - timedelta(days=10), name="Winter Market"),
    ]
    issued: list[str] = []
    while len(issued) < tickets:
        issued.extend(_seed_order(sim, rng, rng.choice(events), tickets - len(issued)))
    return issued


_FIRST = ("Olivia", "Amelia", "Isla", "Noah", "Oliver", "George", "Leo", "Freya", "Arthur")
_LAST = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Davies")


def _seed_order(
    sim: TicketTailorSimulator, rng: random.Random, event_id: str, left: int
) -> list[str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    order_id, ticket_ids = sim.create_order(
        event_id,
        quantity=min(rng.choice((1, 1, 2, 3)), left),
        ticket_type_id=rng.choice(sim.ticket_type_ids(event_id)),
        first_name=first,
        last_name=last,
        email=(first + "." + last + "@example.com").lower(),
    )
    roll = rng.random()
    if roll < 0.3:
        sim.check_in(ticket_ids[0])
    elif roll < 0.33:
        sim.void(ticket_ids[0])
    elif roll < 0.35:
        sim.cancel_order(order_id, "Customer request")
    elif roll < 0.37:
        sim.refund_order(order_id)
    return ticket_ids
