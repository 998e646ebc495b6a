"""What the PostgreSQL store guarantees beyond the shared contract: atomic commits, schema
migrations under a lock, secrets kept out of errors, ownership by lease (fencing), and
retention, PII forms and write-failure counting as SqliteStore has them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from prometheus_client import REGISTRY

from notifier.envelope import OutboxEvent
from notifier.errors import StoreError
from notifier.model import SourceId, TicketId
from notifier.store import pg_leases
from notifier.store.base import DeliveryStatus, Outcome, Routed, StateStore
from notifier.store.pg_migrations import MIGRATIONS, SCHEMA_VERSION
from notifier.store.postgres import LeaseLost, PostgresStore
from tests.contract.test_store_contract import (
    OTHER,
    SINKS,
    SOURCE,
    T0,
    TICKETS,
    FakeClock,
    commit,
    event,
    state,
)

DAY = 86_400.0


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore(postgres_url).open()
    yield opened
    await opened.close()


async def replica(url: str, name: str) -> PostgresStore:
    return await PostgresStore(url, replica=name).open()


async def take(store: PostgresStore, *sources: SourceId, ttl: float = 30.0) -> dict[SourceId, int]:
    """Claim these sources' leases for the store's replica, as its keeper would."""
    assert store.replica is not None
    async with store.connection() as conn:
        await pg_leases.register(conn, list(sources))
        got = await pg_leases.claim(conn, store.replica, list(sources), len(sources), ttl)
    store.held.update(got)
    return got


async def test_failed_commit_leaves_nothing(store: PostgresStore) -> None:
    """A commit that fails midway writes no tickets, no events and no cursor."""
    await commit(store, event(1), tickets={TicketId("T1"): state(1)}, cursor="c1")
    routed = [Routed(event(2), SINKS), Routed(event(3), ("crm", "crm"))]
    with pytest.raises(StoreError):
        await store.commit(SOURCE, tickets=TICKETS, events=routed, cursor="c2")
    snapshot = await store.load(SOURCE)
    assert (snapshot.tickets, snapshot.cursor) == ({TicketId("T1"): state(1)}, "c1")
    assert {d.event.id for d in await store.deliveries()} == {"evt-0001"}
    await commit(store, event(4), cursor="c3")  # and the next commit goes through
    assert (await store.load(SOURCE)).cursor == "c3"


async def test_state_survives_reopening(postgres_url: str) -> None:
    """Tickets, cursor, outbox and sink switches are there for the next process."""
    first = await PostgresStore(postgres_url).open()
    await commit(first, event(1), tickets=TICKETS, cursor="c9")
    await first.disable_sink("kafka", "410 Gone")
    before = await first.deliveries()
    await first.close()
    second = await PostgresStore(postgres_url).open()
    try:
        snapshot = await second.load(SOURCE)
        assert (snapshot.tickets, snapshot.cursor) == (TICKETS, "c9")
        assert await second.deliveries() == before
        assert await second.disabled_sinks() == {"kafka": "410 Gone"}
    finally:
        await second.close()


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    """Eight stores opening at once on an empty database: all open, each migration ran once."""
    stores = await asyncio.gather(*(PostgresStore(postgres_url).open() for _ in range(8)))
    for opened in stores:
        await opened.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [row[0] for row in versions] == list(range(1, SCHEMA_VERSION + 1))


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    """A database migrated by a newer build is not written by this one."""
    await (await PostgresStore(postgres_url).open()).close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)", SCHEMA_VERSION + 1
        )
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="newer"):
        await PostgresStore(postgres_url).open()


async def test_a_connection_error_never_shows_the_password() -> None:
    """An unreachable server is a StoreError naming the database, with the password masked."""
    url = "postgresql://notifier:hunter2-secret@/notifier?host=/nonexistent-socket-dir&port=5"
    with pytest.raises(StoreError) as caught:
        await PostgresStore(url).open()
    message = str(caught.value)
    assert "hunter2" not in message
    assert "notifier:***@" in message
    assert (
        caught.value.__suppress_context__
    )  # the driver's error (which may quote it) is not chained


# -- ownership by lease ---------------------------------------------------------------------


async def test_a_commit_without_the_lease_is_refused(postgres_url: str) -> None:
    """A replica that never claimed a source cannot commit it."""
    a = await replica(postgres_url, "a")
    try:
        with pytest.raises(LeaseLost):
            await commit(a, event(1), tickets=TICKETS)
        assert (await a.load(SOURCE)).polled is False
    finally:
        await a.close()


async def test_a_stale_owner_cannot_commit_after_a_takeover(postgres_url: str) -> None:
    """A's lease expires, B claims the source (new generation): A's commit changes nothing."""
    a, b = await replica(postgres_url, "a"), await replica(postgres_url, "b")
    try:
        await take(a, SOURCE, ttl=0.3)
        await commit(a, event(1), cursor="a1")
        await asyncio.sleep(0.4)
        assert await take(b, SOURCE) == {SOURCE: 2}
        with pytest.raises(LeaseLost):
            await commit(a, event(2), tickets=TICKETS, cursor="a2")
        await commit(b, event(3), cursor="b1")
        snapshot = await b.load(SOURCE)
        assert (snapshot.cursor, snapshot.tickets) == ("b1", {})
        assert [d.event.id for d in await b.deliveries(sink="crm")] == ["evt-0001", "evt-0003"]
    finally:
        await a.close()
        await b.close()


async def test_an_expired_lease_refuses_even_when_nobody_took_it(postgres_url: str) -> None:
    """The database's clock decides: past expiry, the owner's commit is refused."""
    a = await replica(postgres_url, "a")
    try:
        await take(a, SOURCE, ttl=0.2)
        await asyncio.sleep(0.3)
        with pytest.raises(LeaseLost):
            await commit(a, event(1))
        assert await a.pending_count() == 0
    finally:
        await a.close()


async def test_a_claim_waits_for_nobody_and_skips_a_committing_owner(postgres_url: str) -> None:
    """A lease row locked by an in-flight commit is skipped, not taken, by a claim; the
    owner's own renewal does not wait for the commit."""
    a, b = await replica(postgres_url, "a"), await replica(postgres_url, "b")
    try:
        await take(a, SOURCE, ttl=0.3)
        async with a.connection(transaction=True) as conn:
            assert await pg_leases.fence(conn, SOURCE, owner="a", generation=a.held[SOURCE])
            async with a.connection() as own:  # a renewal in the meantime is not blocked
                renewed = await asyncio.wait_for(pg_leases.renew(own, "a", 0.3), timeout=5)
            assert renewed == {SOURCE: 1}
            await asyncio.sleep(0.4)  # the lease expires while the commit is in flight
            async with b.connection() as other:
                assert await pg_leases.claim(other, "b", [SOURCE], 1, 30.0) == {}
        assert await take(b, SOURCE) == {SOURCE: 2}
    finally:
        await a.close()
        await b.close()


