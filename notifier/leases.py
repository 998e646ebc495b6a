"""Ownership by lease, the pure part: how many sources a replica should hold, which to let go.

The database says who is alive and who holds what (notifier/store/pg_leases.py); this says
what a replica does about it, with no I/O and no clock. Shares are exact: with ``n`` sources
and ``r`` live replicas, the first ``n mod r`` replicas (by name) hold ``ceil(n / r)``, the
others ``floor(n / r)``, so the shares add up to ``n`` and every source has a taker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from notifier.model import SourceId


@dataclass(frozen=True, slots=True)
class Plan:
    """One round of a replica's lease keeping: release these, then claim up to ``claim``."""

    release: tuple[SourceId, ...]
    claim: int


def fair_share(total: int, live: Sequence[str], me: str) -> int:
    """How many of ``total`` sources ``me`` should hold among the ``live`` replicas."""
    replicas = sorted({*live, me})  # me counts even before my heartbeat is seen
    base, extra = divmod(total, len(replicas))
    return base + (1 if replicas.index(me) < extra else 0)


def plan(*, held: Collection[SourceId], total: int, live: Sequence[str], me: str) -> Plan:
    """Release the surplus over the fair share, or claim up to it.

    Which surplus goes is decided by a stable hash of (source, replica): two replicas that
    each hold too many release different sources rather than the same "first" ones, and a
    replica gives up the same sources on every round, not a different set each time.
    """
    share = fair_share(total, live, me)
    if len(held) > share:
        ranked = sorted(held, key=lambda source: _rank(source, me))
        return Plan(release=tuple(ranked[share:]), claim=0)
    return Plan(release=(), claim=share - len(held))


def _rank(source: SourceId, salt: str) -> bytes:
    return hashlib.blake2b(f"{source}\x00{salt}".encode(), digest_size=8).digest()
