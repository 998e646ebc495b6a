"""Lease keepers on a real PostgreSQL: fair shares, release on leave, takeover on expiry,
and a replica stopped with SIGSTOP past its lease that cannot commit after SIGCONT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import IO

import pytest

from notifier.membership import LeaseKeeper
from notifier.model import SourceId
from notifier.store.postgres import PostgresStore

SOURCES = [SourceId(f"src-{n:02d}") for n in range(10)]


async def keeper(url: str, name: str, ttl: float) -> LeaseKeeper:
    store = await PostgresStore(url, replica=name).open()
    made = LeaseKeeper(store, SOURCES, ttl=ttl)
    await made.start()
    return made


async def rounds(keepers: list[LeaseKeeper], count: int) -> list[frozenset[SourceId]]:
    held: list[frozenset[SourceId]] = []
    for _ in range(count):
        held = [await k.tick() for k in keepers]
    return held


async def close(*keepers: LeaseKeeper) -> None:
    for k in keepers:
        await k._store.close()


async def test_replicas_converge_to_fair_disjoint_shares(postgres_url: str) -> None:
    """One replica takes everything; two more join: 4/3/3, disjoint, covering every source."""
    first = await keeper(postgres_url, "r1", 30.0)
    try:
        assert await first.tick() == frozenset(SOURCES)
        others = [await keeper(postgres_url, name, 30.0) for name in ("r2", "r3")]
        held = await rounds([first, *others], 3)
        assert sorted(len(h) for h in held) == [3, 3, 4]
        assert frozenset().union(*held) == frozenset(SOURCES)
        assert sum(len(h) for h in held) == len(SOURCES)
        await others[0].leave()  # SIGTERM: released at once, not after expiry
        held = await rounds([first, others[1]], 2)
        assert sorted(len(h) for h in held) == [5, 5]
        assert frozenset().union(*held) == frozenset(SOURCES)
    finally:
        await close(first, *others)


async def test_a_dead_replicas_sources_move_after_its_lease(postgres_url: str) -> None:
    """No leave (SIGKILL): the survivor holds everything once the dead one's lease expires."""
    ttl = 0.6
    dead, alive = await keeper(postgres_url, "dead", ttl), await keeper(postgres_url, "alive", ttl)
    try:
        held = await rounds([dead, alive], 2)
        assert sorted(len(h) for h in held) == [5, 5]
        started = time.monotonic()
        while len(await alive.tick()) < len(SOURCES):
            assert time.monotonic() - started < ttl + 2 * alive.interval + 1.0
            await asyncio.sleep(alive.interval)
        assert time.monotonic() - started >= ttl * 0.5  # not before the lease could expire
    finally:
        await close(dead, alive)


CHILD = """
import asyncio, sys
from notifier.membership import LeaseKeeper
from notifier.store.postgres import LeaseLost, PostgresStore
from notifier.model import SourceId

async def main(url):
    store = await PostgresStore(url, replica="paused").open()
    keeper = LeaseKeeper(store, [SourceId("src-00")], ttl=1.0)
    await keeper.start()
    assert await keeper.tick() == {"src-00"}
    print("held", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        await store.commit(SourceId("src-00"), tickets={}, events=[], cursor="from-paused")
        print("committed", flush=True)
    except LeaseLost:
        print("lease-lost", flush=True)
    await store.close()

asyncio.run(main(sys.argv[1]))
"""


def said(stdout: IO[str]) -> str:
    """The child's next word, past its log lines (structlog writes to stdout too)."""
    for line in stdout:
        if line.strip() in {"held", "committed", "lease-lost"}:
            return line.strip()
    return "<exited>"


@pytest.mark.parametrize("taken_over", [True, False], ids=["taken-over", "expired-only"])
async def test_a_replica_paused_past_its_lease_cannot_commit(
    postgres_url: str, taken_over: bool
) -> None:
    """SIGSTOP a replica holding a lease, let the lease expire, SIGCONT: its commit is refused."""
    child = subprocess.Popen(  # noqa: ASYNC220, S603 -- a real process to stop and continue
        [sys.executable, "-c", CHILD, postgres_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.stdin is not None
    assert child.stdout is not None
    rival = await PostgresStore(postgres_url, replica="rival").open()
    try:
        assert await asyncio.to_thread(said, child.stdout) == "held"
        child.send_signal(signal.SIGSTOP)
        await asyncio.sleep(1.5)  # past the child's 1 s lease
        if taken_over:
            keeper_b = LeaseKeeper(rival, [SourceId("src-00")], ttl=30.0)
            assert await keeper_b.tick() == {"src-00"}
            await rival.commit(SourceId("src-00"), tickets={}, events=[], cursor="from-rival")
        child.send_signal(signal.SIGCONT)
        child.stdin.write("commit\n")
        child.stdin.flush()
        assert await asyncio.to_thread(said, child.stdout) == "lease-lost"
        snapshot = await rival.load(SourceId("src-00"))
        assert snapshot.cursor == ("from-rival" if taken_over else None)
    finally:
        child.kill()
        await asyncio.to_thread(child.communicate)  # reaps it and closes its pipes
        await rival.close()
