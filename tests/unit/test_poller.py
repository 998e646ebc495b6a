"""SourcePoller: read, diff, commit together, with a scripted provider and MemoryStore."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from notifier.envelope import OutboxEvent
from notifier.errors import FatalProviderError, RetriableProviderError, StoreError
from notifier.model import SourceId, TicketId, TicketRecord, TicketStatus, TicketTypeId
from notifier.pii import hash_value
from notifier.poller import Route, SourcePoller, SourceSettings
from notifier.providers.base import PollResult, WireTickets
from notifier.state import TicketState, TicketTypeState, wire_fingerprint
from notifier.store.base import Routed
from notifier.store.memory import MemoryStore
from tests.strategies import ALICE, SOURCE, record

SCAN = datetime(2025, 6, 1, 21, 0, tzinfo=UTC)
SETTINGS = SourceSettings(organizer="fabric", source=SOURCE, provider="shotgun")
UNSCANNED = [record("T1"), record("T2")]
T1_SCANNED = [record("T1", checked_in_at=SCAN), record("T2")]


def page(records: Sequence[TicketRecord], cursor: str) -> PollResult:
    return PollResult(tickets=records, cursor=cursor, requests=2)


class ScriptedProvider:
    """Answers each poll with the next scripted result, or raises the scripted error."""

    def __init__(self, *steps: PollResult | Exception) -> None:
        self._steps = list(steps)
        self.cursors: list[str | None] = []

    @property
    def name(self) -> str:
        return "shotgun"

    async def poll(self, cursor: str | None) -> PollResult:
        self.cursors.append(cursor)
        step = self._steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def close(self) -> None:
        """Nothing to release."""


class FlakyStore(MemoryStore):
    """A MemoryStore whose next ``failures`` commits raise, remembering what they were given."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.refused: list[Routed] = []

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
        if self.failures:
            self.failures -= 1
            self.refused.extend(events)
            raise StoreError("disk I/O error")
        await super().commit(
            source,
            tickets=tickets,
            events=events,
            cursor=cursor,
            ticket_types=ticket_types,
            epoch=epoch,
            settled=settled,
            ticket_events=ticket_events,
        )


class ReadBackStore(MemoryStore):
    """A MemoryStore that remembers which tickets' states the poller read back."""

    def __init__(self) -> None:
        super().__init__()
        self.read_back: list[list[TicketId]] = []

    async def ticket_states(
        self, source: SourceId, ticket_ids: Collection[TicketId]
    ) -> dict[TicketId, TicketState]:
        self.read_back.append(sorted(ticket_ids))
        return await super().ticket_states(source, ticket_ids)


