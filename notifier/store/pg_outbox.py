"""The PostgreSQL store's outbox queries: each runs on a connection the store acquired, inside
the transaction it opened where it writes (docs/design.md §6, "Transactional outbox")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.store.base import Delivery, DeliveryStatus, Outcome, Routed
from notifier.store.codec import DELIVERY_COLUMNS, delivery_of


async def due_deliveries(
    conn: Any, sink: str, now: float, limit: int, replica: str | None
) -> list[Delivery]:
    owned = ""
    params: list[Any] = [sink, now, limit]
    if replica is not None:
        # Only the sources this replica holds: one ticket's events leave in order, from
        # their source's owner; a new owner picks up what the old one left pending.
        owned = (
            "AND o.source_id IN (SELECT source FROM leases WHERE owner = $4 "
            "AND expires_at > clock_timestamp()) "
        )
        params.append(replica)
    rows = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o USING (position) "  # noqa: S608 -- constant clauses, bound values
        f"WHERE d.sink = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2 {owned}"
        "ORDER BY d.position LIMIT $3",
        *params,
    )
    return [delivery_of(row) for row in rows]


async def record_outcomes(conn: Any, sink: str, outcomes: Sequence[Outcome]) -> None:
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


async def list_deliveries(
    conn: Any, sink: str | None, status: DeliveryStatus | None
) -> list[Delivery]:
    rows = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o USING (position) "  # noqa: S608 -- constant column list, bound values
        "WHERE ($1::text IS NULL OR d.sink = $1) AND ($2::text IS NULL OR d.status = $2) "
        "ORDER BY d.position",
        sink,
        None if status is None else status.value,
    )
    return [delivery_of(row) for row in rows]


async def requeue_parked(conn: Any, sink: str, since: float | None, event_id: str | None) -> int:
    status = await conn.execute(
        "UPDATE deliveries d SET status = 'pending', attempts = 0, next_attempt_at = 0 "
        "FROM outbox o WHERE o.position = d.position AND d.sink = $1 "
        "AND d.status = 'parked' AND ($2::float8 IS NULL OR o.committed_at >= $2) "
        "AND ($3::text IS NULL OR o.id = $3)",
        sink,
        since,
        event_id,
    )
    return row_count(status)


async def insert_event(conn: Any, routed: Routed, now: float) -> None:
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


def row_count(status: str) -> int:
    """The count of an asyncpg command tag: ``UPDATE 3`` -> 3."""
    return int(status.rsplit(" ", 1)[-1])
