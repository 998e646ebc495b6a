"""A reconcile sweep catches what an incremental feed missed, and only that."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.http import ProviderHttpClient
from notifier.providers.shotgun import ShotgunProvider
from notifier.store.memory import MemoryStore

ORGANIZER, TOKEN = 173027, "reconcile-token"


@pytest.fixture
async def poller() -> AsyncIterator[tuple[ShotgunSimulator, SourcePoller, list[int]]]:
    """A Shotgun source on the simulator, polled through the real poller."""
    sim = ShotgunSimulator(page_size=10)
    sim.add_organizer(ORGANIZER, TOKEN)
    event = sim.add_event(ORGANIZER)
    tickets = [sim.create_ticket(event) for _ in range(25)]
    runner = await serve(sim)
    host, port = runner.addresses[0][:2]
    base_url = f"http://{host}:{port}"
    http = ProviderHttpClient(base_url)
    provider = ShotgunProvider("s", ORGANIZER, TOKEN, base_url=base_url, http=http)
    source = SourcePoller(
        SourceSettings(organizer="acme", source=SourceId("s"), provider="shotgun"),
        provider=provider,
        store=MemoryStore(),
        route=lambda _: [],
        clock=lambda: datetime.now(UTC),
    )
    yield sim, source, tickets
    await http.close()
    await runner.cleanup()


async def test_a_change_behind_the_cursor_is_found_only_by_the_sweep(
    poller: tuple[ShotgunSimulator, SourcePoller, list[int]],
) -> None:
    """A scan recorded with an update time before the cursor (a provider-side backfill)
    is invisible to the incremental read and caught, once, by the full sweep."""
    sim, source, tickets = poller
    await source.poll_once()
    sim.create_ticket(sim.add_event(ORGANIZER))
    await source.poll_once()  # the new ticket moves the cursor past "now"
    old = tickets[3]
    sim.scan(old)
    sim.touch(old, at=datetime.now(UTC) - timedelta(days=1))

    assert (await source.poll_once()).events == []
    swept = await source.poll_once(full=True)
    assert [(e.type, e.subject) for e in swept.events] == [("ticket.checked_in", str(old))]
    assert (await source.poll_once(full=True)).events == []
