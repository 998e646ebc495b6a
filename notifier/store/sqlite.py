"""The embedded default store: one SQLite file in WAL mode.

Every call runs on one dedicated thread, so the event loop never blocks on disk and
SQLite sees a single writer; WAL lets the CLI (``notifier deliveries``) read the same
file while the service writes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from notifier.envelope import OutboxEvent
from notifier.errors import StoreError
from notifier.model import SourceId, TicketId, TicketTypeId
from notifier.observability import STORE_WRITE_FAILURES
from notifier.state import TicketState, TicketTypeState
from notifier.store.base import (
    Delivery,
    DeliveryStatus,
    Outcome,
    Pruned,
    Routed,
    SourceSnapshot,
)
from notifier.store.codec import (
    decode_state,
    decode_type_state,
    encode_state,
    encode_type_state,
)
from notifier.store.sqlite_retention import prune_batch, retire_events

SCHEMA_VERSION = 2
# Version 1 -> 2 (retention): each ticket names its event, so the tickets of an event that
# ended long ago can be removed; run before _SCHEMA, whose indexes need the column.
_MIGRATE_1_TO_2 = """
ALTER TABLE tickets ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    source TEXT NOT NULL, ticket_id TEXT NOT NULL, state BLOB NOT NULL,
    event_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (source, ticket_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tickets_event ON tickets (source, event_id);
CREATE TABLE IF NOT EXISTS retired_events (
    source TEXT NOT NULL, event_id TEXT NOT NULL, retired_at REAL NOT NULL,
    PRIMARY KEY (source, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ticket_types (
    source TEXT NOT NULL, ticket_type_id TEXT NOT NULL, state BLOB NOT NULL,
    PRIMARY KEY (source, ticket_type_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY, cursor TEXT, committed_at REAL NOT NULL,
    epoch TEXT NOT NULL DEFAULT '', settled INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, ce_source TEXT NOT NULL,
    subject TEXT NOT NULL, time TEXT NOT NULL, partition_key TEXT NOT NULL,
    organizer TEXT NOT NULL, source_id TEXT NOT NULL, data BLOB NOT NULL,
    committed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    sink TEXT NOT NULL, position INTEGER NOT NULL REFERENCES outbox(position),
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT,
    PRIMARY KEY (sink, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (sink, status, next_attempt_at);
-- Only what is still owed, in commit order: finding due deliveries never walks history.
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (sink, position)
    WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS disabled_sinks (
    sink TEXT PRIMARY KEY, reason TEXT NOT NULL, disabled_at REAL NOT NULL
);
-- Retention finds old events by commit time, and each one's deliveries by position.
CREATE INDEX IF NOT EXISTS outbox_committed ON outbox (committed_at);
CREATE INDEX IF NOT EXISTS deliveries_position ON deliveries (position);
"""

_DELIVERY_COLUMNS = (
    "d.position, d.sink, d.attempts, d.status, d.next_attempt_at, d.last_error, "
    "o.id, o.type, o.ce_source, o.subject, o.time, o.partition_key, o.organizer, "
    "o.source_id, o.data"
)
# Bound parameters per ``IN (...)`` query, well under SQLite's limit of 32,766.
_IDS_PER_QUERY = 500
_T = TypeVar("_T")


class SqliteStore:
    """SnapshotStore + Outbox + sink switches on one SQLite database."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self._path = str(path)
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        # Writes (commits, delivery outcomes) failed in a row: /readyz turns this into
        # "not ready" (disk full, read-only volume); the next successful write resets it.
        self.consecutive_write_failures = 0

    async def open(self) -> SqliteStore:
        await self._run(self._open)
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    # -- SnapshotStore -------------------------------------------------------------------
    async def load(self, source: SourceId, *, as_fingerprints: bool = False) -> SourceSnapshot:
        return await self._run(self._load, source, as_fingerprints)

    async def ticket_states(
        self, source: SourceId, ticket_ids: Collection[TicketId]
    ) -> dict[TicketId, TicketState]:
        return await self._run(self._ticket_states, source, list(ticket_ids))

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
        await self._write(
            self._commit,
            source,
            tickets,
            events,
            cursor,
            ticket_types or {},
            epoch,
            settled,
            ticket_events or {},
        )

    async def retire_events(self, source: SourceId, event_ids: Collection[str]) -> list[TicketId]:
        return await self._write(self._retire_events, source, list(event_ids))

    # -- Retention -------------------------------------------------------------------------
    async def prune_outbox(
        self, *, delivered_before: float, parked_before: float, batch: int = 2000
    ) -> Pruned:
        # One transaction per batch, each its own call: commits and deliveries interleave.
        events = deliveries = 0
        while True:
            removed, rows = await self._write(
                self._prune_batch, delivered_before, parked_before, batch
            )
            events += removed
            deliveries += rows
            if removed < batch:
                return Pruned(events=events, deliveries=deliveries)

    async def file_bytes(self) -> int:
        """The database file and its WAL: what the volume holds for this store."""
        return await self._run(self._file_bytes)

    def _file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                total += Path(self._path + suffix).stat().st_size
        return total

    async def pii_form(self, source: SourceId) -> str | None:
        return await self._run(self._pii_form, source)

    async def set_pii_form(self, source: SourceId, form: str) -> None:
        await self._run(self._set_pii_form, source, form)

    # -- Outbox ----------------------------------------------------------------------------
    async def due(self, sink: str, *, now: float, limit: int) -> list[Delivery]:
        return await self._run(self._due, sink, now, limit)

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        await self._write(self._record, sink, outcomes)

    async def deliveries(
        self, *, sink: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        return await self._run(self._deliveries, sink, status)

    async def requeue(
        self, sink: str, *, since: float | None = None, event_id: str | None = None
    ) -> int:
        return await self._run(self._requeue, sink, since, event_id)

    async def pending_count(self) -> int:
        return await self._run(
            self._scalar,
            "SELECT count(*) FROM deliveries WHERE status = ?",
            (DeliveryStatus.PENDING.value,),
        )

    # -- sink switches (a 410 disables an endpoint until an operator re-enables it) ------
    async def disable_sink(self, sink: str, reason: str) -> None:
        await self._run(self._disable_sink, sink, reason)

    async def enable_sink(self, sink: str) -> bool:
        return await self._run(self._enable_sink, sink)

    async def disabled_sinks(self) -> dict[str, str]:
        return await self._run(self._disabled_sinks)

    # -- CredentialStore (its table is created by the first save: older files need no
    # schema change, and a read-only file still opens) --------------------------------
    async def load_credentials(self, key: str) -> str | None:
        return await self._run(self._load_credentials, key)

    async def save_credentials(self, key: str, value: str) -> None:
        await self._run(self._save_credentials, key, value)

    # -- the worker-thread side ----------------------------------------------------------
    async def _write(self, function: Callable[..., _T], *args: Any) -> _T:
        """``_run`` for a write, counting consecutive failures for readiness."""
        try:
            result = await self._run(function, *args)
        except StoreError:
            self.consecutive_write_failures += 1
            STORE_WRITE_FAILURES.set(self.consecutive_write_failures)
            raise
        if self.consecutive_write_failures:
            self.consecutive_write_failures = 0
            STORE_WRITE_FAILURES.set(0)
        return result

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(function, *args))
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self._path}: {exc}") from exc

    def _open(self) -> None:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process crashes
        db.execute("PRAGMA foreign_keys=ON")
        # After a checkpoint the WAL file shrinks back to this, rather than keeping the
        # size of the largest transaction ever written.
        db.execute("PRAGMA journal_size_limit=67108864")
        # Deleted and overwritten rows are zeroed, not left in free pages: holders rewritten
        # as digests (a pii policy change) leave nothing readable in a copy of the file.
        db.execute("PRAGMA secure_delete=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this build understands "
                f"({SCHEMA_VERSION}); upgrade checkin-notifier"
            )
        if version < SCHEMA_VERSION:  # only write when needed: a read-only file still opens
            if version == 1:
                db.executescript(_MIGRATE_1_TO_2)
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db = db

    def _close(self) -> None:
        assert self._db is not None
        self._db.close()
        self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("store is not open")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) would otherwise leave the connection mid-transaction
            # and every later BEGIN would fail.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _load(self, source: SourceId, as_fingerprints: bool) -> SourceSnapshot:
        db = self._conn
        row = db.execute(
            "SELECT cursor, epoch, settled FROM sources WHERE source = ?", (source,)
        ).fetchone()
        rows = db.execute("SELECT ticket_id, state FROM tickets WHERE source = ?", (source,))
        tickets: dict[TicketId, TicketState] = {}
        fingerprints: dict[TicketId, int] = {}
        if as_fingerprints:
            # Row by row: each decoded state is garbage before the next, so a million of
            # them never coexist in memory.
            fingerprints = {
                TicketId(ticket): decode_state(blob).fingerprint for ticket, blob in rows
            }
        else:
            tickets = {TicketId(ticket_id): decode_state(blob) for ticket_id, blob in rows}
        type_rows = db.execute(
            "SELECT ticket_type_id, state FROM ticket_types WHERE source = ?", (source,)
        )
        types = {TicketTypeId(type_id): decode_type_state(blob) for type_id, blob in type_rows}
        retired = db.execute("SELECT event_id FROM retired_events WHERE source = ?", (source,))
        return SourceSnapshot(
            tickets=tickets,
            cursor=None if row is None else row[0],
            polled=row is not None,
            ticket_types=types,
            epoch="" if row is None else row[1],
            settled=row is not None and bool(row[2]),
            fingerprints=fingerprints,
            retired_events=frozenset(event_id for (event_id,) in retired),
        )

    def _ticket_states(
        self, source: SourceId, ticket_ids: list[TicketId]
    ) -> dict[TicketId, TicketState]:
        states: dict[TicketId, TicketState] = {}
        for start in range(0, len(ticket_ids), _IDS_PER_QUERY):
            chunk = ticket_ids[start : start + _IDS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT ticket_id, state FROM tickets WHERE source = ? AND ticket_id IN ({marks})",  # noqa: S608 -- placeholders only
                (source, *chunk),
            )
            states.update((TicketId(ticket), decode_state(blob)) for ticket, blob in rows)
        return states

    def _commit(
        self,
        source: SourceId,
        tickets: Mapping[TicketId, TicketState],
        events: Sequence[Routed],
        cursor: str | None,
        ticket_types: Mapping[TicketTypeId, TicketTypeState],
        epoch: str,
        settled: bool,
        ticket_events: Mapping[TicketId, str],
    ) -> None:
        now = self._clock()
        with self._transaction() as db:
            # A ticket's event, once known, is kept when a commit does not name it.
            db.executemany(
                "INSERT INTO tickets (source, ticket_id, state, event_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, ticket_id) DO UPDATE SET state = excluded.state, "
                "event_id = CASE WHEN excluded.event_id = '' THEN tickets.event_id "
                "ELSE excluded.event_id END",
                [
                    (source, ticket_id, encode_state(state), ticket_events.get(ticket_id, ""))
                    for ticket_id, state in tickets.items()
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO ticket_types (source, ticket_type_id, state) "
                "VALUES (?, ?, ?)",
                [(source, type_id, encode_type_state(s)) for type_id, s in ticket_types.items()],
            )
            for routed in events:
                _insert_event(db, routed, now)
            # The epoch is written once, by the first commit; a settled baseline stays so.
            db.execute(
                "INSERT INTO sources (source, cursor, committed_at, epoch, settled) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, "
                "committed_at = excluded.committed_at, "
                "settled = max(sources.settled, excluded.settled)",
                (source, cursor, now, epoch, int(settled)),
            )

    def _retire_events(self, source: SourceId, event_ids: list[str]) -> list[TicketId]:
        now = self._clock()
        with self._transaction() as db:
            return retire_events(db, source, event_ids, now)

    def _prune_batch(
        self, delivered_before: float, parked_before: float, batch: int
    ) -> tuple[int, int]:
        with self._transaction() as db:
            return prune_batch(db, delivered_before, parked_before, batch)

    def _pii_form(self, source: SourceId) -> str | None:
        db = self._conn
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pii_forms'"
        ).fetchone()
        if exists is None:  # a file from before forms were recorded: holders kept as read
            return None
        row = db.execute("SELECT form FROM pii_forms WHERE source = ?", (source,)).fetchone()
        return None if row is None else str(row[0])

    def _set_pii_form(self, source: SourceId, form: str) -> None:
        with self._transaction() as db:
            # Created on first use, not with the schema: files of schema version 1 gain it
            # without a migration, and a file never switched off 'include' never has it.
            db.execute(
                "CREATE TABLE IF NOT EXISTS pii_forms (source TEXT PRIMARY KEY, form TEXT NOT NULL)"
            )
            db.execute(
                "INSERT OR REPLACE INTO pii_forms (source, form) VALUES (?, ?)", (source, form)
            )
        # The log still holds the pages as they were before the move (holders as read, or
        # digests of a retired key): empty it. Rare, and best effort while a reader holds it.
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _due(self, sink: str, now: float, limit: int) -> list[Delivery]:
        # INDEXED BY: without statistics the planner walks the primary key, i.e. every
        # delivered row of the sink, before reaching the pending ones (9x slower at 200k).
        rows = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d INDEXED BY deliveries_pending "  # noqa: S608 -- constant column list
            "JOIN outbox o USING (position) "
            "WHERE d.sink = ? AND d.status = 'pending' AND d.next_attempt_at <= ? "
            "ORDER BY d.position LIMIT ?",
            (sink, now, limit),
        )
        return [_delivery(row) for row in rows]

    def _record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ? WHERE sink = ? AND position = ?",
                [(o.status.value, o.retry_at, o.error, sink, o.position) for o in outcomes],
            )

    def _deliveries(self, sink: str | None, status: DeliveryStatus | None) -> list[Delivery]:
        clauses, params = _filters(sink=sink, status=status)
        rows = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o USING (position) "  # noqa: S608 -- clauses are constants, values are bound
            f"{clauses} ORDER BY d.position",
            params,
        )
        return [_delivery(row) for row in rows]

    def _requeue(self, sink: str, since: float | None, event_id: str | None) -> int:
        conditions = ["sink = ?", "status = ?"]
        params: list[Any] = [sink, DeliveryStatus.PARKED.value]
        if since is not None:
            conditions.append("position IN (SELECT position FROM outbox WHERE committed_at >= ?)")
            params.append(since)
        if event_id is not None:
            conditions.append("position IN (SELECT position FROM outbox WHERE id = ?)")
            params.append(event_id)
        with self._transaction() as db:
            where = " AND ".join(conditions)
            sql = "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0 "
            cursor = db.execute(sql + f"WHERE {where}", params)
            return cursor.rowcount

    def _scalar(self, sql: str, params: tuple[Any, ...]) -> int:
        return int(self._conn.execute(sql, params).fetchone()[0])

    def _disable_sink(self, sink: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO disabled_sinks (sink, reason, disabled_at) "
                "VALUES (?, ?, ?)",
                (sink, reason, self._clock()),
            )

    def _enable_sink(self, sink: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM disabled_sinks WHERE sink = ?", (sink,)).rowcount > 0

    def _disabled_sinks(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT sink, reason FROM disabled_sinks").fetchall())

    def _load_credentials(self, key: str) -> str | None:
        db = self._conn
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'credentials'"
        ).fetchone()
        if exists is None:
            return None
        row = db.execute("SELECT value FROM credentials WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _save_credentials(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(_CREDENTIALS)
            db.execute(
                "INSERT OR REPLACE INTO credentials (key, value, saved_at) VALUES (?, ?, ?)",
                (key, value, self._clock()),
            )


_CREDENTIALS = (
    "CREATE TABLE IF NOT EXISTS credentials "
    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, saved_at REAL NOT NULL)"
)


def _insert_event(db: sqlite3.Connection, routed: Routed, now: float) -> None:
    """Insert an event and its deliveries; an id already committed is left as it was."""
    event = routed.event
    cursor = db.execute(
        "INSERT INTO outbox (id, type, ce_source, subject, time, partition_key, organizer, "
        "source_id, data, committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (
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
        ),
    )
    if cursor.rowcount == 0:
        return
    db.executemany(
        "INSERT INTO deliveries (sink, position, status) VALUES (?, ?, ?)",
        [(sink, cursor.lastrowid, DeliveryStatus.PENDING.value) for sink in routed.sinks],
    )


def _filters(*, sink: str | None, status: DeliveryStatus | None) -> tuple[str, tuple[Any, ...]]:
    conditions: list[str] = []
    params: list[Any] = []
    if sink is not None:
        conditions.append("d.sink = ?")
        params.append(sink)
    if status is not None:
        conditions.append("d.status = ?")
        params.append(status.value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return where, tuple(params)


def _delivery(row: sqlite3.Row | tuple[Any, ...]) -> Delivery:
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
