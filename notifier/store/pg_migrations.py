"""The PostgreSQL schema as numbered migrations, applied at start-up under an advisory lock.

Every replica runs ``migrate`` when it opens the store. The session-level advisory lock
makes the check-then-apply atomic across replicas: of two replicas starting together (two
versions during a rolling update included), one applies what is missing while the other
waits, then finds nothing left to do. A database already migrated past what this build
knows is refused, as the SQLite store refuses a newer ``user_version``: an older build must
never write a schema it does not understand.

Migrations are append-only: never edit a released one, add the next number.
"""

from __future__ import annotations

from typing import Final, Protocol

# pg_advisory_lock key: any constant no other application on the database uses; this is
# the first eight bytes of "notifier" read as a big-endian integer.
LOCK_KEY: Final = 0x6E6F746966696572

MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        """
CREATE TABLE tickets (
    source TEXT NOT NULL, ticket_id TEXT NOT NULL, state BYTEA NOT NULL,
    PRIMARY KEY (source, ticket_id)
);
CREATE TABLE ticket_types (
    source TEXT NOT NULL, ticket_type_id TEXT NOT NULL, state BYTEA NOT NULL,
    PRIMARY KEY (source, ticket_type_id)
);
CREATE TABLE sources (
    source TEXT PRIMARY KEY, cursor TEXT, committed_at DOUBLE PRECISION NOT NULL,
    epoch TEXT NOT NULL DEFAULT '', settled BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE outbox (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, ce_source TEXT NOT NULL,
    subject TEXT NOT NULL, time TEXT NOT NULL, partition_key TEXT NOT NULL,
    organizer TEXT NOT NULL, source_id TEXT NOT NULL, data BYTEA NOT NULL,
    committed_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX outbox_source ON outbox (source_id, position);
CREATE TABLE deliveries (
    sink TEXT NOT NULL, position BIGINT NOT NULL REFERENCES outbox (position),
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0, last_error TEXT,
    PRIMARY KEY (sink, position)
);
-- Only what is still owed, in commit order: finding due deliveries never walks history.
CREATE INDEX deliveries_pending ON deliveries (sink, position) WHERE status = 'pending';
CREATE TABLE disabled_sinks (
    sink TEXT PRIMARY KEY, reason TEXT NOT NULL, disabled_at DOUBLE PRECISION NOT NULL
);
-- Ownership by lease (docs/postgres.md): who polls a source, until when, and the
-- generation every commit is fenced by. Times are the database's clock, never a replica's.
CREATE TABLE leases (
    source TEXT PRIMARY KEY, owner TEXT,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX leases_owner ON leases (owner);
-- Live replicas, so that each can work out its fair share of the sources.
CREATE TABLE replicas (replica TEXT PRIMARY KEY, expires_at TIMESTAMPTZ NOT NULL);
""",
    ),
    (
        2,
        """
-- Secrets a provider keeps across restarts (Eventpop's rotated refresh token), sealed by
-- the caller: opaque text to the store.
CREATE TABLE credentials (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, saved_at DOUBLE PRECISION NOT NULL
);
""",
    ),
    (
        3,
        """
-- Retention (docs/reliability.md): each ticket names its event ('' until a commit names
-- it), so the tickets of an event that ended long ago can be removed; the events so
-- retired are remembered, so their tickets are neither stored again nor announced as new.
-- A constant default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE tickets ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
CREATE INDEX tickets_event ON tickets (source, event_id);
CREATE TABLE retired_events (
    source TEXT NOT NULL, event_id TEXT NOT NULL, retired_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (source, event_id)
);
-- Retention finds old events by commit time, and each one's deliveries by position (the
-- primary key leads with the sink).
CREATE INDEX outbox_committed ON outbox (committed_at);
CREATE INDEX deliveries_position ON deliveries (position);
-- The form each source's stored holders are in (notifier.pii.state_form).
CREATE TABLE pii_forms (source TEXT PRIMARY KEY, form TEXT NOT NULL);
""",
    ),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]


class Connection(Protocol):
    """The part of an asyncpg connection that migrating needs."""

    async def execute(self, query: str, *args: object) -> str: ...

    async def fetchval(self, query: str, *args: object) -> object: ...


class NewerSchemaError(Exception):
    """The database was migrated by a newer build than this one."""


async def migrate(conn: Connection) -> int:
    """Apply the missing migrations, each in its own transaction; return the schema version."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        found = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        version = int(str(found))
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"schema version {version} is newer than this build understands "
                f"({SCHEMA_VERSION}); upgrade checkin-notifier"
            )
        for number, sql in MIGRATIONS:
            if number <= version:
                continue
            try:
                await conn.execute(
                    f"BEGIN; {sql}; INSERT INTO schema_migrations (version) VALUES ({number}); "  # noqa: S608 -- our own constant migrations
                    "COMMIT"
                )
            except BaseException:
                await conn.execute("ROLLBACK")  # else the unlock below fails in the dead block
                raise
        return SCHEMA_VERSION
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
