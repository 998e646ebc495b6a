"""A backlog is read in bounded steps, each committed: progress survives a crash, and a
baseline spread over several steps stays silent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.http import ProviderHttpClient
from notifier.providers.shotgun import ShotgunProvider
from notifier.store.sqlite import SqliteStore

ORGANIZER, TOKEN = 173027, "bounded-token"
SOURCE = SourceId("s")


@dataclass
class Rig:
    sim: ShotgunSimulator
    base_url: str
    tickets: list[int]
    state: Path
    clients: list[ProviderHttpClient]

    async def poller(self) -> tuple[SourcePoller, SqliteStore]:
        """A fresh process: new adapter (two pages of five per poll), same state file."""
        http = ProviderHttpClient(self.base_url)
        self.clients.append(http)
        provider = ShotgunProvider(
            "s", ORGANIZER, TOKEN, base_url=self.base_url, http=http, max_pages=2
        )
        store = await SqliteStore(self.state).open()
        poller = SourcePoller(
            SourceSettings(organizer="acme", source=SOURCE, provider="shotgun"),
            provider=provider,
            store=store,
            route=lambda _: ["kafka"],
            clock=lambda: datetime.now(UTC),
        )
        return poller, store


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """23 tickets on a simulator serving pages of five."""
    sim = ShotgunSimulator(page_size=5)
    sim.add_organizer(ORGANIZER, TOKEN)
    event = sim.add_event(ORGANIZER)
    tickets = [sim.create_ticket(event) for _ in range(23)]
    runner = await serve(sim)
    host, port = runner.addresses[0][:2]
    built = Rig(sim, f"http://{host}:{port}", tickets, tmp_path / "state.db", [])
    yield built
    for client in built.clients:
        await client.close()
    await runner.cleanup()


async def test_a_capped_baseline_commits_in_steps_and_stays_silent(rig: Rig) -> None:
    """Ten tickets a step: three steps, three commits, no event, then settled."""
    poller, store = await rig.poller()
    steps = []
    while True:
        report = await poller.poll_once()
        steps.append((report.records, report.more, len(report.events)))
        if not report.more:
            break
    assert steps == [(10, True, 0), (10, True, 0), (3, False, 0)]
    assert (await store.load(SOURCE)).settled
    rig.sim.scan(rig.tickets[0])
    assert [e.type for e in (await poller.poll_once()).events] == ["ticket.checked_in"]
    await store.close()


async def test_a_baseline_interrupted_by_a_crash_resumes_silently(rig: Rig) -> None:
    """A process killed after one step resumes from the committed cursor, still a baseline."""
    first, store = await rig.poller()
    assert (await first.poll_once()).more
    await store.close()  # the process dies here

    second, store = await rig.poller()
    reports = [await second.poll_once(), await second.poll_once()]
    assert [(r.records, r.more) for r in reports] == [(10, True), (3, False)]
    assert all(r.events == [] for r in reports)
    assert len((await store.load(SOURCE)).tickets) == 23
    await store.close()
