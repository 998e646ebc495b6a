"""One poll of one source: read, diff, and commit state + events + cursor together.

One process owns a source, so the store is written through and the poller remembers, in
memory, only a digest of each ticket's tracked fields (``TicketState.fingerprint``): a
ticket whose digest is unchanged is skipped, and the full previous state is read back
from the store only for the few that changed, whose events need their ``before``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from notifier.diff import DiffContext, diff_tickets
from notifier.envelope import OutboxEvent, to_outbox_event
from notifier.events import TicketEvent
from notifier.inventory_diff import diff_ticket_types
from notifier.model import SourceId, TicketId, TicketRecord, TicketTypeId
from notifier.pii import (
    PiiPolicy,
    apply_pii,
    migrated_holder,
    rebase_holder,
    state_form,
    state_record,
)
from notifier.providers.base import EventWindow, PollResult, Provider, WireTickets
from notifier.state import TicketState, TicketTypeState, record_fingerprint
from notifier.store.base import Routed, SnapshotStore

log = structlog.get_logger(__name__)

# Stored states rewritten per transaction when the holder form changes (a policy switch).
_MIGRATION_CHUNK = 1000

Route = Callable[[OutboxEvent], Sequence[str]]


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """What the poller needs to know about a source beyond its provider adapter."""

    organizer: str
    source: SourceId
    provider: str
    emit_existing: bool = False
    pii: PiiPolicy = "include"
    pii_key: bytes = b""
    # How long an inventory count must hold before it is reported (notifier.inventory_diff).
    inventory_settle: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        # An empty key would make the stored digests of guessable emails reversible.
        if self.pii != "include" and not self.pii_key:
            raise ValueError(f"pii '{self.pii}' needs pii_key (defaults.pii_hash_key)")


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll did: the events it committed (or would have, in a dry run)."""

    events: list[OutboxEvent]
    records: int
    requests: int
    baseline: bool
    # Seconds from the provider's time of each change to its commit.
    latencies: list[float] = field(default_factory=list)
    event_windows: Mapping[str, EventWindow] = field(default_factory=dict)
    more: bool = False  # the read stopped at its page cap: poll again at once


