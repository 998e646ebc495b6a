"""Shotgun behaviours the documentation implies, against the simulator on 127.0.0.1:
co-hosted tickets past page 1, cancelled events, ticket type changes, new events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest

from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.envelope import OutboxEvent
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.http import ProviderHttpClient
from notifier.providers.shotgun import ShotgunProvider, decode_state
from notifier.providers.shotgun.events import PROBE_INTERVAL
from notifier.store.memory import MemoryStore
from notifier.timeparse import parse_timestamp

ORGANIZER = 173027
COHOST_OWNER = 999
TOKEN = "org-token-5f1c"
PAGE = 5
SOURCE = SourceId("shotgun-main")


@dataclass
class Clock:
    """The real time plus an offset a test moves forward (the adapter's probe schedule)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Env:
    sim: ShotgunSimulator
    base_url: str
    event_id: int
    clock: Clock = field(default_factory=Clock)
    clients: list[ProviderHttpClient] = field(default_factory=list)

    def provider(self, *, cohosted: bool = False, max_pages: int = 20) -> ShotgunProvider:
        client = ProviderHttpClient(self.base_url)
        self.clients.append(client)
        return ShotgunProvider(
            SOURCE,
            ORGANIZER,
            TOKEN,
            base_url=self.base_url,
            http=client,
            include_cohosted_events=cohosted,
            max_pages=max_pages,
            clock=self.clock,
        )


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = ShotgunSimulator(page_size=PAGE)
    sim.add_organizer(ORGANIZER, TOKEN)
    sim.add_organizer(COHOST_OWNER, "cohost-owner-token")
    event_id = sim.add_event(ORGANIZER, 410006)
    runner = await serve(sim, "127.0.0.1", 0)
    built = Env(sim, "http://127.0.0.1:" + str(runner.addresses[0][1]), event_id)
    yield built
    for client in built.clients:
        await client.close()
    await runner.cleanup()


class Door:
    """A poller over one adapter with an in-memory store: what the service does per source."""

    def __init__(self, provider: ShotgunProvider) -> None:
        self.store = MemoryStore()
        self.poller = SourcePoller(
            SourceSettings(organizer="acme", source=SOURCE, provider="shotgun"),
            provider=provider,
            store=self.store,
            route=lambda _: ["memory"],
            clock=lambda: datetime.now(UTC),
        )

    async def poll(self) -> list[OutboxEvent]:
        return (await self.poller.poll_once()).events

    async def poll_until_done(self, limit: int = 20) -> list[OutboxEvent]:
        """Poll again at once while the adapter says it stopped at its page cap."""
        events: list[OutboxEvent] = []
        for _ in range(limit):
            outcome = await self.poller.poll_once()
            events.extend(outcome.events)
            if not outcome.more:
                return events
        raise AssertionError("the read never finished")


def issue(sim: ShotgunSimulator, event_id: int, count: int, deal_id: int = 12_345_678) -> list[int]:
    return [
        sim.create_ticket(event_id, first_name="Guest", last_name=str(n), deal_id=deal_id)
        for n in range(count)
    ]


def data_of(event: OutboxEvent) -> dict[str, object]:
    loaded = orjson.loads(event.data)
    assert isinstance(loaded, dict)
    return loaded


# -- co-hosted tickets past page 1


async def test_the_simulators_next_link_drops_include_cohosted_events(env: Env) -> None:
    """As the documented example shows: the next link of a co-hosted read lacks the flag."""
    issue(env.sim, env.event_id, PAGE)
    url = env.base_url + "/tickets?organizer_id=" + str(ORGANIZER) + "&include_cohosted_events=1"
    headers = {"Authorization": "Bearer " + TOKEN}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        body = await answer.json()
    assert body["params"]["include_cohosted_events"] is True
    assert "after=" in body["pagination"]["next"]
    assert "include_cohosted_events" not in body["pagination"]["next"]


async def test_cohosted_tickets_on_later_pages_are_all_seen(env: Env) -> None:
    """Own and co-hosted tickets interleaved over five pages: the first read and a later
    incremental one see every co-hosted ticket, and every request kept the flag."""
    cohosted_event = env.sim.add_event(COHOST_OWNER, 500001, cohost_ids=[ORGANIZER])
    own, cohosted = [], []
    for _ in range(12):
        own += issue(env.sim, env.event_id, 1)
        cohosted += issue(env.sim, cohosted_event, 1)
    door = Door(env.provider(cohosted=True))
    await door.poll()  # baseline: 24 tickets, 5 pages
    stored = await door.store.load(SOURCE)
    assert {int(ticket) for ticket in stored.tickets} == set(own + cohosted)
    for ticket in cohosted + own[:3]:  # 15 changes: 3 pages, the co-hosted ones first
        env.sim.scan(ticket)
    events = await door.poll()
    assert sorted(int(event.subject) for event in events) == sorted(cohosted + own[:3])
    assert all(seen.query.get("include_cohosted_events") == "1" for seen in env.sim.seen)
    again = await door.poll()
    assert again == []  # the cursor moved past exactly what was read, skipping nothing
    sweep = await door.poller.poll_once(full=True)  # a reconcile sweep pages the same way
    assert (sweep.records, sweep.events) == (24, [])


# -- cancelled events


async def test_a_cancelled_event_cancels_each_valid_ticket(env: Env) -> None:
    """The event is cancelled without its tickets being updated: within one probe interval
    each valid ticket yields ticket.canceled at event_canceled_at, marked as the event's;
    tickets already refunded or pending stay as they are, and it is told once."""
    other_event = env.sim.add_event(ORGANIZER, 410007)
    valid = issue(env.sim, env.event_id, 7)
    refunded = issue(env.sim, env.event_id, 1)[0]
    env.sim.refund(refunded)
    pending = env.sim.create_ticket(env.event_id, status="pending_approval")
    elsewhere = issue(env.sim, other_event, 2)
    door = Door(env.provider(max_pages=1))  # the sweep resumes across polls
    await door.poll_until_done()
    env.sim.cancel_event(env.event_id)
    assert await door.poll_until_done() == []  # no ticket was updated; no probe due yet
    env.clock.offset += PROBE_INTERVAL
    events = await door.poll_until_done()
    canceled_at = parse_timestamp(env.sim.ticket(valid[0])["event_canceled_at"])
    assert sorted(int(event.subject) for event in events) == valid
    assert {event.type for event in events} == {"ticket.canceled"}
    for event in events:
        data = data_of(event)
        assert parse_timestamp(data["occurred_at"]) == canceled_at
        assert data["details"]["canceled_by"] == "event"  # type: ignore[index]
    assert refunded not in elsewhere + [int(e.subject) for e in events]
    assert pending not in [int(e.subject) for e in events]
    env.clock.offset += PROBE_INTERVAL
    assert await door.poll_until_done() == []
    state = decode_state((await door.store.load(SOURCE)).cursor)[1]
    assert state[str(env.event_id)].state == "swept"
    assert state[str(other_event)].state == "open"


async def test_a_cancelled_event_seen_on_an_updated_ticket_is_swept_at_once(env: Env) -> None:
    """A ticket of the cancelled event updated later shows the cancellation: no probe wait."""
    valid = issue(env.sim, env.event_id, 4)
    door = Door(env.provider())
    await door.poll()
    env.sim.cancel_event(env.event_id)
    env.sim.scan(valid[0])
    events = await door.poll_until_done()
    assert sorted(int(e.subject) for e in events if e.type == "ticket.canceled") == valid


async def test_a_full_read_needs_no_extra_sweep_of_a_cancelled_event(env: Env) -> None:
    """A read from scratch (a baseline, a reconcile sweep) reads every ticket already: a
    cancelled event among them is marked swept without reading it twice."""
    issue(env.sim, env.event_id, 7)
    env.sim.cancel_event(env.event_id)
    provider = env.provider()
    result = await provider.poll(None)
    assert result.complete
    assert result.requests == 2  # 7 tickets in pages of 5, no sweep
    assert {t.status.value for t in result.tickets} == {"canceled"}
    assert decode_state(result.cursor)[1][str(env.event_id)].state == "swept"


# -- ticket type changes


async def test_an_upgrade_yields_type_changed(env: Env) -> None:
    """A ticket moved to another deal: ticket.type_changed naming both deals."""
    (ticket,) = issue(env.sim, env.event_id, 1)
    door = Door(env.provider())
    await door.poll()
    env.sim.change_deal(ticket, deal_id=12_345_680, deal_title="VIP", deal_price=8999)
    (event,) = await door.poll()
    data = data_of(event)
    assert event.type == "ticket.type_changed"
    assert data["before"]["ticket_type"] == {"id": "12345678", "name": "Early Bird"}  # type: ignore[index]
    assert data["after"]["ticket_type"] == {"id": "12345680", "name": "VIP"}  # type: ignore[index]


# -- discovery


async def test_an_event_added_mid_run_is_read_without_a_restart(env: Env) -> None:
    """A source without event_ids reads the organizer's every event: tickets of an event
    created after the source started are issued events on the next poll."""
    issue(env.sim, env.event_id, 3)
    door = Door(env.provider())
    await door.poll()
    new_event = env.sim.add_event(ORGANIZER, 410099)
    fresh = issue(env.sim, new_event, 2)
    events = await door.poll()
    assert [(e.type, int(e.subject)) for e in events] == [("ticket.issued", t) for t in fresh]
    assert {seen.query.get("event_id") for seen in env.sim.seen} == {None}
