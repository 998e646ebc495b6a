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
from datetime import datetime
from typing import Any

import asyncpg

from notifier.diff import TicketState
from notifier.envelope import OutboxEvent
from notifier.errors import StoreError
from notifier.inventory_diff import TicketTypeState
from notifier.model import SourceId, TicketId, TicketTypeId
from notifier.store import pg_leases
from notifier.store.base import Delivery, DeliveryStatus, Outcome, Routed, SourceSnapshot
from notifier.store.codec import decode_state, decode_type_state, encode_state, encode_type_state
from notifier.store.pg_migrations import NewerSchemaError, migrate
from notifier.store.pg_url import redact

_DELIVERY_COLUMNS = (
    "d.position, d.sink, d.attempts, d.status, d.next_attempt_at, d.last_error, "
    "o.id, o.type, o.ce_source, o.subject, o.time, o.partition_key, o.organizer, "
    "o.source_id, o.data"
)
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
    ) -> None:
        now = self._clock()
        async with self.connection(transaction=True) as conn:
            if self.replica is not None:
                await self._fence(conn, source)
            ticket_rows = [(str(k), encode_state(s)) for k, s in tickets.items()]
            for chunk in _chunks(ticket_rows):
                await conn.execute(
                    "INSERT INTO tickets (source, ticket_id, state) "
                    "SELECT $1, * FROM unnest($2::text[], $3::bytea[]) "
                    "ON CONFLICT (source, ticket_id) DO UPDATE SET state = excluded.state",
                    source,
                    [r[0] for r in chunk],
                    [r[1] for r in chunk],
                )
            type_rows = [(str(k), encode_type_state(s)) for k, s in (ticket_types or {}).items()]
            for chunk in _chunks(type_rows):
                await conn.execute(
                    "INSERT INTO ticket_types (source, ticket_type_id, state) "
                    "SELECT $1, * FROM unnest($2::text[], $3::bytea[]) "
                    "ON CONFLICT (source, ticket_type_id) DO UPDATE SET state = excluded.state",
                    source,
                    [r[0] for r in chunk],
                    [r[1] for r in chunk],
                )
            for routed in events:
                await _insert_event(conn, routed, now)
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

    async def _fence(self, conn: Any, source: SourceId) -> None:
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
            raise LeaseLost(f"lease of source {source} lost: commit refused, nothing written")

    # -- Outbox ----------------------------------------------------------------------------
    async def due(self, sink: str, *, now: float, limit: int) -> list[Delivery]:
        owned = ""
        params: list[Any] = [sink, now, limit]
        if self.replica is not None:
            # Only the sources this replica holds: one ticket's events leave in order, from
            # their source's owner; a new owner picks up what the old one left pending.
            owned = (
                "AND o.source_id IN (SELECT source FROM leases WHERE owner = $4 "
                "AND expires_at > clock_timestamp()) "
            )
            params.append(self.replica)
        async with self.connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o USING (position) "  # noqa: S608 -- constant clauses, bound values
                f"WHERE d.sink = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2 {owned}"
                "ORDER BY d.position LIMIT $3",
                *params,
            )
        return [_delivery(row) for row in rows]

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        async with self.connection(transaction=True) as conn:
            await conn.execute(
                "UPDATE deliveries d SET status = u.status, attempts = d.attempts + 1, "
                "next_attempt_at = u.retry_at, last_error = u.error "
                "FROM unnest($2::bigint[], $3::text[], $4::float8[], $5::text[]) "
                "AS u(position, status, retry_at, error) "
                "WHERE d.sink = $1 AND d.position = u.position",
                sink,
                [o.position for o in outcomes],
                [o.status.value for o in outcomes],
                [o.retry_at for o in outcomes],
                [o.error for o in outcomes],
            )

    async def deliveries(
        self, *, sink: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        conditions = ["($1::text IS NULL OR d.sink = $1)", "($2::text IS NULL OR d.status = $2)"]
        async with self.connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o USING (position) "  # noqa: S608 -- constant clauses, bound values
                f"WHERE {' AND '.join(conditions)} ORDER BY d.position",
                sink,
                None if status is None else status.value,
            )
        return [_delivery(row) for row in rows]

    async def requeue(
        self, sink: str, *, since: float | None = None, event_id: str | None = None
    ) -> int:
        async with self.connection(transaction=True) as conn:
            status = await conn.execute(
                "UPDATE deliveries d SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                "FROM outbox o WHERE o.position = d.position AND d.sink = $1 "
                "AND d.status = 'parked' AND ($2::float8 IS NULL OR o.committed_at >= $2) "
                "AND ($3::text IS NULL OR o.id = $3)",
                sink,
                since,
                event_id,
            )
        return _row_count(status)

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
        return _row_count(status) > 0

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


async def _insert_event(conn: Any, routed: Routed, now: float) -> None:
    """Insert an event and its deliveries; an id already committed is left as it was."""
    event = routed.event
    position = await conn.fetchval(
        "INSERT INTO outbox (id, type, ce_source, subject, time, partition_key, organizer, "
        "source_id, data, committed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (id) DO NOTHING RETURNING position",
        event.id,
        event.type,
        event.ce_source,
        event.subject,
        event.time.isoformat(),
        event.partition_key,
        event.organizer,
        event.source_id,
        event.data,
        now,
    )
    if position is None or not routed.sinks:
        return
    await conn.execute(
        "INSERT INTO deliveries (sink, position, status) SELECT s, $2, 'pending' "
        "FROM unnest($1::text[]) AS s",
        list(routed.sinks),
        position,
    )


def _chunks(rows: list[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    return [rows[i : i + _ROWS_PER_STATEMENT] for i in range(0, len(rows), _ROWS_PER_STATEMENT)]


def _row_count(status: str) -> int:
    """The count of an asyncpg command tag: ``UPDATE 3`` -> 3."""
    return int(status.rsplit(" ", 1)[-1])


def _describe(exc: BaseException) -> str:
    # Server errors carry no DSN; connection errors may, so only their type and errno.
    if isinstance(exc, asyncpg.PostgresError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _delivery(row: Any) -> Delivery:
    position, sink, attempts, status, next_attempt_at, last_error, *event_columns = row
    event_id, event_type, ce_source, subject, moment, key, organizer, source_id, data = (
        event_columns
    )
    return Delivery(
        position=position,
        sink=sink,
        attempts=attempts,
        status=DeliveryStatus(status),
        next_attempt_at=next_attempt_at,
        last_error=last_error,
        event=OutboxEvent(
            id=event_id,
            type=event_type,
            ce_source=ce_source,
            subject=subject,
            time=datetime.fromisoformat(moment),
            partition_key=key,
            organizer=organizer,
            source_id=source_id,
            data=bytes(data),
        ),
    )
