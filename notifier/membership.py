"""Which sources this replica polls, when state is shared: the lease keeper and the loop that
starts and stops poll loops as leases come and go (docs/design.md §10).

Every ``interval`` the keeper, in one round: says the replica is alive, renews its leases,
releases the surplus over its fair share (notifier/leases.py) or claims unowned and expired
leases up to it. The runner then starts a poll loop for each newly held source (after the
poller forgets what it remembered, since another replica may have moved the source on) and
stops the loops of sources no longer held. Fencing in the store, not this loop, is what makes
a late commit harmless: a replica that was paused past its lease cannot commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from notifier.errors import StoreError
from notifier.leases import plan
from notifier.model import SourceId
from notifier.store import pg_leases
from notifier.store.postgres import PostgresStore

log = structlog.get_logger(__name__)


def replica_name() -> str:
    """Unique per process: the pod's hostname, the pid and a random tail (a restarted pod
    with the same name must not inherit the leases of its previous life)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class LeaseKeeper:
    """Claims, renews and releases this replica's leases; tells the store what it holds."""

    def __init__(self, store: PostgresStore, sources: Sequence[SourceId], *, ttl: float) -> None:
        if store.replica is None:
            raise ValueError("a lease keeper needs a store opened with a replica name")
        self.replica = store.replica
        self._store = store
        self._sources = list(dict.fromkeys(sources))
        self._known = frozenset(self._sources)  # membership tests: 10,000 sources, every round
        self.ttl = ttl
        self._valid_until = 0.0  # monotonic: past it, held leases may have expired unseen
        self.rounds = 0  # completed rounds, for tests and benchmarks

    @property
    def interval(self) -> float:
        """Several rounds per lease, so one slow or failed round never lets a lease lapse."""
        return max(0.1, self.ttl / 5)

    async def start(self) -> None:
        async with self._store.connection(leases=True) as conn:
            await pg_leases.register(conn, self._sources)

    async def tick(self) -> frozenset[SourceId]:
        """One round; returns the sources held after it. A failed round keeps the last
        answer only while it cannot have expired."""
        started = time.monotonic()
        try:
            held = await self._round()
        except StoreError as exc:
            log.warning("lease_round_failed", error=str(exc))
            if time.monotonic() >= self._valid_until:
                self._store.held = {}
            return frozenset(self._store.held)
        self._valid_until = started + self.ttl
        self.rounds += 1
        took = time.monotonic() - started
        if took > self.interval:  # a lease may lapse before the next round: say so
            log.warning("lease_round_slow", seconds=round(took, 2), held=len(held))
        return frozenset(held)

    async def _round(self) -> dict[SourceId, int]:
        async with self._store.connection(leases=True) as conn:
            live = await pg_leases.heartbeat(conn, self.replica, self.ttl)
            held = await pg_leases.renew(conn, self.replica, self.ttl)
            held = {source: gen for source, gen in held.items() if source in self._known}
            step = plan(held=held, total=len(self._sources), live=live, me=self.replica)
            if step.release:
                await pg_leases.release(conn, self.replica, step.release)
                for source in step.release:
                    held.pop(source)
                log.info("leases_released", count=len(step.release), live=len(live))
            if step.claim:
                free = [source for source in self._sources if source not in held]
                claimed = await pg_leases.claim(conn, self.replica, free, step.claim, self.ttl)
                held.update(claimed)
                if claimed:
                    log.info("leases_claimed", count=len(claimed), live=len(live))
        self._store.held = held
        return held

    async def leave(self) -> None:
        """Release everything at once (SIGTERM): the others take over within one round."""
        self._store.held = {}
        try:
            async with self._store.connection(leases=True) as conn:
                await pg_leases.leave(conn, self.replica)
        except StoreError as exc:  # the leases will expire instead
            log.warning("lease_release_failed", error=str(exc))


@dataclass(frozen=True, slots=True)
class _Running:
    task: asyncio.Task[None]
    stop: asyncio.Event


async def run_leased(
    keeper: LeaseKeeper,
    loops: Mapping[SourceId, Callable[[asyncio.Event], Coroutine[Any, Any, None]]],
    forget: Callable[[SourceId], None],
    stop: asyncio.Event,
) -> None:
    """Keep a poll loop running for exactly the sources this replica holds, until ``stop``.

    ``loops[source](its_stop)`` runs one source's poll loop until its event is set;
    ``forget(source)`` drops what its poller remembered, before a newly held source runs.
    A poll loop that dies ends this too (the replica is no longer alive, as without leases).
    """
    running: dict[SourceId, _Running] = {}
    registered = False
    try:
        while not stop.is_set():
            # A database that is not there yet at start-up is waited for, not fatal.
            registered = registered or await _registered(keeper)
            held = await keeper.tick() if registered else frozenset()
            for source in sorted(held - running.keys()):
                if source not in loops:
                    continue
                forget(source)
                own_stop = asyncio.Event()
                task = asyncio.create_task(loops[source](own_stop), name=f"poll:{source}")
                running[source] = _Running(task, own_stop)
            for source in running.keys() - held:
                running[source].stop.set()
            for source, entry in list(running.items()):
                if entry.task.done():
                    del running[source]
                    entry.task.result()  # re-raises a dead loop's error
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=keeper.interval)
    finally:
        for entry in running.values():
            entry.stop.set()
        await asyncio.gather(*(entry.task for entry in running.values()), return_exceptions=True)
        await keeper.leave()


async def _registered(keeper: LeaseKeeper) -> bool:
    try:
        await keeper.start()
    except StoreError as exc:
        log.warning("lease_registration_failed", error=str(exc))
        return False
    return True
