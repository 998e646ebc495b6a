"""The SQLite store's schema, its migrations, and how a connection is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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

# Created by the first save of credentials, not by the schema: older files need no schema
# change for it, and a read-only file still opens.
CREDENTIALS_TABLE = (
    "CREATE TABLE IF NOT EXISTS credentials "
    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, saved_at REAL NOT NULL)"
)


def open_database(path: str) -> sqlite3.Connection:
    """The connection, tuned and migrated to this build's schema (created if new)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
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
    return db
