"""An Eventpop source without event_ids follows the organizer's current and upcoming
events from its events list, and every read is cut into bounded, committed steps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from notifier.config.sources import EventpopSource
from notifier.errors import ConfigError, FatalProviderError
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.eventpop import DEFAULT_CLOSE_OUT, DISCOVERY_INTERVAL, decode_cursor
from notifier.store.sqlite import SqliteStore
from tests.integration.eventpop_rig import CLIENT_ID, ORGANIZER, Rig

TOKEN, REFRESH = "ep-access-d1", "ep-refresh-d1"
HOUR = timedelta(hours=1)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    started = await Rig.start()
    started.sim.add_organizer(ORGANIZER, TOKEN, refresh_token=REFRESH, client_id=CLIENT_ID)
    yield started
    await started.stop()


def event(rig: Rig, event_id: int, start: timedelta, end: timedelta, tickets: int = 2) -> list[int]:
    """An event starting and ending relative to now, with some tickets (their ids)."""
    now = rig.clock()
    rig.sim.add_event(ORGANIZER, event_id, start_at=now + start, end_at=now + end)
    return [rig.sim.create_ticket(event_id) for _ in range(tickets)]


def events_of(tickets: object) -> set[str]:
    return {ticket.event_id for ticket in tickets}  # type: ignore[attr-defined]


def ticket_reads(rig: Rig, event_id: int) -> int:
    path = "/api/public/organizers/" + str(ORGANIZER) + "/events/" + str(event_id) + "/tickets"
    return sum(1 for seen in rig.sim.seen if seen.path == path)


async def test_follows_every_current_and_upcoming_event(rig: Rig) -> None:
    event(rig, 1, -50 * HOUR, -48 * HOUR)  # over two days ago: past its close-out
    event(rig, 2, -3 * HOUR, -1 * HOUR)  # ended an hour ago: inside the close-out window
    event(rig, 3, -1 * HOUR, 3 * HOUR)  # on now
    event(rig, 4, 24 * 7 * HOUR, 24 * 7 * HOUR + 4 * HOUR)  # next week
    provider = rig.provider("ep", TOKEN, REFRESH)
    result = await provider.poll(None)
    assert events_of(result.tickets) == {"2", "3", "4"}
    assert ticket_reads(rig, 1) == 0
    assert set(result.event_windows) == {"2", "3", "4"}
    assert set(decode_cursor(result.cursor)) == {"event:2", "event:3", "event:4"}


async def test_an_event_added_mid_run_is_seen_without_restart(rig: Rig, tmp_path: Path) -> None:
    """Through the poller and a real store: the new event's tickets are issued events."""
    event(rig, 3, -1 * HOUR, 3 * HOUR)
    store = await SqliteStore(tmp_path / "state.db").open()
    poller = SourcePoller(
        SourceSettings(organizer="acme", source=SourceId("ep"), provider="eventpop"),
        provider=rig.provider("ep", TOKEN, REFRESH),
        store=store,
        route=lambda _: ["kafka"],
        clock=rig.clock,
    )
    assert (await poller.poll_once()).events == []  # the baseline
    event(rig, 5, 2 * HOUR, 6 * HOUR, tickets=3)  # created while the service runs
    rig.clock.advance(DISCOVERY_INTERVAL.total_seconds())
    report = await poller.poll_once()
    assert [e.type for e in report.events] == ["ticket.issued"] * 3
    assert all('"event_id":"5"' in e.data.decode() for e in report.events)
    await store.close()


async def test_an_ended_event_is_dropped_after_its_close_out(rig: Rig) -> None:
    event(rig, 3, -1 * HOUR, 3 * HOUR)
    provider = rig.provider("ep", TOKEN, REFRESH)
    cursor = (await provider.poll(None)).cursor
    rig.clock.advance(3 * 3600)
    rig.sim.end_event(3)
    late = rig.sim.create_ticket(3)  # sold at the door, synced after the end
    rig.clock.advance(DISCOVERY_INTERVAL.total_seconds())
    result = await provider.poll(cursor)
    assert [t.ticket_id for t in result.tickets] == [str(late)]  # inside the window: read
    rig.clock.advance(DEFAULT_CLOSE_OUT.total_seconds())
    reads = ticket_reads(rig, 3)
    dropped = await provider.poll(result.cursor)
    assert ticket_reads(rig, 3) == reads  # no longer read
    assert decode_cursor(dropped.cursor) == {}


async def test_event_ids_stay_a_filter_read_without_listing(rig: Rig) -> None:
    event(rig, 3, -1 * HOUR, 3 * HOUR)
    event(rig, 4, 2 * HOUR, 5 * HOUR)
    provider = rig.provider("ep", TOKEN, REFRESH, event_ids=[4])
    result = await provider.poll(None)
    assert events_of(result.tickets) == {"4"}
    assert not any(seen.path.endswith("/events") for seen in rig.sim.seen)


async def test_an_app_the_organizer_does_not_own_cannot_list_its_events() -> None:
    rig = await Rig.start(owner=None)
    try:
        rig.sim.add_organizer(ORGANIZER, TOKEN, refresh_token=REFRESH, client_id=CLIENT_ID)
        with pytest.raises(FatalProviderError, match="list the source's event_ids"):
            await rig.provider("ep", TOKEN, REFRESH).poll(None)
    finally:
        await rig.stop()


