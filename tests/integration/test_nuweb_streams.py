"""Nuweb against its simulator: streams that fail alone, the deprecated endpoint going away,
next links on the spec's foreign origin, the 60 s cache, named holders, event discovery
and bounded steps. One fake clock drives simulator and adapter; sleeping advances it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from structlog.testing import capture_logs

from notifier.dev.simulators.nuweb import (
    ENTRY,
    EVENT_TICKETS,
    EVENTS,
    ORDER_ITEMS,
    SALE_ITEMS,
    SPEC_LINK_ORIGIN,
    Fault,
    NuwebSimulator,
    serve,
)
from notifier.envelope import OutboxEvent
from notifier.errors import ProviderError
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.nuweb import (
    CLOSE_OUT,
    EVENTS_INTERVAL,
    ORDER_ITEMS_INTERVAL,
    RETRY_POLICY,
    NuwebProvider,
    Resume,
    decode_cursor,
    encode_cursor,
)
from notifier.store.memory import MemoryStore

COMPANY, EVENT, TOKEN = 12, 5, "nu-token-streams"
SOURCE = SourceId("nuweb-main")
MINUTE = ORDER_ITEMS_INTERVAL.total_seconds()


@dataclass
class FakeTime:
    current: datetime = field(default_factory=lambda: datetime(2026, 6, 1, 18, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)


@dataclass
class Env:
    sim: NuwebSimulator
    base_url: str
    time: FakeTime
    ticket_type: int
    clients: list[ProviderHttpClient] = field(default_factory=list)

    def adapter(self, **kwargs: Any) -> NuwebProvider:
        policy = RetryPolicy(max_attempts=3, retry_after_headers=RETRY_POLICY.retry_after_headers)
        client = ProviderHttpClient(self.base_url, policy=policy, sleep=self.time.sleep)
        self.clients.append(client)
        kwargs.setdefault("event_ids", [EVENT])
        kwargs.setdefault("lookback", timedelta(0))
        return NuwebProvider(
            SOURCE,
            TOKEN,
            COMPANY,
            base_url=self.base_url,
            http=client,
            clock=self.time.now,
            sleep=self.time.sleep,
            **kwargs,
        )

    def paths(self) -> list[str]:
        return [seen.path for seen in self.sim.seen]


@pytest.fixture
def options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def env(options: dict[str, Any]) -> AsyncIterator[Env]:
    time = FakeTime()
    sim = NuwebSimulator(clock=time.now, **options)
    sim.add_company(COMPANY, TOKEN)
    sim.add_event(COMPANY, EVENT)
    ticket_type = sim.add_ticket_type(EVENT, "General Admission", total_stock=100)
    runner = await serve(sim, "127.0.0.1", 0)
    built = Env(sim, "http://127.0.0.1:" + str(runner.addresses[0][1]), time, ticket_type)
    yield built
    for client in built.clients:
        await client.close()
    await runner.cleanup()


class Door:
    """The adapter behind the real poller on an in-memory store, as the service runs it."""

    def __init__(self, provider: NuwebProvider, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.poller = SourcePoller(
            SourceSettings(organizer="harbour-club", source=SOURCE, provider="nuweb"),
            provider=provider,
            store=self.store,
            route=lambda _: ["memory"],
            clock=lambda: datetime(2026, 6, 1, tzinfo=UTC),
        )
        self.steps = 0

    async def poll(self) -> list[OutboxEvent]:
        """One poll, continued at once while the read stopped at its page cap (as the
        service does); ticket events only."""
        events: list[OutboxEvent] = []
        while True:
            self.steps += 1
            report = await self.poller.poll_once()
            events += [e for e in report.events if e.type.startswith("ticket.")]
            if not report.more:
                return events

    async def cursor(self) -> str | None:
        return (await self.store.load(SOURCE)).cursor


def pairs(events: list[OutboxEvent]) -> list[tuple[str, str]]:
    return [(event.type, event.subject) for event in events]


async def settled(env: Env, count: int = 3, **kwargs: Any) -> tuple[list[int], Door]:
    ids = [env.sim.sell(env.ticket_type, "Guest " + str(n)) for n in range(count)]
    door = Door(env.adapter(**kwargs))
    assert await door.poll() == []
    return ids, door


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("status", [404, 410])
async def test_the_deprecated_inventory_endpoint_gone_switches_to_sale_items(
    env: Env, status: int
) -> None:
    """/v1/event-tickets answering 404 or 410 stops nothing: the check-in of the same poll
    is reported, inventory is read from /v1/sale-items from then on, and the switch is
    logged once, across polls and a restart (the cursor keeps it)."""
    ids, door = await settled(env)
    env.sim.retire_event_tickets(status)
    env.sim.scan_in(ids[0])
    env.sim.sell(env.ticket_type)  # stock moves: the inventory read has news
    env.time.advance(MINUTE)
    served = len(env.sim.seen)
    with capture_logs() as logs:
        events = await door.poll()
        for _ in range(2):
            env.time.advance(MINUTE)
            await door.poll()
        env.time.advance(MINUTE)
        await Door(env.adapter(), door.store).poll()  # a restart: a new adapter, same store
    assert ("ticket.checked_in", str(ids[0])) in pairs(events)
    switched = [log for log in logs if log["event"] == "nuweb_inventory_endpoint_switched"]
    assert len(switched) == 1
    assert switched[0]["status"] == status
    after = env.paths()[served:]
    assert after.count(EVENT_TICKETS) == 1  # the 404, once
    assert after.count(SALE_ITEMS) == 4  # the same poll, two more and the restarted one
    state = decode_cursor(await door.cursor())
    assert state.inventory_endpoint == "sale-items"
    assert state.inventory[str(EVENT)] > datetime(2026, 6, 1, 18, 0, tzinfo=UTC)


async def test_an_order_items_5xx_burst_leaves_check_ins_flowing(env: Env) -> None:
    """Order items answering 503 for minutes: every poll still reports its check-ins; once
    they answer again the cancellation made during the burst is reported once."""
    ids, door = await settled(env, count=6)
    env.sim.cancel(ids[5])
    env.sim.fail_path(ORDER_ITEMS, *[Fault.status(503)] * 12)  # four reads of 3 attempts
    for ticket in ids[:4]:
        env.time.advance(MINUTE)
        env.sim.scan_in(ticket)
        assert pairs(await door.poll()) == [("ticket.checked_in", str(ticket))]
    assert len(env.sim.path_faults[ORDER_ITEMS]) <= 6  # tried at least twice, backing off
    env.sim.path_faults.clear()  # the burst ends
    env.time.advance(MINUTE * 15)  # past the longest back-off
    assert pairs(await door.poll()) == [("ticket.canceled", str(ids[5]))]
    env.time.advance(MINUTE)
    assert await door.poll() == []


async def test_entry_tickets_failing_fail_the_poll(env: Env) -> None:
    """The check-ins themselves failing is no secondary stream: the poll fails and its
    cursor stays, so the service backs off and nothing is lost."""
    ids, door = await settled(env)
    env.sim.scan_in(ids[0])
    before = await door.cursor()
    env.sim.fail_path(ENTRY, *[Fault.status(500)] * 3)
    with pytest.raises(ProviderError):
        await door.poll()
    assert await door.cursor() == before
    assert pairs(await door.poll()) == [("ticket.checked_in", str(ids[0]))]


# --------------------------------------------------------------------------- next links


@pytest.mark.parametrize("options", [{"entry_page_size": 2}])
async def test_next_links_on_the_spec_origin_are_read_from_the_configured_one(
    env: Env,
) -> None:
    """The simulator gives next links on the spec's example origin, as the spec does; the
    adapter reads every page from the configured origin with its token (nothing listens
    on the links' origin, a request sent there would fail the poll)."""
    for _ in range(5):
        env.sim.sell(env.ticket_type)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            env.base_url + ENTRY,
            params={"eventId": str(EVENT)},
            headers={"Authorization": "Bearer " + TOKEN},
        ) as response,
    ):
        link = (await response.json())["pagination"]["next"]
    assert link.startswith(SPEC_LINK_ORIGIN + ENTRY)
    result = await env.adapter().poll(None)
    assert len(result.tickets) == 5
    entry = [seen for seen in env.sim.seen if seen.path == ENTRY]
    assert [seen.query.get("page") for seen in entry] == [None, None, "2", "3"]
    assert all(seen.authorization == "Bearer " + TOKEN for seen in entry)


