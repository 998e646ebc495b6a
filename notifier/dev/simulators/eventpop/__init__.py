"""A fake of Eventpop's public API, from its Swagger, its documentation and observations.

Serves the organizer event tickets, the user's own tickets, the organizer's events and
``POST /oauth/token`` (refresh-token and client-credentials grants, single-use rotating
refresh tokens). State lives in memory in ``EventpopSimulator`` and is driven from
Python (create, use, unuse, revoke, transfer, add and end events). Every behaviour an
adapter depends on names its source where it is defined; ``# Assumption:`` marks the
ones no source gives, each the harder case for a client (docs/providers.md lists them).
"""

from notifier.dev.simulators.eventpop.http import API_PREFIX, build_app, serve
from notifier.dev.simulators.eventpop.records import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    PageServed,
    SeenRequest,
    TicketQuery,
    render_time,
)
from notifier.dev.simulators.eventpop.state import EventpopSimulator
from notifier.dev.simulators.faults import Fault, FaultQueue

__all__ = [
    "API_PREFIX",
    "DEFAULT_PER_PAGE",
    "MAX_PER_PAGE",
    "EventpopSimulator",
    "Fault",
    "FaultQueue",
    "PageServed",
    "SeenRequest",
    "TicketQuery",
    "build_app",
    "render_time",
    "serve",
]
