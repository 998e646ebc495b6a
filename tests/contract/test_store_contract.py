"""The store contract, written once and run against every ``StateStore``: memory, SQLite
and PostgreSQL (a real server the suite starts itself, tests/pg.py).

The shared tests take the ``store`` fixture, typed as the protocol the service holds, so a
new store plugs in by adding one entry to ``STORES`` (a factory opening it on a fresh
location with the test's clock) and passing them. Guarantees of the durable stores only
(durability across reopen, atomic commit, schema and permission refusals) follow the
shared suite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.envelope import OutboxEvent
from notifier.errors import StoreError
from notifier.model import Holder, SourceId, TicketId, TicketStatus
from notifier.state import TicketState
from notifier.store.base import Delivery, DeliveryStatus, Outcome, Routed, StateStore
from notifier.store.memory import MemoryStore
from notifier.store.postgres import PostgresStore
from notifier.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.pg import create_database

SOURCE = SourceId("shotgun-main")
OTHER = SourceId("tt")
SINKS = ("kafka", "crm")
SCAN = datetime(2025, 6, 1, 21, 0, 0, 123456, tzinfo=UTC)
T0 = 1_750_000_000.0


class FakeClock:
    """A wall clock (epoch seconds) the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def event(n: int, *, ticket: str = "T1") -> OutboxEvent:
    return OutboxEvent(
        id=f"evt-{n:04d}",
        type="ticket.checked_in",
        ce_source="/shotgun/fabric/shotgun-main",
        subject=ticket,
        time=SCAN,
        partition_key=f"shotgun:shotgun-main:{ticket}",
        organizer="fabric",
        source_id=str(SOURCE),
        data=b'{"n": %d, "name": "Zo\xc3\xab"}' % n,
    )


def state(sequence: int = 1, *, scanned: bool = True) -> TicketState:
    return TicketState(
        status=TicketStatus.VALID,
        checked_in_at=SCAN if scanned else None,
        checked_out_at=None,
        holder=Holder(first_name="Zoë", email="zoe@example.com"),
        sequence=sequence,
    )


TICKETS = {TicketId("T1"): state(1), TicketId("T2"): state(0, scanned=False)}


async def commit(
    store: StateStore,
    *events: OutboxEvent,
    sinks: Sequence[str] = SINKS,
    tickets: dict[TicketId, TicketState] | None = None,
    cursor: str | None = "c1",
    source: SourceId = SOURCE,
) -> None:
    await store.commit(
        source,
        tickets=tickets or {},
        events=[Routed(event=e, sinks=sinks) for e in events],
        cursor=cursor,
    )


async def positions(
    store: StateStore, sink: str = "crm", *, now: float = T0, limit: int = 100
) -> list[int]:
    return [d.position for d in await store.due(sink, now=now, limit=limit)]


async def only(store: StateStore, sink: str = "crm") -> Delivery:
    (delivery,) = await store.deliveries(sink=sink)
    return delivery