class Clock:
    """A poll clock that advances a minute per reading, so detected_at differs per poll."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 21, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def everywhere(event: OutboxEvent) -> Sequence[str]:
    return ["kafka", "crm"]


def poller(
    provider: ScriptedProvider,
    store: MemoryStore,
    settings: SourceSettings = SETTINGS,
    route: Route = everywhere,
) -> SourcePoller:
    return SourcePoller(settings, provider=provider, store=store, route=route, clock=Clock())


async def committed_ids(store: MemoryStore, sink: str = "kafka") -> list[str]:
    return [d.event.id for d in await store.deliveries(sink=sink)]


async def test_first_poll_is_a_silent_baseline() -> None:
    """The first poll records every ticket and the cursor, and emits nothing."""
    store = MemoryStore()
    report = await poller(ScriptedProvider(page(T1_SCANNED, "c1")), store).poll_once()
    assert (report.baseline, report.events, report.records, report.requests) == (True, [], 2, 2)
    snapshot = await store.load(SOURCE)
    assert (set(snapshot.tickets), snapshot.cursor, snapshot.polled) == ({"T1", "T2"}, "c1", True)
    assert await store.deliveries() == []


async def test_second_poll_emits_and_commits() -> None:
    """After the baseline, a change is emitted, committed to the outbox, and the cursor moves."""
    store = MemoryStore()
    provider = ScriptedProvider(page(UNSCANNED, "c1"), page(T1_SCANNED, "c2"))
    source = poller(provider, store)
    await source.poll_once()
    report = await source.poll_once()
    assert report.baseline is False
    assert [(e.type, e.subject) for e in report.events] == [("ticket.checked_in", "T1")]
    assert await committed_ids(store) == [report.events[0].id]
    assert provider.cursors == [None, "c1"]
    snapshot = await store.load(SOURCE)
    assert snapshot.cursor == "c2"
    assert snapshot.tickets[TicketId("T1")].checked_in_at == SCAN


async def test_poller_resumes_from_the_stored_state() -> None:
    """A new poller on a store that was polled before sends its cursor and diffs against it."""
    store = MemoryStore()
    await poller(ScriptedProvider(page(UNSCANNED, "c1")), store).poll_once()
    provider = ScriptedProvider(page(T1_SCANNED, "c2"))
    report = await poller(provider, store).poll_once()
    assert provider.cursors == ["c1"]
    assert [e.type for e in report.events] == ["ticket.checked_in"]


async def test_only_changed_tickets_are_read_back_from_the_store() -> None:
    """Unchanged tickets are skipped on their digest; a new one has nothing to read back."""
    store = ReadBackStore()
    provider = ScriptedProvider(
        page(UNSCANNED, "c1"),
        page([*T1_SCANNED, record("T3")], "c2"),
        page([*T1_SCANNED, record("T3")], "c3"),
    )
    source = poller(provider, store)
    for _ in range(3):
        await source.poll_once()
    assert store.read_back == [[], ["T1"], []]


async def test_a_restarted_poller_remembers_digests_not_states() -> None:
    """After a restart the poller loads one digest per ticket, and still sees the change."""
    store = ReadBackStore()
    await poller(ScriptedProvider(page(UNSCANNED, "c1")), store).poll_once()
    restarted = poller(ScriptedProvider(page(T1_SCANNED, "c2")), store)
    report = await restarted.poll_once()
    assert [(e.type, e.subject) for e in report.events] == [("ticket.checked_in", "T1")]
    assert store.read_back[-1] == ["T1"]
    data = json.loads(report.events[0].data)
    assert (data["before"]["checked_in_at"], data["after"]["checked_in_at"]) == (
        None,
        "2025-06-01T21:00:00Z",
    )


class CountingParser:
    """Parses the 'raw items' of scripted WireTickets (records standing for themselves)."""

    def __init__(self) -> None:
        self.parsed: list[str] = []

    def __call__(self, item: object) -> TicketRecord:
        if not isinstance(item, TicketRecord):
            raise FatalProviderError("malformed page: ticket is not a JSON object")
        self.parsed.append(item.ticket_id)
        return item


def unparsed(records: Sequence[object], parser: CountingParser, cursor: str) -> PollResult:
    """A provider's read left unparsed, digesting the tracked fields as an adapter would."""
    digests = [
        wire_fingerprint(
            (r.status, r.checked_in_at, r.holder) if isinstance(r, TicketRecord) else (str(r),)
        )
        for r in records
    ]
    ids = [TicketId(r.ticket_id if isinstance(r, TicketRecord) else str(r)) for r in records]
    return PollResult(tickets=WireTickets(ids, digests, records, parser), cursor=cursor)


async def test_unchanged_tickets_on_the_wire_are_never_parsed() -> None:
    """After a ticket has been read once, an unchanged one costs no parse at all."""
    parser, store = CountingParser(), ReadBackStore()
    source = poller(
        ScriptedProvider(
            unparsed(UNSCANNED, parser, "c1"),
            unparsed(T1_SCANNED, parser, "c2"),
            unparsed(T1_SCANNED, parser, "c3"),
        ),
        store,
    )
    await source.poll_once()
    report = await source.poll_once()
    assert [(e.type, e.subject) for e in report.events] == [("ticket.checked_in", "T1")]
    quiet = await source.poll_once()
    assert quiet.events == []
    assert parser.parsed == ["T1", "T2", "T1"]
    assert store.read_back == [[], ["T1"], []]


