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
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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
from notifier.store.sqlite_outbox import (
    due_deliveries,
    insert_event,
    list_deliveries,
    record_outcomes,
    requeue_parked,
)
from notifier.store.sqlite_retention import prune_batch, retire_events
from notifier.store.sqlite_schema import (
    CREDENTIALS_TABLE,
    SCHEMA_VERSION as SCHEMA_VERSION,
    open_database,
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
        return await self._run(self._read, due_deliveries, sink, now, limit)

    async def record(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        await self._write(self._in_transaction, record_outcomes, sink, outcomes)

    async def deliveries(
        self, *, sink: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        return await self._run(self._read, list_deliveries, sink, status)

    async def requeue(
        self, sink: str, *, since: float | None = None, event_id: str | None = None
    ) -> int:
        return await self._run(self._in_transaction, requeue_parked, sink, since, event_id)

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
        self._db = open_database(self._path)

    def _close(self) -> None:
        assert self._db is not None
        self._db.close()
        self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("store is not open")
        return self._db

    def _read(self, query: Callable[..., _T], *args: Any) -> _T:
        return query(self._conn, *args)

    def _in_transaction(self, change: Callable[..., _T], *args: Any) -> _T:
        with self._transaction() as db:
            return change(db, *args)

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
                insert_event(db, routed, now)
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
            db.execute(CREDENTIALS_TABLE)
            db.execute(
                "INSERT OR REPLACE INTO credentials (key, value, saved_at) VALUES (?, ?, ?)",
                (key, value, self._clock()),
            )