# --------------------------------------------------------------------------- the cache


async def test_the_documented_cache_serves_identical_gets_for_a_minute(env: Env) -> None:
    """Identical GETs of /v1/sale-items within 60 s get the same answer, a sale
    notwithstanding; a minute later the answer is fresh."""

    async def sold() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                env.base_url + SALE_ITEMS,
                params={"eventId": str(EVENT)},
                headers={"Authorization": "Bearer " + TOKEN},
            ) as response,
        ):
            body = orjson.loads(await response.read())
            return int(body["saleItems"][0]["sold"])

    assert await sold() == 0
    env.sim.sell(env.ticket_type)
    env.time.advance(59)
    assert await sold() == 0
    env.time.advance(1)
    assert await sold() == 1


@pytest.mark.parametrize(
    "options", [{"cached_paths": (ENTRY, ORDER_ITEMS, SALE_ITEMS, EVENTS, EVENT_TICKETS)}]
)
async def test_check_ins_are_seen_even_if_every_path_were_cached(env: Env) -> None:
    """Were every GET behind the 60 s cache (the changelog names fewer paths), each poll's
    entry read still differs (``startTime`` moves with ``listEndTime``), so a check-in is
    seen by the next poll, 5 s later; the cached inventory and order items only wait out
    the minute they are read at anyway."""
    ids, door = await settled(env)
    for ticket in ids:
        env.time.advance(5)
        env.sim.scan_in(ticket)
        assert pairs(await door.poll()) == [("ticket.checked_in", str(ticket))]
    env.sim.cancel(ids[0])
    env.time.advance(MINUTE)
    assert pairs(await door.poll()) == [("ticket.canceled", str(ids[0]))]


