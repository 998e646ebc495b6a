"""Realistic Shotgun data for demos and load: names, deals and ticket histories."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifier.dev.simulators.shotgun.state import ShotgunSimulator

__all__ = ["seed_ticket"]


_FIRST_NAMES = ("Antoine", "Camille", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Inès")
_LAST_NAMES = ("Rousseau", "Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Simon", "Michel")
_DEALS = (
    (12_345_678, "Early Bird", 2999),
    (12_345_679, "Regular", 3999),
    (12_345_680, "VIP", 8999),
)


def seed_ticket(sim: ShotgunSimulator, rng: random.Random, event_id: int) -> int:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    deal_id, title, price = rng.choice(_DEALS)
    status = rng.choices(["valid", "pending_approval", "payment_plan_pending"], [90, 5, 5])[0]
    ticket_id = sim.create_ticket(
        event_id,
        first_name=first,
        last_name=last,
        email=(first + "." + last + "@example.com").lower(),
        phone=rng.choice([None, "+3361234" + str(rng.randrange(1000, 9999))]),
        status=status,
        deal_id=deal_id,
        deal_title=title,
        deal_price=price,
        deal_channel=rng.choice(["online", "online", "online", "invitation"]),
        user_id=rng.randrange(40_000, 90_000),
    )
    _seed_history(sim, rng, ticket_id, status)
    return ticket_id


def _seed_history(sim: ShotgunSimulator, rng: random.Random, ticket_id: int, status: str) -> None:
    if status != "valid":
        return
    roll = rng.random()
    if roll < 0.3:
        sim.scan(ticket_id)
    elif roll < 0.34:
        sim.refund(ticket_id)
    elif roll < 0.36:
        sim.cancel(ticket_id)
