"""What the shared provider suite needs from each provider: a simulator it can drive and the
adapter pointed at it. One harness per provider (tests/providers/harness_<name>.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from notifier.dev.simulators.faults import Fault
from notifier.providers.base import Provider

# Transitions a harness can perform on its simulator, named by the event they must yield.
Transition = Literal[
    "ticket.checked_in",
    "ticket.check_in_reverted",
    "ticket.checked_out",
    "ticket.voided",
    "ticket.refunded",
    "ticket.canceled",
    "ticket.resold",
    "ticket.reinstated",
    "ticket.status_changed",
    "ticket.holder_changed",
]


class ProviderHarness(Protocol):
    """A provider's simulator, served on 127.0.0.1, and its adapter.

    ``page_size`` is small (e.g. 5) so a few changes already span several pages.
    """

    provider: str
    # The transitions this provider's data can reveal (others are never asked for).
    transitions: frozenset[Transition]
    # Whether ``at=`` back-dating of a scan is possible (lookback test).
    backdated_scans: bool

    async def start(self) -> None:
        """Seed at least 12 valid, unscanned tickets and serve the simulator."""

    async def stop(self) -> None: ...

    def adapter(self, *, lookback: timedelta = timedelta(0)) -> Provider:
        """A fresh adapter on the simulator (a new one after a restart keeps no memory)."""

    def ticket_ids(self) -> list[str]:
        """Ids (as the adapter reports them) of valid, unscanned tickets, in a stable order."""

    def issue(self) -> str:
        """Create a new valid ticket; return its id as the adapter reports it."""

    def apply(self, transition: Transition, ticket_id: str, *, at: datetime | None = None) -> None:
        """Make the simulator show ``transition`` on the ticket (``at`` back-dates a scan)."""

    def push_fault(self, fault: Fault) -> None:
        """Queue a fault for the next matching request."""

    def redirect_next_to(self, origin: str) -> None:
        """Make the next page's ``next`` link point to another origin (a token thief)."""

    @property
    def requests_served(self) -> int: ...


class ShiftedClock:
    """The real time plus an offset that a test moves forward: shared by a simulator and
    its adapter so a test can step across a minute at once, while updates made between
    two steps still get distinct (millisecond) times, as on a real server."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class DeepReadHarness(ProviderHarness, Protocol):
    """A provider whose adapter re-reads its lookback window only on deep reads.

    Simulator and adapter share ``clock``, so a test can step across the deep interval.
    """

    clock: ShiftedClock
    deep_interval: timedelta

    def sync_late(self, ticket_id: str, at: datetime) -> None:
        """An offline scanner syncing now a check-in made ``at``: the ticket's
        modification time too is ``at`` (what the lookback exists for)."""

    def legacy_cursor(self, cursor: str) -> str:
        """``cursor`` as the version before deep reads wrote it (no deep-read state)."""
