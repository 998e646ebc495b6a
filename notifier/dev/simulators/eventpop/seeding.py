"""Realistic simulated data: Thai names, three ticket types, a mix of states (test data)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifier.dev.simulators.eventpop.state import EventpopSimulator

_FIRST_NAMES = ("Somchai", "Suda", "Niran", "Ploy", "Anan", "Kanya", "Wichai", "Mali", "Krit")
_LAST_NAMES = ("Jaidee", "Srisuk", "Wongsawat", "Chaiyaporn", "Rattanakul", "Boonmee")
_TYPES = (
    (4521, "Early Bird", 90_000),
    (4522, "General Admission", 150_000),
    (4523, "VIP", 450_000),
)


def seed_ticket(sim: EventpopSimulator, rng: random.Random, event_id: int) -> int:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    ticket_id = sim.create_ticket(
        event_id,
        firstname=first,
        lastname=last,
        email=(first + "." + last + "@example.co.th").lower(),
        phone=rng.choice([None, "08" + str(rng.randrange(10_000_000, 99_999_999))]),
        ticket_type=rng.choice(_TYPES),
    )
    roll = rng.random()
    if roll < 0.3:
        sim.use(ticket_id)
    elif roll < 0.34:
        sim.revoke(ticket_id, "refunded")
    elif roll < 0.5:
        sim.register(ticket_id)
    return ticket_id
