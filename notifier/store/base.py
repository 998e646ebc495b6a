"""What the poller and the dispatcher need from a store, as two small protocols.

``SnapshotStore`` is the poller's side: read a source's state, then commit new state,
its events and the new cursor in ONE transaction (the transactional outbox: a crash can
never leave events without state or state without events). ``Outbox`` is the dispatcher's
side: which deliveries are due for a sink, and what became of an attempt. ``StateStore``
is all of it, as the service and the CLI hold it: every store implements it and passes the
contract suite in tests/contract/test_store_contract.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from notifier.envelope import OutboxEvent
from notifier.model import SourceId, TicketId, TicketTypeId
from notifier.state import TicketState, TicketTypeState


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """A source's remembered tickets and cursor; ``polled`` is false before its first commit."""

    tickets: dict[TicketId, TicketState] = field(default_factory=dict)
    cursor: str | None = None
    polled: bool = False
    ticket_types: dict[TicketTypeId, TicketTypeState] = field(default_factory=dict)
    # Fixed at the first commit of the source's state; part of every event id.
    epoch: str = ""
    # The baseline has read the source to its end (it may take several commits).
    settled: bool = False
    # Filled instead of ``tickets`` by ``load(..., as_fingerprints=True)``: the digest of
    # each remembered ticket's tracked fields (``TicketState.fingerprint``).
    fingerprints: dict[TicketId, int] = field(default_factory=dict)
    # Events whose tickets retention removed (they ended long ago): their tickets, should a
    # provider still list them, are neither stored again nor announced as new.
    retired_events: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention pass removed from the outbox."""

    events: int = 0
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class Routed:
    """An event to commit, and the sinks that must each acknowledge it."""

    event: OutboxEvent
    sinks: Sequence[str]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    PARKED = "parked"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event owed to one sink."""

    position: int
    sink: str
    event: OutboxEvent
    attempts: int
    status: DeliveryStatus = DeliveryStatus.PENDING
    next_attempt_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt: delivered, retry at ``retry_at`` (epoch s), or parked."""

    position: int
    status: DeliveryStatus
    retry_at: float = 0.0
    error: str | None = None


class SnapshotStore(Protocol):
    async def load(self, source: SourceId, *, as_fingerprints: bool = False) -> SourceSnapshot:
        """The source's state; with ``as_fingerprints`` one digest per ticket, not its state."""
        ...

    async def ticket_states(
        self, source: SourceId, ticket_ids: Collection[TicketId]
    ) -> dict[TicketId, TicketState]:
        """The stored states of those tickets that have one."""
        ...

    async def commit(
        self,
        source: SourceId,
        *,
        tickets: Mapping[TicketId, TicketState],
        events: Sequence[Routed],
        cursor: str | None,
        ticket_types: Mapping[TicketTypeId, TicketTypeState] | None = None,
        epoch: str = "",
        settled: bool = True,
        ticket_events: Mapping[TicketId, str] | None = None,
    ) -> None:
        """``ticket_events`` names each ticket's event, so retention can find the tickets
        of an event that ended long ago (``retire_events``)."""
        ...

    async def retire_events(self, source: SourceId, event_ids: Collection[str]) -> list[TicketId]:
        """Forget the tickets of these (long-ended) events and remember the events as
        retired; returns the ticket ids removed, for the poller to forget too."""
        ...

    async def pii_form(self, source: SourceId) -> str | None:
        """The form the source's stored holders are in (``notifier.pii.state_form``); None
        when never recorded: holders kept as read, as before forms were recorded."""
        ...

    async def set_pii_form(self, source: SourceId, form: str) -> None: ...


class Outbox(Protocol):
    async def due(self, sink: str, *, now: float, limit: int) -> list[Delivery]: ...

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None: ...

    async def deliveries(
        self, *, sink: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]: ...

    async def requeue(
        self, sink: str, *, since: float | None = None, event_id: str | None = None
    ) -> int: ...


class Retention(Protocol):
    """Deleting what is no longer owed, so the store stays bounded (docs/reliability.md)."""

    async def prune_outbox(
        self, *, delivered_before: float, parked_before: float, batch: int = 2000
    ) -> Pruned:
        """Delete, one batch (one transaction) at a time, events committed before
        ``delivered_before`` whose every delivery is delivered, and those committed before
        ``parked_before`` with nothing pending (parked ones included), with their
        deliveries. Times are epoch seconds."""
        ...

    async def file_bytes(self) -> int:
        """The store's size on disk (0 for a store without a file)."""
        ...


class SinkSwitches(Outbox, Protocol):
    """The outbox plus the per-sink off switch that a 410 Gone flips."""

    async def disable_sink(self, sink: str, reason: str) -> None: ...

    async def disabled_sinks(self) -> dict[str, str]: ...


class StateStore(SnapshotStore, SinkSwitches, Retention, Protocol):
    """A whole store: snapshots, credentials, outbox, sink switches and housekeeping."""

    # Writes (commits, delivery outcomes) failed in a row, reset by the next success:
    # /readyz reports a store that cannot write (disk full, read-only volume).
    consecutive_write_failures: int

    async def pending_count(self) -> int:
        """Deliveries still pending (the outbox backlog gauge, the readiness probe)."""
        ...

    async def enable_sink(self, sink: str) -> bool:
        """Switch a disabled sink back on; False if it was not disabled."""
        ...

    # The providers' ``CredentialStore`` (notifier.providers.base), declared again here so
    # that the store imports no provider module: a StateStore is one, structurally.
    async def load_credentials(self, key: str) -> str | None:
        """The opaque (sealed) text saved under ``key``, or None."""
        ...

    async def save_credentials(self, key: str, value: str) -> None:
        """Replace what is saved under ``key``; the store neither reads nor logs it."""
        ...

    async def close(self) -> None:
        """Release the store; the runtime calls it once at shutdown."""
        ...
