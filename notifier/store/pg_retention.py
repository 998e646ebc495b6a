"""Retention's SQL on the PostgreSQL store (docs/reliability.md): each function runs inside a
transaction the store opened, on a connection it acquired."""

from __future__ import annotations

from typing import Any

from notifier.model import SourceId, TicketId
from notifier.store.pg_outbox import row_count


async def retire_events(
    conn: Any, source: SourceId, event_ids: list[str], now: float
) -> list[TicketId]:
    """Delete the tickets of these events and remember the events as retired; returns the
    ticket ids deleted."""
    if not event_ids:
        return []
    rows = await conn.fetch(
        "DELETE FROM tickets WHERE source = $1 AND event_id = ANY($2::text[]) RETURNING ticket_id",
        source,
        event_ids,
    )
    await conn.execute(
        "INSERT INTO retired_events (source, event_id, retired_at) "
        "SELECT $1, e, $3 FROM unnest($2::text[]) AS e ON CONFLICT DO NOTHING",
        source,
        event_ids,
        now,
    )
    return [TicketId(row[0]) for row in rows]


async def prune_batch(
    conn: Any, delivered_before: float, parked_before: float, batch: int
) -> tuple[int, int]:
    """One batch of outbox retention: (events, deliveries) deleted.

    Oldest first, by commit time; an event still owed to any sink (pending), or parked and
    committed after ``parked_before``, stays. SKIP LOCKED: replicas pruning at the same time
    take different batches instead of waiting on (or deadlocking over) the same rows.
    """
    positions = [
        row[0]
        for row in await conn.fetch(
            "SELECT o.position FROM outbox o WHERE o.committed_at < $1 AND NOT EXISTS ("
            "  SELECT 1 FROM deliveries d WHERE d.position = o.position AND ("
            "    d.status = 'pending' OR (d.status = 'parked' AND o.committed_at >= $2))"
            ") ORDER BY o.committed_at LIMIT $3 FOR UPDATE OF o SKIP LOCKED",
            delivered_before,
            parked_before,
            batch,
        )
    ]
    if not positions:
        return 0, 0
    deliveries = row_count(
        await conn.execute("DELETE FROM deliveries WHERE position = ANY($1::bigint[])", positions)
    )
    await conn.execute("DELETE FROM outbox WHERE position = ANY($1::bigint[])", positions)
    return len(positions), deliveries
