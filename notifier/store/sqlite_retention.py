"""Retention's SQL on the SQLite store (docs/reliability.md): each function runs inside a
transaction the store opened, on its connection, on its worker thread."""

from __future__ import annotations

import sqlite3

from notifier.model import SourceId, TicketId


def retire_events(
    db: sqlite3.Connection, source: SourceId, event_ids: list[str], now: float
) -> list[TicketId]:
    """Delete the tickets of these events and remember the events as retired; returns the
    ticket ids deleted."""
    removed: list[TicketId] = []
    for event_id in event_ids:
        rows = db.execute(
            "DELETE FROM tickets WHERE source = ? AND event_id = ? RETURNING ticket_id",
            (source, event_id),
        ).fetchall()
        removed.extend(TicketId(ticket) for (ticket,) in rows)
        db.execute(
            "INSERT OR IGNORE INTO retired_events (source, event_id, retired_at) VALUES (?, ?, ?)",
            (source, event_id, now),
        )
    return removed


def prune_batch(
    db: sqlite3.Connection, delivered_before: float, parked_before: float, batch: int
) -> tuple[int, int]:
    """One batch of outbox retention: (events, deliveries) deleted.

    Oldest first, by commit time; an event still owed to any sink (pending), or parked and
    committed after ``parked_before``, stays.
    """
    positions = [
        position
        for (position,) in db.execute(
            "SELECT o.position FROM outbox o INDEXED BY outbox_committed "
            "WHERE o.committed_at < ? AND NOT EXISTS ("
            "  SELECT 1 FROM deliveries d INDEXED BY deliveries_position "
            "  WHERE d.position = o.position AND (d.status = 'pending' "
            "    OR (d.status = 'parked' AND o.committed_at >= ?))"
            ") ORDER BY o.committed_at LIMIT ?",
            (delivered_before, parked_before, batch),
        )
    ]
    if not positions:
        return 0, 0
    marks = ",".join("?" * len(positions))
    deliveries = db.execute(
        f"DELETE FROM deliveries WHERE position IN ({marks})",  # noqa: S608 -- placeholders only
        positions,
    ).rowcount
    db.execute(
        f"DELETE FROM outbox WHERE position IN ({marks})",  # noqa: S608 -- placeholders only
        positions,
    )
    return len(positions), deliveries