class SourcePoller:
    def __init__(
        self,
        settings: SourceSettings,
        *,
        provider: Provider,
        store: SnapshotStore,
        route: Route,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self._provider = provider
        self._store = store
        self._route = route
        self._clock = clock
        self._fingerprints: dict[TicketId, int] | None = None
        self._types: dict[TicketTypeId, TicketTypeState] = {}
        self._cursor: str | None = None
        self._settled = False
        self._epoch = ""
        self._form_settled = False
        # Events retention retired (ended long ago): their tickets are not kept, here or in
        # the store, and not announced as new should the provider still list them.
        self._retired: set[str] = set()

    @property
    def settled(self) -> bool:
        """Whether this source's baseline is complete (known after its first load)."""
        return self._settled

    async def poll_once(self, *, dry_run: bool = False, full: bool = False) -> PollReport:
        """Read everything since the cursor and commit it; raises ProviderError/StoreError.

        ``full`` reads from scratch (a reconcile sweep) but diffs against the stored state
        as usual, so it emits only what the incremental reads missed.
        """
        await self.load()
        if not dry_run:
            await self._settle_pii_form()
        result = await self._provider.poll(None if full else self._cursor)
        changed, wire_digests = self._changed(result.tickets)
        before, rebased = self._rebased(await self._stored_states(changed), changed)
        # A baseline may span several bounded polls: it stays silent until it has read the
        # source to its end (``more`` false), even across a restart.
        baseline = not self._settled
        context = self._context()
        if baseline and not self._epoch:
            # Random, not the clock: two rebuilds of one source's state must never share it.
            # A crash before the first commit emitted nothing under it, so losing it is fine.
            self._epoch = secrets.token_hex(8)
        change = diff_tickets(
            before,
            changed,
            context=context,
            emit_new=not baseline or self.settings.emit_existing,
        )
        # A holder only rebased (a policy switch, not a transfer) is still stored anew.
        states = {ticket: before[ticket] for ticket in rebased} | change.states
        inventory = diff_ticket_types(
            self._types,
            result.ticket_types,
            context=context,
            settle=self.settings.inventory_settle,
        )
        events = [self._envelope(event) for event in change.events]
        events += [to_outbox_event(event, epoch=self._epoch) for event in inventory.events]
        if not dry_run:
            ticket_events = {record.ticket_id: record.event_id for record in changed}
            await self._commit(
                result, states, inventory.states, events, wire_digests, ticket_events
            )
        committed_at = self._clock()
        latencies = [
            (committed_at - event.occurred_at).total_seconds()
            for event in [*change.events, *inventory.events]
            if event.occurred_at is not None
        ]
        log.info(
            "poll_committed" if not dry_run else "poll_dry_run",
            records=len(result.tickets),
            events=len(events),
            requests=result.requests,
            baseline=baseline,
        )
        return PollReport(
            events=events,
            records=len(result.tickets),
            requests=result.requests,
            baseline=baseline,
            latencies=latencies,
            event_windows=result.event_windows,
            more=result.more,
        )

    def unload(self) -> None:
        """Forget what was loaded: another replica may have moved the source on since."""
        self._fingerprints = None

    async def load(self) -> None:
        """Read the source's state from the store, once (later calls do nothing)."""
        if self._fingerprints is None:
            snapshot = await self._store.load(self.settings.source, as_fingerprints=True)
            self._fingerprints = snapshot.fingerprints
            self._types = snapshot.ticket_types
            self._cursor = snapshot.cursor
            self._settled = snapshot.settled
            self._epoch = snapshot.epoch
            self._retired = set(snapshot.retired_events)

    async def retire(self, event_ids: Sequence[str]) -> int:
        """Forget the tickets of events that ended long ago, in the store and in memory
        (docs/reliability.md, retention); returns how many tickets were forgotten.

        Called between polls by the loop that runs them, never during one: a poll in flight
        would otherwise announce a just-forgotten ticket as new.
        """
        await self.load()
        fresh = [event_id for event_id in event_ids if event_id not in self._retired]
        if not fresh:
            return 0
        removed = await self._store.retire_events(self.settings.source, fresh)
        self._retired.update(fresh)
        assert self._fingerprints is not None
        for ticket in removed:
            self._fingerprints.pop(ticket, None)
        if removed:
            log.info("tickets_retired", events=len(fresh), tickets=len(removed))
        return len(removed)

    async def _settle_pii_form(self) -> None:
        """Bring the stored holders to the form of the current policy and key, once.

        The state at rest follows the policy (docs/operations.md, "Privacy"): holders kept as
        read are replaced by their digests when the policy becomes ``hash`` or ``omit``, and
        digests that cannot be carried over (another key) are forgotten. Each chunk is its
        own transaction; the form is recorded last, so a crash only repeats the move.
        """
        if self._form_settled:
            return
        settings = self.settings
        form = state_form(settings.pii, settings.pii_key)
        stored = await self._store.pii_form(settings.source) or "include"
        if stored != form:
            assert self._fingerprints is not None
            ids = list(self._fingerprints)
            for start in range(0, len(ids), _MIGRATION_CHUNK):
                states = await self._store.ticket_states(
                    settings.source, ids[start : start + _MIGRATION_CHUNK]
                )
                moved = {
                    ticket: replace(
                        state,
                        holder=migrated_holder(
                            state.holder, stored, settings.pii, settings.pii_key
                        ),
                    )
                    for ticket, state in states.items()
                }
                moved = {
                    ticket: state for ticket, state in moved.items() if state != states[ticket]
                }
                if moved:
                    await self._store.commit(
                        settings.source,
                        tickets=moved,
                        events=[],
                        cursor=self._cursor,
                        epoch=self._epoch,
                        settled=self._settled,
                    )
                    self._fingerprints.update((t, s.fingerprint) for t, s in moved.items())
            await self._store.set_pii_form(settings.source, form)
            log.info("pii_form_changed", source=settings.source, tickets=len(ids))
        self._form_settled = True

    def _rebased(
        self, before: dict[TicketId, TicketState], changed: Sequence[TicketRecord]
    ) -> tuple[dict[TicketId, TicketState], set[TicketId]]:
        """The stored states with holders comparable to the records', and which were rebased.

        Normally none is: ``_settle_pii_form`` moved them all. A dry run does not write, and a
        holder whose digests could not be carried over is unknown until its ticket is read.
        """
        settings = self.settings
        rebased: set[TicketId] = set()
        for record in changed:
            state = before.get(record.ticket_id)
            if state is None:
                continue
            holder = rebase_holder(state.holder, record.holder, settings.pii, settings.pii_key)
            if holder != state.holder:
                before[record.ticket_id] = replace(state, holder=holder)
                rebased.add(record.ticket_id)
        return before, rebased

    async def _commit(
        self,
        result: PollResult,
        states: dict[TicketId, TicketState],
        type_states: dict[TicketTypeId, TicketTypeState],
        events: list[OutboxEvent],
        wire_digests: dict[TicketId, int],
        ticket_events: dict[TicketId, str],
    ) -> None:
        routed = [Routed(event=event, sinks=tuple(self._route(event))) for event in events]
        await self._store.commit(
            self.settings.source,
            tickets=states,
            events=routed,
            cursor=result.cursor,
            ticket_types=type_states,
            epoch=self._epoch,
            settled=self._settled or not result.more,
            ticket_events=ticket_events,
        )
        # Only after the commit: a failed commit leaves memory as the store has it.
        assert self._fingerprints is not None
        self._fingerprints.update((ticket, state.fingerprint) for ticket, state in states.items())
        # Then the wire digests, where the adapter gave them: the state they were parsed
        # into is now the stored one, and the next read of the same wire fields is skipped
        # without parsing.
        self._fingerprints.update(wire_digests)
        self._types.update(type_states)
        self._cursor = result.cursor
        self._settled = self._settled or not result.more

    async def _stored_states(self, changed: Sequence[TicketRecord]) -> dict[TicketId, TicketState]:
        """The stored states of the changed tickets (their events' ``before``); a ticket
        never committed has none, so the store is not asked for it."""
        assert self._fingerprints is not None
        remembered = self._fingerprints
        ids = [record.ticket_id for record in changed if record.ticket_id in remembered]
        return await self._store.ticket_states(self.settings.source, ids)

    def _changed(
        self, records: Sequence[TicketRecord]
    ) -> tuple[list[TicketRecord], dict[TicketId, int]]:
        """The records whose tracked fields differ from what is remembered, or are new, and
        the wire digests to remember once they are committed.

        A ticket read twice in one poll (overlapping pages, a lookback) counts once, last
        read wins, as in ``diff_tickets``.
        """
        if isinstance(records, WireTickets):
            return self._changed_on_the_wire(records)
        assert self._fingerprints is not None
        known = self._fingerprints
        retired = self._retired
        latest = {
            record.ticket_id: self._private(record)
            for record in records
            if record.event_id not in retired
        }
        changed = [
            record
            for ticket, record in latest.items()
            if known.get(ticket) != record_fingerprint(record)
        ]
        return changed, {}

    def _changed_on_the_wire(
        self, tickets: WireTickets
    ) -> tuple[list[TicketRecord], dict[TicketId, int]]:
        """The same, parsing only the tickets whose wire digest is not the remembered one.

        After a restart the poller remembers state digests, which no wire digest equals:
        each ticket is parsed once, compared on its state digest, and from then on
        remembered by its wire digest.
        """
        assert self._fingerprints is not None
        known = self._fingerprints
        changed: list[TicketRecord] = []
        wire_digests: dict[TicketId, int] = {}
        for ticket, digest, item in tickets.unparsed():
            remembered = known.get(ticket)
            if remembered == digest:
                continue  # the common case of a sweep: no record is even built
            record = self._private(tickets.parse(item))
            if record.event_id in self._retired:
                continue  # its event ended long ago: retention forgot it on purpose
            wire_digests[ticket] = digest
            if remembered != record_fingerprint(record):
                changed.append(record)
        return changed, wire_digests

    def _private(self, record: TicketRecord) -> TicketRecord:
        """The record with its holder as the state keeps it under the policy (digests under
        ``hash`` and ``omit``): what the diff compares and the store commits."""
        return state_record(record, self.settings.pii, self.settings.pii_key)

    def _context(self) -> DiffContext:
        return DiffContext(
            provider=self.settings.provider,
            organizer=self.settings.organizer,
            source=self.settings.source,
            detected_at=self._clock(),
        )

    def _envelope(self, event: TicketEvent) -> OutboxEvent:
        private = apply_pii(event, self.settings.pii, key=self.settings.pii_key)
        return to_outbox_event(private, epoch=self._epoch)