# --------------------------------------------------------------------------- named holder


async def test_a_named_holder_overrides_the_customer_name(env: Env) -> None:
    """namedHolder on the order item becomes the holder (the entry ticket keeps the
    customer's name and is not modified); a later scan does not undo it; clearing it gives
    the customer's name back."""
    ids, door = await settled(env)
    env.sim.name_holder(ids[1], "Ada King Lovelace")
    env.time.advance(MINUTE)
    [event] = await door.poll()
    assert (event.type, event.subject) == ("ticket.holder_changed", str(ids[1]))
    holder = orjson.loads(event.data)["after"]["holder"]
    assert (holder["first_name"], holder["last_name"]) == ("Ada", "King Lovelace")
    env.time.advance(5)
    env.sim.scan_in(ids[1])
    assert pairs(await door.poll()) == [("ticket.checked_in", str(ids[1]))]
    env.sim.name_holder(ids[1], None)
    env.time.advance(MINUTE)
    [event] = await door.poll()
    assert event.type == "ticket.holder_changed"
    holder = orjson.loads(event.data)["after"]["holder"]
    assert (holder["first_name"], holder["last_name"]) == ("Guest", "1")


# --------------------------------------------------------------------------- discovery


async def test_an_event_added_mid_run_is_followed_without_a_restart(env: Env) -> None:
    """Without event_ids the company's current events are followed; one created while the
    source runs is read within the listing interval plus the cache's minute, and its
    sales and check-ins are reported; an ended one is dropped after its close-out."""
    ids, door = await settled(env, event_ids=())
    assert set(decode_cursor(await door.cursor()).events) == {str(EVENT)}
    start = env.time.now() + timedelta(minutes=30)
    later = env.sim.add_event(COMPANY, 77, start=start, end=start + timedelta(hours=3))
    door_type = env.sim.add_ticket_type(later, "Door")
    new_ticket = env.sim.sell(door_type)
    seen: list[tuple[str, str]] = []
    waited = 0.0
    while ("ticket.issued", str(new_ticket)) not in seen and waited < 600:
        env.time.advance(5)
        waited += 5
        seen += pairs(await door.poll())
    assert ("ticket.issued", str(new_ticket)) in seen
    assert waited <= EVENTS_INTERVAL.total_seconds() + MINUTE + 5
    env.sim.scan_in(new_ticket)
    env.sim.scan_in(ids[0])
    env.time.advance(5)
    assert sorted(pairs(await door.poll())) == sorted(
        [("ticket.checked_in", str(new_ticket)), ("ticket.checked_in", str(ids[0]))]
    )
    env.time.advance((start + timedelta(hours=3) + CLOSE_OUT - env.time.now()).total_seconds())
    env.time.advance(EVENTS_INTERVAL.total_seconds())
    await door.poll()
    state = decode_cursor(await door.cursor())
    # 77 is past its close-out; 5 (ending 11 h after 77 began) is still within its own.
    assert set(state.events) == set(state.entry) == {str(EVENT)}
    served = len(env.sim.seen)
    env.time.advance(MINUTE)  # 5 is past its live window now: read once a minute
    await door.poll()
    read = [seen.query.get("eventId") for seen in list(env.sim.seen)[served:]]
    assert str(later) not in read
    assert str(EVENT) in read


