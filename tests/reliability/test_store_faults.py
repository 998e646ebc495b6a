"""Scenario 5, disk and store: a locked database, a read-only connection, a full disk, a
commit that raises. The poll fails loudly (StoreError), the cursor does not advance, and
after recovery every change is committed exactly once."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.errors import StoreError
from tests.reliability.ground_truth import check
from tests.reliability.rig import Rig, open_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    built = await open_rig(tmp_path)
    yield built
    await built.close()


async def _pragma(rig: Rig, sql: str) -> None:
    store = rig.store

    def run() -> None:
        store._conn.execute(sql)

    await store._run(run)


async def _fails_then_recovers(rig: Rig, fault: str, cure: str) -> None:
    for _ in range(30):
        rig.driver.step()
    before = await rig.cursor()
    await _pragma(rig, fault)
    with pytest.raises(StoreError) as failure:
        await rig.poller.poll_once()
    assert "state store" in str(failure.value)
    await _pragma(rig, cure)
    assert await rig.cursor() == before
    await rig.poller.poll_once()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)


async def test_a_read_only_store_fails_the_poll_and_loses_nothing(rig: Rig) -> None:
    """Writes refused (read-only): StoreError, cursor kept, all committed after recovery."""
    await _fails_then_recovers(rig, "PRAGMA query_only = ON", "PRAGMA query_only = OFF")


async def test_a_full_disk_fails_the_poll_and_loses_nothing(rig: Rig) -> None:
    """SQLITE_FULL (page limit reached): StoreError, cursor kept, all committed after."""
    pages = sqlite3.connect(rig.store._path).execute("PRAGMA page_count").fetchone()[0]
    await _fails_then_recovers(
        rig, f"PRAGMA max_page_count = {pages}", "PRAGMA max_page_count = 1073741823"
    )


async def test_a_locked_store_fails_the_poll_and_loses_nothing(rig: Rig) -> None:
    """Another connection holds BEGIN EXCLUSIVE: StoreError, then recovery once released."""
    await _pragma(rig, "PRAGMA busy_timeout = 200")
    for _ in range(10):
        rig.driver.step()
    before = await rig.cursor()
    other = sqlite3.connect(rig.store._path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            await rig.poller.poll_once()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await rig.cursor() == before
    await rig.poller.poll_once()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)


async def test_a_commit_that_raises_leaves_memory_as_the_store_has_it(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing commit (wrapped store) leaves the poller retrying the same events, same ids."""
    original = rig.store.commit
    calls = {"n": 0}

    async def failing(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("state store: injected commit failure")
        await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rig.store, "commit", failing)
    for _ in range(10):
        rig.driver.step()
    with pytest.raises(StoreError):
        await rig.poller.poll_once()
    first = await rig.poller.poll_once(dry_run=True)
    await rig.poller.poll_once()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)
    assert {e.id for e in first.events} == {e.id for e in await rig.outbox()}