async def test_due_lists_only_the_sources_a_replica_holds(postgres_url: str) -> None:
    """Each replica delivers its own sources' events; a new owner takes over the pending ones."""
    a, b = await replica(postgres_url, "a"), await replica(postgres_url, "b")
    try:
        await take(a, SOURCE)
        await take(b, OTHER)
        await commit(a, event(1), source=SOURCE)
        await b.commit(OTHER, tickets={}, events=[Routed(other_event(2), SINKS)], cursor="x")
        assert [d.event.id for d in await a.due("crm", now=1e12, limit=10)] == ["evt-0001"]
        assert [d.event.id for d in await b.due("crm", now=1e12, limit=10)] == ["evt-0002"]
        async with a.connection() as conn:
            await pg_leases.leave(conn, "a")
        await take(b, SOURCE)
        due = await b.due("crm", now=1e12, limit=10)
        assert [d.event.id for d in due] == ["evt-0001", "evt-0002"]
        assert await a.due("crm", now=1e12, limit=10) == []
    finally:
        await a.close()
        await b.close()


def other_event(n: int) -> OutboxEvent:
    return replace(event(n), source_id=str(OTHER))


# -- retention, PII forms, readiness -----------------------------------------------------------


async def test_a_ticket_keeps_its_event_until_retired(store: PostgresStore) -> None:
    """A commit that does not name a ticket's event keeps the one named before; retiring the
    event removes its tickets (only those), returns their ids and remembers the event."""
    t1, t2, t3 = TicketId("T1"), TicketId("T2"), TicketId("T3")
    await store.commit(
        SOURCE,
        tickets={t1: state(1), t2: state(2), t3: state(3)},
        events=[],
        cursor="c1",
        ticket_events={t1: "ev-old", t2: "ev-old", t3: "ev-new"},
    )
    await store.commit(SOURCE, tickets={t1: state(5)}, events=[], cursor="c2")  # names none
    await store.commit(
        OTHER, tickets={t1: state(1)}, events=[], cursor="x", ticket_events={t1: "ev-old"}
    )
    assert sorted(await store.retire_events(SOURCE, ["ev-old"])) == [t1, t2]
    snapshot = await store.load(SOURCE)
    assert snapshot.tickets == {t3: state(3)}
    assert snapshot.retired_events == frozenset({"ev-old"})
    assert (await store.load(OTHER)).tickets == {t1: state(1)}  # another source's, untouched
    assert (await store.load(OTHER)).retired_events == frozenset()
    assert await store.retire_events(SOURCE, ["ev-old"]) == []  # twice: nothing more, no error


async def test_retiring_without_the_lease_is_refused(postgres_url: str) -> None:
    """Retirement is fenced like a commit: a replica not holding the source deletes nothing."""
    plain = await PostgresStore(postgres_url).open()
    a = await replica(postgres_url, "a")
    try:
        tickets = {TicketId("T1"): state(1)}
        await plain.commit(
            SOURCE, tickets=tickets, events=[], cursor="c", ticket_events={TicketId("T1"): "ev"}
        )
        with pytest.raises(LeaseLost, match="retirement refused"):
            await a.retire_events(SOURCE, ["ev"])
        assert a.consecutive_write_failures == 0  # a lost lease is not a failing database
        snapshot = await plain.load(SOURCE)
        assert (snapshot.tickets, snapshot.retired_events) == (tickets, frozenset())
        await take(a, SOURCE)
        assert await a.retire_events(SOURCE, ["ev"]) == [TicketId("T1")]
    finally:
        await a.close()
        await plain.close()