async def test_an_event_far_from_its_doors_is_read_once_a_minute(env: Env) -> None:
    """A discovered event a month away costs one entry request a minute, the live one one
    per poll: many upcoming events do not spend the company's budget."""
    far = env.time.now() + timedelta(days=30)
    upcoming = env.sim.add_event(COMPANY, 90, start=far, end=far + timedelta(hours=4))
    ticket = env.sim.sell(env.sim.add_ticket_type(upcoming, "Early"))
    _, door = await settled(env, event_ids=())
    served = len(env.sim.seen)
    for _ in range(12):
        env.time.advance(5)
        await door.poll()
    entry = [seen.query["eventId"] for seen in list(env.sim.seen)[served:] if seen.path == ENTRY]
    assert entry.count(str(EVENT)) == 12
    assert entry.count(str(upcoming)) == 1
    env.sim.transfer(ticket, "New Holder", "new@example.com")
    seen_after = 0.0
    events: list[tuple[str, str]] = []
    while not events and seen_after < 120:
        env.time.advance(5)
        seen_after += 5
        events = pairs(await door.poll())
    assert events == [("ticket.holder_changed", str(ticket))]
    assert seen_after <= MINUTE


async def test_event_ids_stay_a_filter(env: Env) -> None:
    """With event_ids the list of events is never asked for, and another event is not read."""
    env.sim.add_event(COMPANY, 88)
    await settled(env)
    assert EVENTS not in env.paths()
    assert all(seen.query.get("eventId") in (None, str(EVENT)) for seen in env.sim.seen)


# --------------------------------------------------------------------------- bounded steps


@pytest.mark.parametrize("options", [{"entry_page_size": 5, "order_items_page_size": 5}])
async def test_a_large_first_read_commits_in_bounded_steps(env: Env) -> None:
    """At most the page cap per step: a baseline of 60 tickets in pages of 5 spans several
    committed steps, stays silent, records every ticket, then reads incrementally."""
    for n in range(60):
        env.sim.sell(env.ticket_type, "Guest " + str(n))
    door = Door(env.adapter(page_cap=6))
    requests: list[int] = []
    while True:
        served = env.sim.requests_served
        door.steps += 1
        report = await door.poller.poll_once()
        requests.append(env.sim.requests_served - served)
        assert report.events == []
        if not report.more:
            break
    assert len(requests) > 3
    assert max(requests) <= 6
    snapshot = await door.store.load(SOURCE)
    assert len(snapshot.tickets) == 60
    assert decode_cursor(snapshot.cursor).resume == {}
    ticket = int(sorted(snapshot.tickets, key=int)[0])
    env.time.advance(5)
    env.sim.scan_in(ticket)
    assert pairs(await door.poll()) == [("ticket.checked_in", str(ticket))]
    assert door.steps == len(requests) + 1


async def test_an_event_the_api_does_not_know_fails_alone(env: Env) -> None:
    """An event answering 404 (deleted, or a typo in event_ids) backs off alone: the other
    event's tickets and check-ins are read, and it is not asked again within its back-off."""
    with capture_logs() as logs:
        ids, door = await settled(env, event_ids=[EVENT, 99])
    [failed] = [log for log in logs if log["event"] == "nuweb_stream_failed"]
    assert failed["stream"] == "entry:99"
    assert len((await door.store.load(SOURCE)).tickets) == 3
    env.sim.scan_in(ids[2])
    env.time.advance(5)
    served = len(env.sim.seen)
    assert pairs(await door.poll()) == [("ticket.checked_in", str(ids[2]))]
    assert [seen.query.get("eventId") for seen in list(env.sim.seen)[served:]] == [str(EVENT)]


async def test_a_continuation_of_an_event_no_longer_read_is_dropped(env: Env) -> None:
    """A cursor resuming an event the configuration no longer names asks for no further
    step (it would loop) and loses that continuation."""
    _, door = await settled(env)
    state = decode_cursor(await door.cursor())
    stale = replace(state, resume={"entry:99": Resume("/v1/entry/tickets?page=2")})
    result = await env.adapter().poll(encode_cursor(stale))
    assert not result.more
    assert decode_cursor(result.cursor).resume == {}


async def test_a_late_synced_scan_on_an_idle_event_is_caught(env: Env) -> None:
    """An offline scanner syncing a scan back-dated by 90 s on an event outside its live
    window (read once a minute, maybe never in a deep step) is still caught, once."""
    far = env.time.now() + timedelta(days=30)
    idle = env.sim.add_event(COMPANY, 91, start=far, end=far + timedelta(hours=4))
    ticket = env.sim.sell(env.sim.add_ticket_type(idle, "Early"))
    _, door = await settled(env, event_ids=(), lookback=timedelta(minutes=2))
    events: list[tuple[str, str]] = []
    for step in range(30):
        env.time.advance(5)
        if step == 3:
            at = env.time.now() - timedelta(seconds=90)
            env.sim.scan_in(ticket, at=at)
            env.sim._entries[ticket].modified_at = at  # synced late: modified back then
        events += pairs(await door.poll())
    assert events == [("ticket.checked_in", str(ticket))]
