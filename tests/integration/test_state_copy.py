"""``notifier state copy``: a SQLite state moves into PostgreSQL whole, and polling carries on
from it without a baseline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from notifier.cli import main
from notifier.model import SourceId, TicketId
from notifier.store.base import DeliveryStatus, Outcome
from notifier.store.postgres import PostgresStore
from notifier.store.sqlite import SqliteStore
from tests.contract.test_store_contract import OTHER, SOURCE, TICKETS, commit, event, state

CONFIG = """\
state:
  path: {path}
organizers:
  - id: fabric
    name: Fabric
    sources:
      - {{id: shotgun-main, provider: shotgun, organizer_id: 1, token: t}}
"""


async def sqlite_state(path: Path) -> SqliteStore:
    store = await SqliteStore(path).open()
    await store.commit(
        SOURCE, tickets=TICKETS, events=[], cursor="c1", epoch="e-main", settled=True
    )
    await commit(store, event(1), event(2), event(3), cursor="c2")
    await store.commit(OTHER, tickets={}, events=[], cursor=None, epoch="e-tt", settled=False)
    first, second, _ = [d.position for d in await store.due("crm", now=1e12, limit=10)]
    await store.record(
        "crm",
        [
            Outcome(first, DeliveryStatus.DELIVERED),
            Outcome(second, DeliveryStatus.PARKED, error="x"),
        ],
    )
    await store.disable_sink("kafka", "410 Gone")
    # Retention's and the PII policy's own rows travel too: a ticket of a retired event
    # gone, the event remembered; holders recorded as digests.
    await store.commit(
        SOURCE,
        tickets={TicketId("T7"): state(1), TicketId("T8"): state(1)},
        events=[],
        cursor="c2",
        ticket_events={TicketId("T7"): "ev-old", TicketId("T8"): "ev-now"},
    )
    assert await store.retire_events(SOURCE, ["ev-old"]) == [TicketId("T7")]
    await store.set_pii_form(SOURCE, "hash:k1")
    return store


async def test_copy_moves_everything_and_new_commits_follow(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "state.db"
    sqlite = await sqlite_state(path)
    config = tmp_path / "notifier.yaml"
    config.write_text(CONFIG.format(path=path))
    assert (
        await asyncio.to_thread(main, ["state", "copy", "-c", str(config), "--to", postgres_url])
        == 0
    )
    assert "3 outbox" in capsys.readouterr().out
    target = await PostgresStore(postgres_url).open()
    try:
        for source in (SOURCE, OTHER):
            assert await target.load(source) == await sqlite.load(source)
        assert await target.deliveries() == await sqlite.deliveries()
        assert await target.disabled_sinks() == {"kafka": "410 Gone"}
        assert (await target.load(SOURCE)).retired_events == frozenset({"ev-old"})
        assert await target.pii_form(SOURCE) == "hash:k1"
        assert await target.retire_events(SOURCE, ["ev-now"]) == [TicketId("T8")]
        # The next commit's event comes after the copied ones, in the same order.
        await commit(target, event(4), cursor="c3", tickets={TicketId("T9"): state(2)})
        positions = [d.position for d in await target.deliveries(sink="crm")]
        assert positions == sorted(positions)
        assert len(positions) == 4
        assert (await target.load(SOURCE)).epoch == "e-main"
    finally:
        await target.close()
        await sqlite.close()


async def test_copy_refuses_a_target_that_holds_state(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second copy would merge two histories: refused, and the target is left as it was."""
    path = tmp_path / "state.db"
    await (await sqlite_state(path)).close()
    config = tmp_path / "notifier.yaml"
    config.write_text(CONFIG.format(path=path))
    assert (
        await asyncio.to_thread(main, ["state", "copy", "-c", str(config), "--to", postgres_url])
        == 0
    )
    assert (
        await asyncio.to_thread(main, ["state", "copy", "-c", str(config), "--to", postgres_url])
        == 1
    )
    assert "already holds state" in capsys.readouterr().out
    target = await PostgresStore(postgres_url).open()
    try:
        assert len(await target.deliveries()) == 6
        assert (await target.load(SourceId("shotgun-main"))).cursor == "c2"
    finally:
        await target.close()


def test_copy_needs_a_postgres_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "notifier.yaml"
    config.write_text(CONFIG.format(path=tmp_path / "state.db"))
    assert main(["state", "copy", "-c", str(config), "--to", "mysql://db/x"]) == 1
    assert "postgresql://" in capsys.readouterr().err