async def park_all(store: StateStore, sink: str = "crm") -> None:
    outcomes = [
        Outcome(p, DeliveryStatus.PARKED, error="boom") for p in await positions(store, sink)
    ]
    await store.record(sink, outcomes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _memory(_: Path, clock: FakeClock) -> StateStore:
    return MemoryStore(clock=clock)


async def _sqlite(tmp_path: Path, clock: FakeClock) -> StateStore:
    return await SqliteStore(tmp_path / "state.db", clock=clock).open()


# Every store the service can be given; each runs the whole shared suite below.
STORES: dict[str, Callable[[Path, FakeClock], Awaitable[StateStore]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
}


@pytest.fixture(params=[*sorted(STORES), "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StateStore]:
    if request.param == "postgres":  # a fresh database on the session's real server
        url = await create_database(request.getfixturevalue("postgres_admin_url"))
        opened: StateStore = await PostgresStore(url, clock=clock).open()
    else:
        opened = await STORES[request.param](tmp_path, clock)
    yield opened
    await opened.close()


# -- SnapshotStore ------------------------------------------------------------------------


async def test_unknown_source_loads_empty_and_unpolled(store: StateStore) -> None:
    """A source never committed has no tickets, no cursor and is not polled."""
    snapshot = await store.load(SOURCE)
    assert (snapshot.tickets, snapshot.cursor, snapshot.polled) == ({}, None, False)


async def test_commit_then_load_returns_tickets_cursor_and_polled(store: StateStore) -> None:
    """What a commit wrote is what load returns."""
    await commit(store, tickets=TICKETS, cursor="2025-06-01 21:00:00.123456_T1")
    snapshot = await store.load(SOURCE)
    assert snapshot.tickets == TICKETS
    assert (snapshot.cursor, snapshot.polled) == ("2025-06-01 21:00:00.123456_T1", True)


async def test_commit_with_no_cursor_still_marks_polled(store: StateStore) -> None:
    """A baseline that returned no cursor still counts as the first poll."""
    await commit(store, cursor=None)
    snapshot = await store.load(SOURCE)
    assert (snapshot.cursor, snapshot.polled) == (None, True)


async def test_commit_updates_only_the_given_tickets(store: StateStore) -> None:
    """A later commit replaces the tickets it names and keeps the others."""
    await commit(store, tickets=TICKETS)
    await commit(store, tickets={TicketId("T2"): state(5)}, cursor="c2")
    snapshot = await store.load(SOURCE)
    assert snapshot.tickets == {TicketId("T1"): state(1), TicketId("T2"): state(5)}
    assert snapshot.cursor == "c2"


async def test_sources_are_kept_apart(store: StateStore) -> None:
    """One source's tickets and cursor are invisible to another."""
    await commit(store, tickets=TICKETS)
    assert (await store.load(OTHER)).polled is False


async def test_load_as_fingerprints_gives_one_digest_per_ticket(store: StateStore) -> None:
    """What a poller keeps in memory: each ticket's digest, and no state."""
    await commit(store, tickets=TICKETS, cursor="c1")
    snapshot = await store.load(SOURCE, as_fingerprints=True)
    assert snapshot.tickets == {}
    assert snapshot.fingerprints == {ticket: s.fingerprint for ticket, s in TICKETS.items()}
    assert (snapshot.cursor, snapshot.polled) == ("c1", True)


async def test_ticket_states_reads_back_only_the_stored_ones_asked_for(store: StateStore) -> None:
    """More ids than one query binds, some unknown: exactly the stored ones come back."""
    stored = {TicketId(f"T{n}"): state(n) for n in range(1_200)}
    await commit(store, tickets=stored)
    await commit(store, tickets={TicketId("T7"): state(9)}, source=OTHER)
    asked = [TicketId(f"T{n}") for n in range(0, 2_400, 2)]
    states = await store.ticket_states(SOURCE, asked)
    assert states == {ticket: stored[ticket] for ticket in asked if ticket in stored}
    assert len(states) == 600
    assert await store.ticket_states(SOURCE, []) == {}


# -- Outbox -------------------------------------------------------------------------------


async def test_event_committed_twice_is_delivered_once(store: StateStore) -> None:
    """A re-committed event id (a poll repeated after a crash) adds no deliveries."""
    await commit(store, event(1))
    await commit(store, event(1), event(2))
    assert [d.event.id for d in await store.deliveries(sink="crm")] == ["evt-0001", "evt-0002"]


async def test_event_gets_one_delivery_per_sink(store: StateStore) -> None:
    """Each routed sink owes the event once; an event routed nowhere owes nothing."""
    await commit(store, event(1))
    await commit(store, event(2), sinks=())
    deliveries = await store.deliveries()
    assert sorted((d.sink, d.event.id) for d in deliveries) == [
        ("crm", "evt-0001"),
        ("kafka", "evt-0001"),
    ]


async def test_delivery_carries_the_committed_event(store: StateStore) -> None:
    """The event read back from the outbox equals the committed one, bytes and time included."""
    await commit(store, event(1))
    delivery = await only(store)
    assert delivery.event == event(1)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.PENDING,
        0,
        None,
    )


async def test_due_returns_pending_deliveries_in_position_order(store: StateStore) -> None:
    """due() lists one sink's pending deliveries in commit order."""
    await commit(store, event(3), event(1))
    await commit(store, event(2))
    due = await store.due("crm", now=T0, limit=10)
    assert [d.event.id for d in due] == ["evt-0003", "evt-0001", "evt-0002"]
    assert [d.position for d in due] == sorted(d.position for d in due)
    assert {d.sink for d in due} == {"crm"}


async def test_due_respects_the_limit(store: StateStore) -> None:
    """due() returns at most ``limit`` deliveries, the oldest first."""
    await commit(store, event(1), event(2), event(3))
    due = await store.due("crm", now=T0, limit=2)
    assert [d.event.id for d in due] == ["evt-0001", "evt-0002"]


async def test_due_waits_for_next_attempt_at(store: StateStore) -> None:
    """A delivery to retry later is not due before its next_attempt_at, and is due at it."""
    await commit(store, event(1), event(2))
    first, second = await positions(store)
    await store.record("crm", [Outcome(first, DeliveryStatus.PENDING, retry_at=T0 + 5)])
    assert await positions(store, now=T0 + 4.999) == [second]
    assert await positions(store, now=T0 + 5) == [first, second]


async def test_due_skips_delivered_and_parked(store: StateStore) -> None:
    """Only pending deliveries are due."""
    await commit(store, event(1), event(2), event(3))
    first, second, third = await positions(store)
    await store.record(
        "crm",
        [Outcome(first, DeliveryStatus.DELIVERED), Outcome(second, DeliveryStatus.PARKED)],
    )
    assert await positions(store) == [third]
    assert await positions(store, "kafka") == [first, second, third]


async def test_record_delivered(store: StateStore) -> None:
    """A delivered outcome sets the status and counts the attempt."""
    await commit(store, event(1))
    (position,) = await positions(store)
    await store.record("crm", [Outcome(position, DeliveryStatus.DELIVERED)])
    delivery = await only(store)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)


async def test_record_retry(store: StateStore) -> None:
    """A retry outcome keeps it pending with next_attempt_at and last_error."""
    await commit(store, event(1))
    (position,) = await positions(store)
    await store.record(
        "crm", [Outcome(position, DeliveryStatus.PENDING, retry_at=T0 + 300, error="HTTP 503")]
    )
    delivery = await only(store)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert (delivery.next_attempt_at, delivery.last_error) == (T0 + 300, "HTTP 503")


async def test_record_parked(store: StateStore) -> None:
    """A parked outcome moves it to the dead letters with its last error."""
    await commit(store, event(1))
    await park_all(store)
    delivery = await only(store)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.PARKED,
        1,
        "boom",
    )


async def test_record_counts_every_attempt(store: StateStore) -> None:
    """Each recorded outcome adds one attempt; a later success clears last_error."""
    await commit(store, event(1))
    (position,) = await positions(store)
    for attempt in range(3):
        retry = Outcome(position, DeliveryStatus.PENDING, retry_at=T0 + attempt, error="timeout")
        await store.record("crm", [retry])
    await store.record("crm", [Outcome(position, DeliveryStatus.DELIVERED)])
    delivery = await only(store)
    assert (delivery.attempts, delivery.last_error) == (4, None)


async def test_record_touches_only_its_sink(store: StateStore) -> None:
    """An outcome recorded for one sink leaves the other sink's delivery pending."""
    await commit(store, event(1))
    await park_all(store, "crm")
    kafka = await only(store, "kafka")
    assert (kafka.status, kafka.attempts) == (DeliveryStatus.PENDING, 0)


@pytest.mark.parametrize(
    ("sink", "status", "expected"),
    [
        (
            None,
            None,
            [
                ("crm", "evt-0001"),
                ("crm", "evt-0002"),
                ("kafka", "evt-0001"),
                ("kafka", "evt-0002"),
            ],
        ),
        ("crm", None, [("crm", "evt-0001"), ("crm", "evt-0002")]),
        (None, DeliveryStatus.PARKED, [("crm", "evt-0001")]),
        ("kafka", DeliveryStatus.PENDING, [("kafka", "evt-0001"), ("kafka", "evt-0002")]),
        ("kafka", DeliveryStatus.PARKED, []),
    ],
    ids=["all", "by-sink", "by-status", "by-both", "none-match"],
)
async def test_deliveries_filter_by_sink_and_status(
    store: StateStore,
    sink: str | None,
    status: DeliveryStatus | None,
    expected: list[tuple[str, str]],
) -> None:
    """deliveries() filters on sink and status, either or both."""
    await commit(store, event(1), event(2))
    first, _ = await positions(store)
    await store.record("crm", [Outcome(first, DeliveryStatus.PARKED)])
    found = await store.deliveries(sink=sink, status=status)
    assert sorted((d.sink, d.event.id) for d in found) == expected


async def test_requeue_by_sink(store: StateStore) -> None:
    """requeue() makes a sink's parked deliveries pending with no attempts, and counts them."""
    await commit(store, event(1), event(2), event(3))
    first, second, third = await positions(store)
    await store.record(
        "crm",
        [
            Outcome(first, DeliveryStatus.PARKED, error="boom"),
            Outcome(second, DeliveryStatus.PARKED, error="boom"),
            Outcome(third, DeliveryStatus.DELIVERED),
        ],
    )
    await park_all(store, "kafka")
    assert await store.requeue("crm") == 2
    assert await positions(store) == [first, second]
    requeued = await store.deliveries(sink="crm", status=DeliveryStatus.PENDING)
    assert [(d.attempts, d.next_attempt_at) for d in requeued] == [(0, 0.0), (0, 0.0)]
    assert len(await store.deliveries(sink="kafka", status=DeliveryStatus.PARKED)) == 3


async def test_requeue_by_event_id(store: StateStore) -> None:
    """requeue(event_id=...) requeues only that event's parked delivery."""
    await commit(store, event(1), event(2))
    await park_all(store)
    assert await store.requeue("crm", event_id="evt-0002") == 1
    assert [d.event.id for d in await store.due("crm", now=T0, limit=10)] == ["evt-0002"]


async def test_requeue_since(store: StateStore, clock: FakeClock) -> None:
    """requeue(since=...) requeues parked deliveries of events committed at or after it."""
    await commit(store, event(1))
    clock.now = T0 + 100
    await commit(store, event(2))
    clock.now = T0 + 200
    await commit(store, event(3))
    await park_all(store)
    assert await store.requeue("crm", since=T0 + 100) == 2
    assert [d.event.id for d in await store.due("crm", now=T0, limit=10)] == [
        "evt-0002",
        "evt-0003",
    ]


async def test_requeue_with_nothing_parked_counts_zero(store: StateStore) -> None:
    """requeue() of a sink with nothing parked changes nothing and returns 0."""
    await commit(store, event(1))
    assert await store.requeue("crm") == 0
    assert await store.requeue("nowhere") == 0


async def test_pending_count(store: StateStore) -> None:
    """pending_count() counts pending deliveries across sinks."""
    assert await store.pending_count() == 0
    await commit(store, event(1), event(2))
    await park_all(store, "crm")
    assert await store.pending_count() == 2


async def test_disable_and_enable_sink(store: StateStore) -> None:
    """A disabled sink is listed with its reason until enabled; enable says if it was off."""
    assert await store.disabled_sinks() == {}
    await store.disable_sink("crm", "410 Gone")
    assert await store.disabled_sinks() == {"crm": "410 Gone"}
    assert await store.enable_sink("crm") is True
    assert await store.enable_sink("crm") is False
    assert await store.disabled_sinks() == {}


# -- SQLite only --------------------------------------------------------------------------


async def open_sqlite(path: Path) -> SqliteStore:
    return await SqliteStore(path).open()


async def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    """Tickets, cursor, outbox and sink switches are all there after close and reopen."""
    path = tmp_path / "state.db"
    store = await open_sqlite(path)
    await commit(store, event(1), tickets=TICKETS, cursor="c9")
    await park_all(store)
    await store.disable_sink("kafka", "410 Gone")
    before = await store.deliveries()
    await store.close()
    reopened = await open_sqlite(path)
    try:
        snapshot = await reopened.load(SOURCE)
        assert (snapshot.tickets, snapshot.cursor, snapshot.polled) == (TICKETS, "c9", True)
        assert await reopened.deliveries() == before
        assert await reopened.disabled_sinks() == {"kafka": "410 Gone"}
    finally:
        await reopened.close()


async def test_sqlite_failed_commit_leaves_nothing(tmp_path: Path) -> None:
    """A commit that fails midway writes no tickets, no events and no cursor."""
    store = await open_sqlite(tmp_path / "state.db")
    try:
        await commit(store, event(1), tickets={TicketId("T1"): state(1)}, cursor="c1")
        # The second event's duplicate sink violates the deliveries primary key, after the
        # tickets and the first event were already written inside the transaction.
        routed = [Routed(event(2), SINKS), Routed(event(3), ("crm", "crm"))]
        with pytest.raises(StoreError):
            await store.commit(SOURCE, tickets=TICKETS, events=routed, cursor="c2")
        snapshot = await store.load(SOURCE)
        assert (snapshot.tickets, snapshot.cursor) == ({TicketId("T1"): state(1)}, "c1")
        assert {d.event.id for d in await store.deliveries()} == {"evt-0001"}
    finally:
        await store.close()


async def test_sqlite_failed_first_commit_leaves_source_unpolled(tmp_path: Path) -> None:
    """A failed first commit leaves the source as if never polled."""
    store = await open_sqlite(tmp_path / "state.db")
    try:
        with pytest.raises(StoreError):
            await commit(store, event(1), sinks=("crm", "crm"), tickets=TICKETS)
        snapshot = await store.load(SOURCE)
        assert (snapshot.tickets, snapshot.polled) == ({}, False)
        assert await store.pending_count() == 0
    finally:
        await store.close()


async def test_sqlite_store_recovers_after_a_failed_commit(tmp_path: Path) -> None:
    """After a rolled-back commit the next commit goes through."""
    store = await open_sqlite(tmp_path / "state.db")
    try:
        with pytest.raises(StoreError):
            await commit(store, event(1), sinks=("crm", "crm"))
        await commit(store, event(1), cursor="c2")
        assert (await store.load(SOURCE)).cursor == "c2"
    finally:
        await store.close()


async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    """A database written by a newer build (higher user_version) is refused."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = SqliteStore(path)
    try:
        with pytest.raises(StoreError, match="newer"):
            await store.open()
    finally:
        await store.close()


async def test_sqlite_read_only_file_refuses_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a read-only database, load still works and commit raises StoreError."""
    path = tmp_path / "state.db"
    store = await open_sqlite(path)
    await commit(store, tickets=TICKETS, cursor="c1")
    await store.close()
    # SQLite's own read-only mode: file permissions do not bind root, which runs CI here.
    connect = sqlite3.connect

    def read_only(database: str, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(f"file:{database}?mode=ro", uri=True, **kwargs)
        return connection

    monkeypatch.setattr(sqlite3, "connect", read_only)
    store = await open_sqlite(path)
    try:
        assert (await store.load(SOURCE)).cursor == "c1"
        with pytest.raises(StoreError, match="readonly"):
            await commit(store, event(1), cursor="c2")
        assert (await store.load(SOURCE)).cursor == "c1"
    finally:
        await store.close()


async def test_the_epoch_is_written_once(store: StateStore) -> None:
    """The first commit fixes a source's epoch; later commits cannot change it."""
    await store.commit(SOURCE, tickets={}, events=[], cursor="c1", epoch="e1")
    await store.commit(SOURCE, tickets={}, events=[], cursor="c2", epoch="e2")
    snapshot = await store.load(SOURCE)
    assert (snapshot.epoch, snapshot.cursor) == ("e1", "c2")


async def test_a_settled_baseline_stays_settled(store: StateStore) -> None:
    """An unfinished baseline reads back unsettled; once settled, a later commit can't undo it."""
    await store.commit(SOURCE, tickets={}, events=[], cursor="c1", settled=False)
    assert not (await store.load(SOURCE)).settled
    await store.commit(SOURCE, tickets={}, events=[], cursor="c2", settled=True)
    await store.commit(SOURCE, tickets={}, events=[], cursor="c3", settled=False)
    assert (await store.load(SOURCE)).settled


# -- CredentialStore ----------------------------------------------------------------------


async def test_credentials_unknown_key_loads_none(store: StateStore) -> None:
    assert await store.load_credentials("eventpop:grant:abc") is None


async def test_credentials_save_replaces_and_keys_stay_apart(store: StateStore) -> None:
    await store.save_credentials("a", "sealed-1")
    await store.save_credentials("b", "other")
    await store.save_credentials("a", "sealed-2")
    assert await store.load_credentials("a") == "sealed-2"
    assert await store.load_credentials("b") == "other"


async def test_sqlite_credentials_survive_reopening(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path / "state.db")
    await store.save_credentials("grant", "sealed")
    await store.close()
    store = await open_sqlite(tmp_path / "state.db")
    assert await store.load_credentials("grant") == "sealed"
    await store.close()