async def test_discovery_needs_the_application_credentials(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="client_id and client_secret"):
        rig.provider("ep", TOKEN, None)
    with pytest.raises(ValidationError, match="event_ids"):
        EventpopSource.model_validate(
            {"id": "ep", "provider": "eventpop", "organizer_id": 1, "access_token": "a"}
        )


# -- bounded steps ------------------------------------------------------------------------


async def test_a_backlog_is_read_in_steps_of_at_most_the_page_cap(rig: Rig) -> None:
    """40 tickets, pages of five (each next page re-reads the last second: four new),
    three pages a step: every ticket read, no step over the cap."""
    rig.sim.add_event(ORGANIZER, 71001)
    created: list[int] = []
    for _ in range(40):
        rig.clock.advance(10)
        created.append(rig.sim.create_ticket(71001))
    provider = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], max_pages=3)
    cursor: str | None = None
    seen: list[str] = []
    steps = 0
    while True:
        before = rig.sim.requests_served
        result = await provider.poll(cursor)
        assert rig.sim.requests_served - before <= 3
        seen.extend(t.ticket_id for t in result.tickets)
        cursor, steps = result.cursor, steps + 1
        if not result.more:
            break
    assert sorted(set(seen)) == [str(t) for t in created]
    assert steps >= 3


async def test_a_capped_baseline_commits_each_step(rig: Rig, tmp_path: Path) -> None:
    """Each step is committed: a new process resumes from the stored cursor."""
    rig.sim.add_event(ORGANIZER, 71001)
    for _ in range(23):
        rig.clock.advance(10)
        rig.sim.create_ticket(71001)
    state = tmp_path / "state.db"
    store = await SqliteStore(state).open()

    def poller(on: SqliteStore) -> SourcePoller:
        return SourcePoller(
            SourceSettings(organizer="acme", source=SourceId("ep"), provider="eventpop"),
            provider=rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], max_pages=2),
            store=on,
            route=lambda _: ["kafka"],
            clock=lambda: datetime.now(UTC),
        )

    first = await poller(store).poll_once()
    assert first.more
    assert first.records == 9
    await store.close()
    store = await SqliteStore(state).open()  # a crash and restart between steps
    again = poller(store)
    records = []
    while True:
        report = await again.poll_once()
        records.append(report.records)
        assert report.events == []  # the baseline stays silent across steps
        if not report.more:
            break
    assert sum(records) == 14  # the rest, nothing read twice
    assert (await store.load(SourceId("ep"))).settled
    await store.close()


async def test_caught_up_events_are_read_before_a_backlog(rig: Rig) -> None:
    """A live event's scan is read in the first step even while a new event's backlog
    takes several steps."""
    (live,) = event(rig, 3, -1 * HOUR, 3 * HOUR, tickets=1)
    provider = rig.provider("ep", TOKEN, REFRESH, max_pages=3)
    cursor = (await provider.poll(None)).cursor
    event(rig, 5, 1 * HOUR, 5 * HOUR, tickets=40)  # 8 pages of five
    rig.clock.advance(DISCOVERY_INTERVAL.total_seconds())
    rig.sim.use(live)
    first = await provider.poll(cursor)
    assert first.more
    assert [t.checked_in_at is not None for t in first.tickets if t.event_id == "3"] == [True]


async def test_events_far_from_their_doors_are_read_once_a_minute(rig: Rig) -> None:
    """Live events every poll; one next week at most once a minute (the budget is shared)."""
    event(rig, 3, -1 * HOUR, 3 * HOUR)
    event(rig, 4, 24 * 7 * HOUR, 24 * 7 * HOUR + 4 * HOUR)
    provider = rig.provider("ep", TOKEN, REFRESH)
    cursor = (await provider.poll(None)).cursor
    reads = {3: ticket_reads(rig, 3), 4: ticket_reads(rig, 4)}
    for _ in range(5):  # five polls, 5 s apart
        rig.clock.advance(5)
        cursor = (await provider.poll(cursor)).cursor
    assert ticket_reads(rig, 3) - reads[3] == 5
    assert ticket_reads(rig, 4) == reads[4]
    rig.sim.transfer(rig.sim.create_ticket(4), "Kanya Srisuk", "kanya@x.co.th")
    rig.clock.advance(60)
    result = await provider.poll(cursor)
    assert ticket_reads(rig, 4) == reads[4] + 1
    assert events_of(result.tickets) == {"4"}


async def test_a_quiet_event_does_not_make_every_poll_deep(rig: Rig) -> None:
    """With a lookback, polls between deep reads cost one page per live event, even while
    a quiet event (read once a minute) still awaits its first deep read."""
    event(rig, 3, -1 * HOUR, 3 * HOUR, tickets=0)
    event(rig, 4, 24 * 7 * HOUR, 24 * 7 * HOUR + 4 * HOUR)
    for _ in range(12):  # the lookback window holds three pages of the live event
        rig.clock.advance(1)
        rig.sim.create_ticket(3)
    provider = rig.provider("ep", TOKEN, REFRESH, lookback=timedelta(minutes=2))
    cursor = (await provider.poll(None)).cursor
    rig.clock.advance(5)
    cursor = (await provider.poll(cursor)).cursor  # deep: the live event's first anchor
    costs = []
    for _ in range(4):
        rig.clock.advance(5)
        before = rig.sim.requests_served
        cursor = (await provider.poll(cursor)).cursor
        costs.append(rig.sim.requests_served - before)
    assert costs == [1, 1, 1, 1]
