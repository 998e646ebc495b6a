"""The SQL of ownership by lease (docs/postgres.md); the policy lives in notifier/leases.py.

Every time is the database's ``clock_timestamp()``: replicas' clocks may disagree, and a
paused replica's clock says nothing about how long it was away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.model import SourceId


async def fence(conn: Any, source: SourceId, *, owner: str | None, generation: int) -> bool:
    """Inside a commit's transaction: whether ``owner`` still holds this generation, unexpired.

    FOR KEY SHARE keeps the row locked until the commit ends. A claim (FOR UPDATE SKIP
    LOCKED) conflicts with it and skips the row meanwhile, which is what fencing needs;
    the owner's own renewals and releases (plain UPDATEs of non-key columns) do not, so a
    round of lease keeping never waits for commits in flight, nor they for it.
    """
    row = await conn.fetchval(
        "SELECT 1 FROM leases WHERE source = $1 AND owner = $2 AND generation = $3 "
        "AND expires_at > clock_timestamp() FOR KEY SHARE",
        source,
        owner,
        generation,
    )
    return row is not None


async def register(conn: Any, sources: Sequence[SourceId]) -> None:
    """A lease row for each configured source, unowned until someone claims it.

    Only the missing ones are inserted: the NOT EXISTS is a plain read, whereas ON CONFLICT
    alone checks each existing row against the transactions that have it locked (every
    commit in flight holds its row) and, at 10,000 sources being polled, kept a new
    replica out of the membership for 40 s (figure 7).
    """
    await conn.execute(
        "INSERT INTO leases (source) SELECT s FROM unnest($1::text[]) AS s "
        "WHERE NOT EXISTS (SELECT 1 FROM leases WHERE source = s) ON CONFLICT DO NOTHING",
        list(sources),
    )


async def heartbeat(conn: Any, replica: str, ttl: float) -> list[str]:
    """Say this replica is alive for ``ttl`` seconds; return every live replica, sorted."""
    await conn.execute(
        "INSERT INTO replicas (replica, expires_at) "
        "VALUES ($1, clock_timestamp() + make_interval(secs => $2)) "
        "ON CONFLICT (replica) DO UPDATE SET expires_at = excluded.expires_at",
        replica,
        ttl,
    )
    # The dead are forgotten, so the table stays as small as the deployment.
    await conn.execute(
        "DELETE FROM replicas WHERE expires_at < clock_timestamp() - make_interval(secs => $1)",
        ttl * 10,
    )
    rows = await conn.fetch(
        "SELECT replica FROM replicas WHERE expires_at > clock_timestamp() ORDER BY replica"
    )
    return [row[0] for row in rows]


async def renew(conn: Any, replica: str, ttl: float) -> dict[SourceId, int]:
    """Extend every unexpired lease of ``replica``; return what it still holds.

    An expired lease is not renewed even if nobody took it: it is claimed afresh, with a
    new generation, so a commit prepared under the old one stays refused.
    """
    rows = await conn.fetch(
        "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $2) "
        "WHERE owner = $1 AND expires_at > clock_timestamp() RETURNING source, generation",
        replica,
        ttl,
    )
    return {SourceId(row[0]): int(row[1]) for row in rows}


async def claim(
    conn: Any, replica: str, candidates: Sequence[SourceId], limit: int, ttl: float
) -> dict[SourceId, int]:
    """Take up to ``limit`` unowned or expired leases among ``candidates``.

    SKIP LOCKED: rows another replica is claiming, or whose owner is committing, are passed
    over rather than waited for; each claim bumps the generation, fencing the old owner.
    Random order, so replicas claiming together rarely contend for the same rows.
    """
    if limit <= 0 or not candidates:
        return {}
    rows = await conn.fetch(
        "WITH free AS (SELECT source FROM leases "
        "WHERE source IN (SELECT unnest($2::text[])) "
        "AND (owner IS NULL OR expires_at <= clock_timestamp()) "
        "ORDER BY random() LIMIT $3 FOR UPDATE SKIP LOCKED) "
        "UPDATE leases l SET owner = $1, generation = l.generation + 1, "
        "expires_at = clock_timestamp() + make_interval(secs => $4) "
        "FROM free WHERE l.source = free.source RETURNING l.source, l.generation",
        replica,
        list(candidates),
        limit,
        ttl,
    )
    return {SourceId(row[0]): int(row[1]) for row in rows}


async def release(conn: Any, replica: str, sources: Sequence[SourceId]) -> None:
    """Give leases up now (surplus, or SIGTERM) rather than let them expire."""
    await conn.execute(
        "UPDATE leases SET owner = NULL, expires_at = '-infinity' "
        "WHERE owner = $1 AND source IN (SELECT unnest($2::text[]))",
        replica,
        list(sources),
    )


async def leave(conn: Any, replica: str) -> None:
    """Release everything and drop out of the live replicas (a clean shutdown)."""
    await conn.execute(
        "UPDATE leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1", replica
    )
    await conn.execute("DELETE FROM replicas WHERE replica = $1", replica)
