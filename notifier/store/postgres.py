"""The shared store: PostgreSQL through asyncpg, for any number of replicas (docs/postgres.md).

The same contract as ``SqliteStore`` (one transaction per commit: state, events and cursor),
plus ownership. A store opened with a ``replica`` name is that replica's view: every commit
is fenced by the source's lease (owner and generation checked, and the lease row key-share
locked, inside the commit's own transaction), and ``due`` lists only the deliveries of sources whose
lease it holds, so one ticket's events leave through one replica, in order. Without a replica
name (the CLI, ``notifier state copy``, the contract suite) it is unfenced, like SQLite.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from notifier.errors import StoreError
from notifier.model import SourceId, TicketId, TicketTypeId
from notifier.observability import STORE_WRITE_FAILURES
from notifier.state import TicketState, TicketTypeState
from notifier.store import pg_leases
from notifier.store.base import Delivery, DeliveryStatus, Outcome, Pruned, Routed, SourceSnapshot
from notifier.store.codec import decode_state, decode_type_state, encode_state, encode_type_state
from notifier.store.pg_migrations import NewerSchemaError, migrate
from notifier.store.pg_outbox import (
    due_deliveries,
    insert_event,
    list_deliveries,
    record_outcomes,
    requeue_parked,
    row_count,
)
from notifier.store.pg_retention import prune_batch, retire_events
from notifier.store.pg_url import redact

_T = TypeVar("_T")
# Rows per array-bound statement: one round trip each, bounded memory on the server.
_ROWS_PER_STATEMENT = 10_000
# What asyncpg raises for a lost connection, a refused login, a server error or a timeout.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class LeaseLost(StoreError):
    """A fenced commit found the source no longer leased to this replica: nothing was written."""


class PostgresStore:
    """SnapshotStore + Outbox + sink switches (+ leases when named) on one PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        replica: str | None = None,
        # Each poll's commit holds one for a few round trips and an fsync: the pool bounds
        # how many sources one replica can commit at once (figure 7, docs/benchmarks.md).
        max_connections: int = 10,
    ) -> None:
        self._url = url
        self._where = redact(url)  # errors and logs name the database, never its password
        self._clock = clock
        self.replica = replica
        self._max = max_connections
        self._pool: Any = None
        # Lease keeping's own connection: behind thousands of polls queued on the main pool
        # (a replica behind its cadence) a round would wait until its leases had expired.
        self._lease_pool: Any = None
        # source -> lease generation this replica holds, kept by the lease keeper.
        self.held: dict[SourceId, int] = {}
        # Writes (commits, retirements, delivery outcomes, pruning) failed in a row, reset by
        # the next success: /readyz reports a store that cannot write (as SqliteStore).
        self.consecutive_write_failures = 0

    async def open(self) -> PostgresStore:
        try:
            self._pool = await asyncpg.create_pool(
                dsn=self._url, min_size=1, max_size=self._max, command_timeout=60
            )
            async with self._pool.acquire() as conn:
                await migrate(conn)
            if self.replica is not None:
                self._lease_pool = await asyncpg.create_pool(
                    dsn=self._url, min_size=1, max_size=1, command_timeout=60
                )
        except NewerSchemaError as exc:
            await self.close()
            raise StoreError(f"state store {self._where}: {exc}") from None
        except (*_DRIVER_ERRORS, ValueError) as exc:
            await self.close()
            # `from None`: the driver's own message may quote the DSN, password included.
            raise StoreError(f"state store {self._where}: {_describe(exc)}") from None
        return self

    async def close(self) -> None:
        for name in ("_lease_pool", "_pool"):
            pool = getattr(self, name)
            if pool is not None:
                setattr(self, name, None)
                await pool.close()

    @asynccontextmanager
    async def connection(
        self, *, transaction: bool = False, leases: bool = False
    ) -> AsyncIterator[Any]:
        """One pooled connection (in a transaction if asked); driver errors become StoreError.

        ``leases``: the lease keeper's own connection, never queued behind polls.
        """
        pool = self._lease_pool if leases and self._lease_pool is not None else self._pool
        if pool is None:
            raise StoreError(f"state store {self._where}: store is not open")
        try:
            async with pool.acquire() as conn:
                if transaction:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"state store {self._where}: {_describe(exc)}") from None

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """Around a write: count consecutive failures for readiness, as SqliteStore does.

        A lost lease is not one: the database wrote fine, this replica merely no longer owns
        the source (ownership moves in every rolling update); it must not make /readyz fail.
        """
        try:
            yield
        except LeaseLost:
            raise
        except StoreError:
            self.consecutive_write_failures += 1
            STORE_WRITE_FAILURES.set(self.consecutive_write_failures)
            raise
        if self.consecutive_write_failures:
            self.consecutive_write_failures = 0
            STORE_WRITE_FAILURES.set(0)

    # -- SnapshotStore -------------------------------------------------------------------
    async def load(self, source: SourceId, *, as_fingerprints: bool = False) -> SourceSnapshot:
        async with self.connection() as conn:
            row = await conn.fetchrow(
                "SELECT cursor, epoch, settled FROM sources WHERE source = $1", source
            )
            rows = await conn.fetch(
                "SELECT ticket_id, state FROM tickets WHERE source = $1", source
            )
            type_rows = await conn.fetch(
                "SELECT ticket_type_id, state FROM ticket_types WHERE source = $1", source
            )
            retired = await conn.fetch(
                "SELECT event_id FROM retired_events WHERE source = $1", source
            )
        tickets: dict[TicketId, TicketState] = {}
        fingerprints: dict[TicketId, int] = {}
        if as_fingerprints:
            fingerprints = {TicketId(r[0]): decode_state(r[1]).fingerprint for r in rows}
        else:
            tickets = {TicketId(r[0]): decode_state(r[1]) for r in rows}
        return SourceSnapshot(
            tickets=tickets,
            cursor=None if row is None else row[0],
            polled=row is not None,
            ticket_types={TicketTypeId(r[0]): decode_type_state(r[1]) for r in type_rows},
            epoch="" if row is None else row[1],
            settled=row is not None and bool(row[2]),
            fingerprints=fingerprints,
            retired_events=frozenset(r[0] for r in retired),
        )

    async def ticket_states(
        self, source: SourceId, ticket_ids: Collection[TicketId]
    ) -> dict[TicketId, TicketState]:
        if not ticket_ids:
            return {}
        async with self.connection() as conn:
            rows = await conn.fetch(
                "SELECT ticket_id, state FROM tickets WHERE source = $1 AND ticket_id = ANY($2)",
                source,
                list(ticket_ids),
            )
        return {TicketId(r[0]): decode_state(r[1]) for r in rows}

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
        now = self._clock()
        named = ticket_events or {}
        async with self._writing(), self.connection(transaction=True) as conn:
            if self.replica is not None:
                await self._fence(conn, source, "commit")
            ticket_rows = [(str(k), encode_state(s), named.get(k, "")) for k, s in tickets.items()]
            for chunk in _chunks(ticket_rows):
                # A ticket's event, once known, is kept when a commit does not name it.
                await conn.execute(
                    "INSERT INTO tickets (source, ticket_id, state, event_id) "
                    "SELECT $1, * FROM unnest($2::text[], $3::bytea[], $4::text[]) "
                    "ON CONFLICT (source, ticket_id) DO UPDATE SET state = excluded.state, "
                    "event_id = CASE WHEN excluded.event_id = '' THEN tickets.event_id "
                    "ELSE excluded.event_id END",
                    source,
                    [r[0] for r in chunk],
                    [r[1] for r in chunk],
                    [r[2] for r in chunk],
                )
            type_rows = [(str(k), encode_type_state(s)) for k, s in (ticket_types or {}).items()]
            for types in _chunks(type_rows):
                await conn.execute(
                    "INSERT INTO ticket_types (source, ticket_type_id, state) "
                    "SELECT $1, * FROM unnest($2::text[], $3::bytea[]) "
                    "ON CONFLICT (source, ticket_type_id) DO UPDATE SET state = excluded.state",
                    source,
                    [r[0] for r in types],
                    [r[1] for r in types],
                )
            for routed in events:
                await insert_event(conn, routed, now)
            # The epoch is written once, by the first commit; a settled baseline stays so.
            await conn.execute(
                "INSERT INTO sources (source, cursor, committed_at, epoch, settled) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source) DO UPDATE SET "
                "cursor = excluded.cursor, committed_at = excluded.committed_at, "
                "settled = sources.settled OR excluded.settled",
                source,
                cursor,
                now,
                epoch,
                settled,
            )

    async def _fence(self, conn: Any, source: SourceId, what: str) -> None:
        """Hold the source's lease row key-share locked until this commit ends, or refuse.

        The lock is what makes the check stick: a rival's claim (FOR UPDATE SKIP LOCKED)
        passes over the row until this transaction is over, so the lease cannot change
        hands between the check and the commit.
        """
        generation = self.held.get(source)
        if generation is None or not await pg_leases.fence(
            conn, source, owner=self.replica, generation=generation
        ):
            self.held.pop(source, None)
            raise LeaseLost(f"lease of source {source} lost: {what} refused, nothing written")

    async def retire_events(self, source: SourceId, event_ids: Collection[str]) -> list[TicketId]:
        # Fenced like a commit: retirement runs from the source's own poll loop, and a former
        # owner must not delete tickets under the replica that now polls the source.
        async with self._writing(), self.connection(transaction=True) as conn:
            if self.replica is not None:
                await self._fence(conn, source, "retirement")
            return await retire_events(conn, source, list(event_ids), self._clock())

    async def pii_form(self, source: SourceId) -> str | None:
        async with self.connection() as conn:
            form = await conn.fetchval("SELECT form FROM pii_forms WHERE source = $1", source)
        return None if form is None else str(form)

    async def set_pii_form(self, source: SourceId, form: str) -> None:
        async with self._writing(), self.connection() as conn:
            await conn.execute(
                "INSERT INTO pii_forms (source, form) VALUES ($1, $2) "
                "ON CONFLICT (source) DO UPDATE SET form = excluded.form",
                source,
                form,
            )

    # -- Retention -------------------------------------------------------------------------
    async def prune_outbox(
        self, *, delivered_before: float, parked_before: float, batch: int = 2000
    ) -> Pruned:
        # One transaction per batch: commits and deliveries interleave with a long prune.
        events = deliveries = 0
        while True:
            async with self._writing(), self.connection(transaction=True) as conn:
                removed, rows = await prune_batch(conn, delivered_before, parked_before, batch)
            events += removed
            deliveries += rows
            if removed < batch:
                return Pruned(events=events, deliveries=deliveries)

    async def file_bytes(self) -> int:
        """The size of the WHOLE database (``pg_database_size``), not just this store's
        tables: whatever else lives in the database is counted too. Nothing here is a file
        the service can see, so this is the nearest measure of what the store occupies."""
        async with self.connection() as conn:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
        return int(size)

    # -- Outbox ----------------------------------------------------------------------------
    async def due(self, sink: str, *, now: float, limit: int) -> list[Delivery]:
        async with self.connection() as conn:
            return await due_deliveries(conn, sink, now, limit, self.replica)

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        async with self._writing(), self.connection(transaction=True) as conn:
            await record_outcomes(conn, sink, outcomes)

    async def deliveries(
        self, *, sink: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        async with self.connection() as conn:
            return await list_deliveries(conn, sink, status)

    async def requeue(
        self, sink: str, *, since: float | None = None, event_id: str | None = None
    ) -> int:
        async with self.connection(transaction=True) as conn:
            return await requeue_parked(conn, sink, since, event_id)

    async def pending_count(self) -> int:
        async with self.connection() as conn:
            count = await conn.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'")
        return int(count)

    # -- sink switches -----------------------------------------------------------------------
    async def disable_sink(self, sink: str, reason: str) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "INSERT INTO disabled_sinks (sink, reason, disabled_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (sink) DO UPDATE SET reason = excluded.reason, "
                "disabled_at = excluded.disabled_at",
                sink,
                reason,
                self._clock(),
            )

    async def enable_sink(self, sink: str) -> bool:
        async with self.connection() as conn:
            status = await conn.execute("DELETE FROM disabled_sinks WHERE sink = $1", sink)
        return row_count(status) > 0

    async def disabled_sinks(self) -> dict[str, str]:
        async with self.connection() as conn:
            rows = await conn.fetch("SELECT sink, reason FROM disabled_sinks")
        return {row[0]: row[1] for row in rows}

    # -- CredentialStore ---------------------------------------------------------------------
    async def load_credentials(self, key: str) -> str | None:
        async with self.connection() as conn:
            value = await conn.fetchval("SELECT value FROM credentials WHERE key = $1", key)
        return None if value is None else str(value)

    async def save_credentials(self, key: str, value: str) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "INSERT INTO credentials (key, value, saved_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "saved_at = excluded.saved_at",
                key,
                value,
                self._clock(),
            )


def _chunks(rows: list[_T]) -> list[list[_T]]:
    return [rows[i : i + _ROWS_PER_STATEMENT] for i in range(0, len(rows), _ROWS_PER_STATEMENT)]


def _describe(exc: BaseException) -> str:
    # Server errors carry no DSN; connection errors may, so only their type and errno.
    if isinstance(exc, asyncpg.PostgresError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
