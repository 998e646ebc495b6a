"""A fake of Ticket Tailor's ``/v1`` API (docs/providers.md lists its sources and the
assumptions it makes where they are silent).

``state`` holds the box offices and is driven from Python (orders, check-ins, voids,
cancels, refunds, transfers, inventory); ``http`` serves them; ``wire`` spells the
objects as the API does.
"""

from __future__ import annotations

from aiohttp import web

from notifier.dev.simulators.common import start_app
from notifier.dev.simulators.faults import Fault, FaultQueue
from notifier.dev.simulators.tickettailor.http import MAX_LIMIT, build_app
from notifier.dev.simulators.tickettailor.state import (
    RATE_LIMIT,
    RATE_WINDOW,
    SWING_DURATION,
    TicketTailorSimulator,
)
from notifier.dev.simulators.tickettailor.wire import SeenRequest, TicketTypeSpec

__all__ = [
    "MAX_LIMIT",
    "RATE_LIMIT",
    "RATE_WINDOW",
    "SWING_DURATION",
    "Fault",
    "FaultQueue",
    "SeenRequest",
    "TicketTailorSimulator",
    "TicketTypeSpec",
    "build_app",
    "serve",
]


async def serve(
    sim: TicketTailorSimulator, host: str = "127.0.0.1", port: int = 0
) -> web.AppRunner:
    """Start serving ``sim``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    return await start_app(build_app(sim), host, port)
