"""Synthetic Shotgun ``/tickets`` pages for the CPU and memory benchmarks (no HTTP).

Every ticket is unique (its own id, scan code, contact and e-mail), shaped exactly like
the simulator's wire tickets, so parsing and memory see realistic, non-shared strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from notifier.dev.simulators.shotgun import ShotgunSimulator
from notifier.timeparse import format_shotgun_time

PAGE = 100
FIRST_ID = 90_000_000
_START = datetime(2026, 6, 1, 12, tzinfo=UTC)
_FIRST = ("Antoine", "Camille", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Inès")
_LAST = ("Rousseau", "Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Simon", "Michel")


def _template() -> dict[str, Any]:
    sim = ShotgunSimulator(clock=lambda: _START)
    sim.add_organizer(1, "t")
    event = sim.add_event(1)
    return sim.ticket(sim.create_ticket(event))


_TEMPLATE = _template()


def ticket(index: int, *, changed: bool) -> dict[str, Any]:
    """Ticket ``index`` as the API renders it; ``changed`` = scanned since the last poll."""
    ticket_id = FIRST_ID + index
    updated = _START + timedelta(seconds=index)
    wire = dict(_TEMPLATE)
    first, last = _FIRST[index % len(_FIRST)], _LAST[index % len(_LAST)]
    wire.update(
        ticket_id=ticket_id,
        ticket_scan_code=str(42_564_997_260_000 + ticket_id),
        ticket_updated_at=format_shotgun_time(updated),
        ordered_at=format_shotgun_time(updated),
        order_id=51_000_000 + index,
        contact_id=100_000_000 + ticket_id,
        contact_first_name=first,
        contact_last_name=last,
        contact_email=f"{first}.{last}.{index}@example.com".lower(),
        contact_phone=None if index % 3 else f"+33612{index % 1_000_000:06d}",
    )
    if changed:
        scanned = updated + timedelta(days=30)
        wire.update(
            ticket_scanned_at=format_shotgun_time(scanned),
            ticket_updated_at=format_shotgun_time(scanned),
        )
    return wire


def is_changed(index: int, changed_every: int) -> bool:
    return changed_every > 0 and index % changed_every == changed_every // 2


def pages(total: int, *, changed_every: int = 0) -> Iterator[bytes]:
    """``total`` tickets as JSON page bodies of 100; every ``changed_every``-th one scanned."""
    for start in range(0, total, PAGE):
        data = [
            ticket(index, changed=is_changed(index, changed_every))
            for index in range(start, min(total, start + PAGE))
        ]
        body = {"params": {"organizer_id": 1}, "pagination": {"next": None}, "data": data}
        yield orjson.dumps(body)