async def test_after_a_restart_each_ticket_is_parsed_once_then_skipped() -> None:
    """A restarted poller remembers state digests: it parses each ticket once to match them,
    emits nothing for the unchanged, and skips them unparsed from then on."""
    store = MemoryStore()
    await poller(ScriptedProvider(page(T1_SCANNED, "c1")), store).poll_once()
    parser = CountingParser()
    restarted = poller(
        ScriptedProvider(unparsed(T1_SCANNED, parser, "c2"), unparsed(T1_SCANNED, parser, "c3")),
        store,
    )
    assert (await restarted.poll_once()).events == []
    assert (await restarted.poll_once()).events == []
    assert parser.parsed == ["T1", "T2"]


async def test_a_malformed_ticket_on_the_wire_fails_the_poll_before_any_commit() -> None:
    """An unparsable new ticket fails the poll as an eager parse would: nothing committed."""
    parser, store = CountingParser(), MemoryStore()
    provider = ScriptedProvider(
        unparsed(UNSCANNED, parser, "c1"), unparsed([*T1_SCANNED, "T9"], parser, "c2")
    )
    source = poller(provider, store)
    await source.poll_once()
    with pytest.raises(FatalProviderError):
        await source.poll_once()
    assert (await store.load(SOURCE)).cursor == "c1"
    assert await store.deliveries() == []


def test_wire_tickets_keep_each_tickets_last_read_in_its_first_place() -> None:
    """A ticket read twice in one poll counts once: its last read, at its first position."""
    parser = CountingParser()
    first, again = record("T1"), record("T1", checked_in_at=SCAN)
    tickets = WireTickets(
        [TicketId("T1"), TicketId("T2"), TicketId("T1")],
        [1, 2, 3],
        [first, record("T2"), again],
        parser,
    )
    assert [(t, d) for t, d, _ in tickets.unparsed()] == [("T1", 3), ("T2", 2)]
    assert len(tickets) == 2
    assert parser.parsed == []
    assert tickets[0] is again
    assert [r.ticket_id for r in tickets[0:2]] == ["T1", "T2"]


async def test_provider_error_commits_nothing_and_keeps_the_cursor() -> None:
    """A failed read raises, commits nothing, and the next poll resumes from the old cursor."""
    store = MemoryStore()
    provider = ScriptedProvider(
        page(UNSCANNED, "c1"),
        RetriableProviderError("HTTP 503", status=503),
        page(T1_SCANNED, "c2"),
    )
    source = poller(provider, store)
    await source.poll_once()
    with pytest.raises(RetriableProviderError):
        await source.poll_once()
    assert (await store.load(SOURCE)).cursor == "c1"
    assert await store.deliveries() == []
    await source.poll_once()
    assert provider.cursors == [None, "c1", "c1"]


async def test_failed_commit_keeps_memory_so_the_retry_emits_the_same_ids() -> None:
    """A commit that raises leaves the poller's state as stored: the retry re-emits the same ids."""
    store = FlakyStore()
    provider = ScriptedProvider(
        page(UNSCANNED, "c1"), page(T1_SCANNED, "c2"), page(T1_SCANNED, "c2")
    )
    source = poller(provider, store)
    await source.poll_once()
    store.failures = 1
    with pytest.raises(StoreError):
        await source.poll_once()
    report = await source.poll_once()
    refused = [routed.event.id for routed in store.refused]
    assert refused
    assert [e.id for e in report.events] == refused
    assert await committed_ids(store) == refused
    assert provider.cursors == [None, "c1", "c1"]


async def test_dry_run_commits_nothing() -> None:
    """A dry run reports the events but writes no state, events or cursor."""
    store = MemoryStore()
    provider = ScriptedProvider(
        page(UNSCANNED, "c1"), page(T1_SCANNED, "c2"), page(T1_SCANNED, "c2")
    )
    source = poller(provider, store)
    await source.poll_once()
    dry = await source.poll_once(dry_run=True)
    assert [e.type for e in dry.events] == ["ticket.checked_in"]
    assert await store.deliveries() == []
    assert (await store.load(SOURCE)).cursor == "c1"
    real = await source.poll_once()
    assert [e.id for e in real.events] == [e.id for e in dry.events]


