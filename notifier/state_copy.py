"""``notifier state copy --to postgresql://…``: move a SQLite state into PostgreSQL.

Everything moves as it is (cursors, epochs, settled flags, ticket and ticket-type state,
the outbox with its positions, every delivery with its attempts, disabled sinks), so the
replicas that start on PostgreSQL carry on from the last commit: no baseline, no event
re-emitted under a new id, pending deliveries sent once. It runs with the service stopped,
reads the SQLite file read-only, and writes PostgreSQL in one transaction: an interrupted
copy leaves the target empty. A target that already holds state is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from notifier.config import load_config
from notifier.errors import ConfigError, StoreError
from notifier.store.pg_url import is_postgres_url, redact
from notifier.store.postgres import PostgresStore

_BATCH: Final = 5_000
# table -> its columns (the same names on both sides), in foreign-key order.
_TABLES: Final = {
    "sources": "source, cursor, committed_at, epoch, settled",
    "tickets": "source, ticket_id, state, event_id",
    "retired_events": "source, event_id, retired_at",
    "ticket_types": "source, ticket_type_id, state",
    "outbox": "position, id, type, ce_source, subject, time, partition_key, organizer, "
    "source_id, data, committed_at",
    "deliveries": "sink, position, status, attempts, next_attempt_at, last_error",
    "disabled_sinks": "sink, reason, disabled_at",
    "credentials": "key, value, saved_at",  # created by SQLite's first save: may be absent
    "pii_forms": "source, form",  # created by the first policy switch: may be absent
}


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]

    def line(self) -> str:
        return ", ".join(f"{count} {table}" for table, count in self.rows.items())


def register(commands: Any) -> None:
    """Add ``state copy`` to the CLI's subcommands."""
    state = commands.add_parser("state", help="move the state between stores")
    actions = state.add_subparsers(dest="state_command", required=True)
    copy = actions.add_parser(
        "copy", help="copy the SQLite state of a config into an empty PostgreSQL database"
    )
    copy.add_argument(
        "-c",
        "--config",
        type=Path,
        required=True,
        help="the config whose state.path (SQLite) is copied",
    )
    copy.add_argument(
        "--to",
        required=True,
        help="postgresql://user@host/db (leave the password out: PGPASSWORD is read)",
    )
    copy.set_defaults(handler=_copy_command)


def _copy_command(args: argparse.Namespace) -> int:
    config = load_config(args.config, os.environ)
    if not is_postgres_url(args.to):
        raise ConfigError("--to must be a postgresql:// URI")
    if config.state.url is not None:
        raise ConfigError(f"{args.config}: state is already PostgreSQL (state.url)")
    if not config.state.path.exists():
        raise ConfigError(f"{args.config}: no SQLite state at {config.state.path} to copy")
    try:
        report = asyncio.run(copy_state(config.state.path, args.to))
    except StoreError as exc:
        print(f"state copy failed, nothing written: {exc}")
        return 1
    print(f"copied {config.state.path} to {redact(args.to)}: {report.line()}")
    print("now point state.url at it and start the replicas (docs/design.md §10)")
    return 0


async def copy_state(sqlite_path: Path, url: str) -> CopyReport:
    """Copy every table; StoreError (and nothing written) if either side is unusable."""
    target = await PostgresStore(url).open()  # migrates the empty database
    source: sqlite3.Connection | None = None
    try:
        source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        rows: dict[str, int] = {}
        async with target.connection(transaction=True) as conn:
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sources)") or (
                await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox)")
            ):
                raise StoreError(f"{redact(url)} already holds state: copy into an empty one")
            for table, columns in _TABLES.items():
                rows[table] = 0
                if not _has_table(source, table):
                    continue
                for batch in _read(source, table, columns):
                    await conn.copy_records_to_table(
                        table, records=batch, columns=[c.strip() for c in columns.split(",")]
                    )
                    rows[table] += len(batch)
            # New commits continue after the copied positions, in order.
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('outbox', 'position'), "
                "coalesce((SELECT max(position) FROM outbox), 0) + 1, false)"
            )
        return CopyReport(rows)
    except sqlite3.Error as exc:
        raise StoreError(f"reading {sqlite_path}: {exc}") from exc
    finally:
        if source is not None:
            source.close()
        await target.close()


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return found.fetchone() is not None


def _read(db: sqlite3.Connection, table: str, columns: str) -> Iterator[list[tuple[Any, ...]]]:
    cursor = db.execute(f"SELECT {columns} FROM {table}")  # noqa: S608 -- constant names
    settled = table == "sources"
    while batch := cursor.fetchmany(_BATCH):
        if settled:  # SQLite keeps booleans as integers
            yield [(*row[:4], bool(row[4])) for row in batch]
        else:
            yield [tuple(row) for row in batch]
