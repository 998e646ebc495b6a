"""The SQLite store's outbox queries: each runs on the store's connection, inside the
transaction the store opened where it writes (docs/design.md §6, "Transactional outbox")."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from notifier.store.base import Delivery, DeliveryStatus, Outcome, Routed
from notifier.store.codec import DELIVERY_COLUMNS, delivery_of


def due_deliveries(db: sqlite3.Connection, sink: str, now: float, limit: int) -> list[Delivery]:
    # INDEXED BY: without statistics the planner walks the primary key, i.e. every
    # delivered row of the sink, before reaching the pending ones (9x slower at 200k).
    rows = db.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d INDEXED BY deliveries_pending "  # noqa: S608 -- constant column list
        "JOIN outbox o USING (position) "
        "WHERE d.sink = ? AND d.status = 'pending' AND d.next_attempt_at <= ? "
        "ORDER BY d.position LIMIT ?",
        (sink, now, limit),
    )
    return [delivery_of(row) for row in rows]


def record_outcomes(db: sqlite3.Connection, sink: str, outcomes: Sequence[Outcome]) -> None:
    db.executemany(
        "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, "
        "last_error = ? WHERE sink = ? AND position = ?",
        [(o.status.value, o.retry_at, o.error, sink, o.position) for o in outcomes],
    )


def list_deliveries(
    db: sqlite3.Connection, sink: str | None, status: DeliveryStatus | None
) -> list[Delivery]:
    clauses, params = _filters(sink=sink, status=status)
    rows = db.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o USING (position) "  # noqa: S608 -- clauses are constants, values are bound
        f"{clauses} ORDER BY d.position",
        params,
    )
    return [delivery_of(row) for row in rows]


def requeue_parked(
    db: sqlite3.Connection, sink: str, since: float | None, event_id: str | None
) -> int:
    conditions = ["sink = ?", "status = ?"]
    params: list[Any] = [sink, DeliveryStatus.PARKED.value]
    if since is not None:
        conditions.append("position IN (SELECT position FROM outbox WHERE committed_at >= ?)")
        params.append(since)
    if event_id is not None:
        conditions.append("position IN (SELECT position FROM outbox WHERE id = ?)")
        params.append(event_id)
    where = " AND ".join(conditions)
    sql = "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0 "
    cursor = db.execute(sql + f"WHERE {where}", params)
    return cursor.rowcount


def insert_event(db: sqlite3.Connection, routed: Routed, now: float) -> None:
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