async def test_dry_run_of_a_first_poll_stays_a_baseline() -> None:
    """A dry run does not use up the baseline: the next real poll is still silent."""
    store = MemoryStore()
    provider = ScriptedProvider(page(UNSCANNED, "c1"), page(UNSCANNED, "c1"))
    source = poller(provider, store)
    await source.poll_once(dry_run=True)
    report = await source.poll_once()
    assert (report.baseline, report.events) == (True, [])


async def test_emit_existing_emits_on_the_first_poll() -> None:
    """With emit_existing the first poll issues every ticket it reads."""
    store = MemoryStore()
    settings = SourceSettings(
        organizer="fabric", source=SOURCE, provider="shotgun", emit_existing=True
    )
    report = await poller(ScriptedProvider(page(T1_SCANNED, "c1")), store, settings).poll_once()
    assert report.baseline is True
    assert [(e.type, e.subject) for e in report.events] == [
        ("ticket.issued", "T1"),
        ("ticket.checked_in", "T1"),
        ("ticket.issued", "T2"),
    ]
    assert len(await committed_ids(store)) == 3


async def test_route_decides_the_sinks_of_each_event() -> None:
    """Each committed event is owed to exactly the sinks route() returned for it."""
    store = MemoryStore()

    def by_type(event: OutboxEvent) -> Sequence[str]:
        return ["kafka", "doors"] if event.type == "ticket.checked_in" else ["kafka"]

    changed = [record("T1", checked_in_at=SCAN), record("T2", status=TicketStatus.VOID)]
    provider = ScriptedProvider(page(UNSCANNED, "c1"), page(changed, "c2"))
    source = poller(provider, store, route=by_type)
    await source.poll_once()
    await source.poll_once()
    owed = sorted((d.sink, d.event.type) for d in await store.deliveries())
    assert owed == [
        ("doors", "ticket.checked_in"),
        ("kafka", "ticket.checked_in"),
        ("kafka", "ticket.voided"),
    ]


async def test_pii_policy_applies_to_committed_data() -> None:
    """Under ``hash`` the committed payload holds digests, never the raw email."""
    store = MemoryStore()
    settings = SourceSettings(
        organizer="fabric",
        source=SOURCE,
        provider="shotgun",
        emit_existing=True,
        pii="hash",
        pii_key=b"k1",
    )
    await poller(ScriptedProvider(page([record("T1")], "c1")), store, settings).poll_once()
    (delivery,) = await store.deliveries(sink="kafka")
    assert ALICE.email is not None
    assert ALICE.email.encode() not in delivery.event.data
    data = json.loads(delivery.event.data)
    assert data["holder"]["email"] == hash_value(ALICE.email, b"k1")
    assert data["after"]["holder"]["email"] == hash_value(ALICE.email, b"k1")


async def test_a_rebuilt_state_never_reuses_an_event_id() -> None:
    """The same change detected under a new state (lost volume, moved shard) gets a new id,
    because each state's epoch is part of the id."""
    first, second = MemoryStore(), MemoryStore()
    for store in (first, second):
        source = poller(ScriptedProvider(page(UNSCANNED, "c1"), page(T1_SCANNED, "c2")), store)
        await source.poll_once()
        await source.poll_once()
    assert (await first.load(SOURCE)).epoch != (await second.load(SOURCE)).epoch
    assert set(await committed_ids(first)).isdisjoint(await committed_ids(second))


async def test_the_epoch_survives_a_restart() -> None:
    """After a restart the same state keeps its epoch, so a re-detected change keeps its id."""
    store = FlakyStore(failures=0)
    source = poller(ScriptedProvider(page(UNSCANNED, "c1")), store)
    await source.poll_once()
    epoch = (await store.load(SOURCE)).epoch
    restarted = poller(ScriptedProvider(page(T1_SCANNED, "c2")), store)
    await restarted.poll_once()
    assert epoch
    assert (await store.load(SOURCE)).epoch == epoch