async def test_prune_keeps_what_is_owed_and_parked_until_its_time(postgres_url: str) -> None:
    """Delivered everywhere: pruned after ``delivered_before``; pending anywhere: never;
    parked: kept until ``parked_before``; in batches, each event with its deliveries."""
    clock = FakeClock()
    store = await PostgresStore(postgres_url, clock=clock).open()
    try:
        for n in range(1, 6):  # five events delivered to both sinks, at T0 + n days
            clock.now = T0 + n * DAY
            await commit(store, event(n))
        clock.now = T0 + 6 * DAY
        await commit(store, event(6))  # stays pending for crm
        await commit(store, event(7))  # parked for crm
        for d in await store.deliveries():
            if d.event.id == "evt-0006" and d.sink == "crm":
                continue
            parked = d.event.id == "evt-0007" and d.sink == "crm"
            status = DeliveryStatus.PARKED if parked else DeliveryStatus.DELIVERED
            await store.record(d.sink, [Outcome(d.position, status)])

        async def prune(delivered: float, parked: float) -> tuple[int, int]:
            pruned = await store.prune_outbox(
                delivered_before=T0 + delivered * DAY, parked_before=T0 + parked * DAY, batch=2
            )
            return pruned.events, pruned.deliveries

        assert await prune(1, 1) == (0, 0)  # nothing committed before day 1
        assert await prune(4.5, 0) == (4, 8)  # days 1-4: two full batches
        assert await prune(100, 6) == (1, 2)  # day 5; 7 parked is young, 6 still pending
        assert await prune(100, 100) == (1, 2)  # the parked one, its time come
        assert [(d.event.id, d.sink) for d in await store.deliveries()] == [
            ("evt-0006", "crm"),
            ("evt-0006", "kafka"),
        ]
        assert await prune(1000, 1000) == (0, 0)  # the pending one is never pruned
    finally:
        await store.close()


async def test_file_bytes_is_the_database_size(store: PostgresStore) -> None:
    async with store.connection() as conn:
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    assert await store.file_bytes() == size > 0


async def test_pii_form_is_recorded_per_source_and_survives_reopening(postgres_url: str) -> None:
    first = await PostgresStore(postgres_url).open()
    assert await first.pii_form(SOURCE) is None  # never recorded: holders as read
    await first.set_pii_form(SOURCE, "hash:k1")
    await first.set_pii_form(SOURCE, "hash:k2")  # replaced, not added
    await first.set_pii_form(OTHER, "omit")
    await first.close()
    second = await PostgresStore(postgres_url).open()
    try:
        assert (await second.pii_form(SOURCE), await second.pii_form(OTHER)) == ("hash:k2", "omit")
    finally:
        await second.close()


async def test_write_failures_are_counted_until_a_write_succeeds(store: PostgresStore) -> None:
    """Failed writes in a row are counted (and the gauge set); the next success resets both."""
    state_store: StateStore = store  # the service holds it as a StateStore
    broken = [Routed(event(1), ("crm", "crm"))]  # one sink twice: the commit fails
    for failures in (1, 2):
        with pytest.raises(StoreError):
            await state_store.commit(SOURCE, tickets={}, events=broken, cursor="c")
        assert state_store.consecutive_write_failures == failures
        assert _gauge() == failures
    await state_store.set_pii_form(SOURCE, "omit")
    assert state_store.consecutive_write_failures == 0
    assert _gauge() == 0


async def test_a_database_of_schema_2_gains_retention(postgres_url: str) -> None:
    """Migration 3 on a database written by the previous build: its tickets are kept (with
    no event named) and can be named and retired from then on."""
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for number, sql in MIGRATIONS[:2]:
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", number)
        await conn.execute(
            "INSERT INTO tickets (source, ticket_id, state) VALUES ($1, 'T1', $2)",
            SOURCE,
            b"not decoded here",
        )
    finally:
        await conn.close()
    store = await PostgresStore(postgres_url).open()
    try:
        async with store.connection() as conn:
            assert await conn.fetchval("SELECT event_id FROM tickets") == ""
        assert await store.retire_events(SOURCE, ["ev"]) == []  # untagged: not retired
        await store.commit(
            SOURCE,
            tickets={TicketId("T1"): state(1)},
            events=[],
            cursor="c",
            ticket_events={TicketId("T1"): "ev"},
        )
        assert await store.retire_events(SOURCE, ["ev"]) == [TicketId("T1")]
    finally:
        await store.close()


def _gauge() -> float | None:
    return REGISTRY.get_sample_value("notifier_store_consecutive_write_failures")
