"""An in-memory store with the same contract as SQLite: for tests, dry runs and benchmarks."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace

from notifier.model import SourceId, TicketId, TicketTypeId
from notifier.state import TicketState, TicketTypeState
from notifier.store.base import (
    Delivery,
    DeliveryStatus,
    Outcome,
    Pruned,
    Routed,
    SourceSnapshot,
)


class MemoryStore:
    """SnapshotStore + Outbox + sink switches held in dictionaries."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tickets: dict[SourceId, dict[TicketId, TicketState]] = {}
        self._cursors: dict[SourceId, str | None] = {}
        self._types: dict[SourceId, dict[TicketTypeId, TicketTypeState]] = {}
        self._epochs: dict[SourceId, str] = {}
        self._settled: set[SourceId] = set()
        self._event_ids: set[str] = set()
        self._committed_at: dict[int, float] = {}
        self._deliveries: dict[tuple[str, int], Delivery] = {}
        self._positions = itertools.count(1)
        self._disabled: dict[str, str] = {}
        self._pii_forms: dict[SourceId, str] = {}
        self._ticket_events: dict[SourceId, dict[TicketId, str]] = {}
        self._retired: dict[SourceId, set[str]] = {}
        # Never fails to write; here so readiness reads both stores the same way.
        self.consecutive_write_failures = 0
        self._credentials: dict[str, str] = {}

    async def load(self, source: SourceId, *, as_fingerprints: bool = False) -> SourceSnapshot:
        tickets = self._tickets.get(source, {})
        return SourceSnapshot(
            tickets={} if as_fingerprints else dict(tickets),
            fingerprints=(
                {ticket: state.fingerprint for ticket, state in tickets.items()}
                if as_fingerprints
                else {}
            ),
            cursor=self._cursors.get(source),
            polled=source in self._cursors,
            ticket_types=dict(self._types.get(source, {})),
            epoch=self._epochs.get(source, ""),
            settled=source in self._settled,
            retired_events=frozenset(self._retired.get(source, ())),
        )

    async def ticket_states(
        self, source: SourceId, ticket_ids: Collection[TicketId]
    ) -> dict[TicketId, TicketState]:
        tickets = self._tickets.get(source, {})
        return {ticket: tickets[ticket] for ticket in ticket_ids if ticket in tickets}

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
        self._epochs.setdefault(source, epoch)
        known = self._ticket_events.setdefault(source, {})
        known.update((ticket, event) for ticket, event in (ticket_events or {}).items() if event)
        if settled:
            self._settled.add(source)
        self._tickets.setdefault(source, {}).update(tickets)
        self._types.setdefault(source, {}).update(ticket_types or {})
        for routed in events:
            if routed.event.id in self._event_ids:
                continue
            self._event_ids.add(routed.event.id)
            position = next(self._positions)
            self._committed_at[position] = self._clock()
            for sink in routed.sinks:
                self._deliveries[(sink, position)] = Delivery(
                    position=position, sink=sink, event=routed.event, attempts=0
                )
        self._cursors[source] = cursor

    async def retire_events(self, source: SourceId, event_ids: Collection[str]) -> list[TicketId]:
        retired = set(event_ids)
        self._retired.setdefault(source, set()).update(retired)
        known = self._ticket_events.get(source, {})
        tickets = self._tickets.get(source, {})
        removed = [ticket for ticket, event in known.items() if event in retired]
        for ticket in removed:
            known.pop(ticket, None)
            tickets.pop(ticket, None)
        return removed

    async def prune_outbox(
        self, *, delivered_before: float, parked_before: float, batch: int = 2000
    ) -> Pruned:
        by_position: dict[int, list[Delivery]] = {}
        for delivery in self._deliveries.values():
            by_position.setdefault(delivery.position, []).append(delivery)
        doomed = [
            position
            for position, committed in self._committed_at.items()
            if committed < delivered_before
            and not any(
                d.status is DeliveryStatus.PENDING
                or (d.status is DeliveryStatus.PARKED and committed >= parked_before)
                for d in by_position.get(position, [])
            )
        ]
        deliveries = 0
        for position in doomed:
            del self._committed_at[position]
            for delivery in by_position.get(position, []):
                del self._deliveries[(delivery.sink, position)]
                deliveries += 1
        # Event ids stay in ``_event_ids``: a test store is short-lived.
        return Pruned(events=len(doomed), deliveries=deliveries)

    async def file_bytes(self) -> int:
        return 0

    async def pii_form(self, source: SourceId) -> str | None:
        return self._pii_forms.get(source)

    async def set_pii_form(self, source: SourceId, form: str) -> None:
        self._pii_forms[source] = form

    async def due(self, sink: str, *, now: float, limit: int) -> list[Delivery]:
        due = (
            d
            for (name, _), d in sorted(self._deliveries.items())
            if name == sink and d.status is DeliveryStatus.PENDING and d.next_attempt_at <= now
        )
        return list(itertools.islice(due, limit))

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            key = (sink, outcome.position)
            current = self._deliveries[key]
            self._deliveries[key] = replace(
                current,
                status=outcome.status,
                attempts=current.attempts + 1,
                next_attempt_at=outcome.retry_at,
                last_error=outcome.error,
            )

    async def deliveries(
        self, *, sink: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        return [
            d
            for _, d in sorted(self._deliveries.items(), key=lambda item: item[0][1])
            if (sink is None or d.sink == sink) and (status is None or d.status is status)
        ]

    async def requeue(
        self, sink: str, *, since: float | None = None, event_id: str | None = None
    ) -> int:
        count = 0
        for key, delivery in self._deliveries.items():
            if not _requeueable(delivery, sink, event_id):
                continue
            if since is not None and self._committed_at[delivery.position] < since:
                continue
            self._deliveries[key] = replace(
                delivery, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=0.0
            )
            count += 1
        return count

    async def pending_count(self) -> int:
        return sum(d.status is DeliveryStatus.PENDING for d in self._deliveries.values())

    async def disable_sink(self, sink: str, reason: str) -> None:
        self._disabled[sink] = reason

    async def enable_sink(self, sink: str) -> bool:
        return self._disabled.pop(sink, None) is not None

    async def disabled_sinks(self) -> dict[str, str]:
        return dict(self._disabled)

    async def close(self) -> None:
        """Nothing to release; here so both stores close the same way."""

    # -- CredentialStore -------------------------------------------------------------------
    async def load_credentials(self, key: str) -> str | None:
        return self._credentials.get(key)

    async def save_credentials(self, key: str, value: str) -> None:
        self._credentials[key] = value


def _requeueable(delivery: Delivery, sink: str, event_id: str | None) -> bool:
    return (
        delivery.sink == sink
        and delivery.status is DeliveryStatus.PARKED
        and (event_id is None or delivery.event.id == event_id)
    )
