"""One suite, every provider: each adapter against its own simulator, through the poller.

A provider joins by adding its harness to ``HARNESSES``; the suite then proves, for it,
what docs/design.md §5-6 promise of every provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from notifier.dev.simulators.faults import Fault
from notifier.envelope import OutboxEvent
from notifier.errors import ProviderError
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.base import Provider
from notifier.store.memory import MemoryStore
from tests.providers.harness import DeepReadHarness, ProviderHarness, Transition
from tests.providers.harness_eventpop import EventpopHarness
from tests.providers.harness_nuweb import NuwebHarness
from tests.providers.harness_shotgun import ShotgunHarness
from tests.providers.harness_tickettailor import TicketTailorHarness

HARNESSES: dict[str, Callable[[], ProviderHarness]] = {
    "eventpop": EventpopHarness,
    "nuweb": NuwebHarness,
    "shotgun": ShotgunHarness,
    "tickettailor": TicketTailorHarness,
}
SOURCE = SourceId("suite")
# What must already be true of a ticket before a transition can happen to it.
PREREQUISITES: dict[Transition, tuple[Transition, ...]] = {
    "ticket.check_in_reverted": ("ticket.checked_in",),
    "ticket.checked_out": ("ticket.checked_in",),
    "ticket.reinstated": ("ticket.voided",),
}


# Providers whose pages carry next links (Eventpop builds each request itself).
LINKED = sorted(name for name, make in HARNESSES.items() if getattr(make, "follows_links", True))
# Providers that re-read their lookback window only on a deep read, about once a minute.
DEEP: dict[str, Callable[[], DeepReadHarness]] = {
    "eventpop": EventpopHarness,
    "nuweb": NuwebHarness,
}
LOOKBACK = timedelta(minutes=2)
POLL_EVERY = 5.0  # seconds, a live event's poll interval


async def _served(name: str) -> AsyncIterator[ProviderHarness]:
    built = HARNESSES[name]()
    await built.start()
    yield built
    await built.stop()


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[ProviderHarness]:
    """Each provider's simulator, served on 127.0.0.1."""
    async for built in _served(request.param):
        yield built


@pytest.fixture(params=sorted(DEEP))
async def deep_harness(request: pytest.FixtureRequest) -> AsyncIterator[DeepReadHarness]:
    """Each provider that reads its lookback window only on deep reads."""
    built = DEEP[request.param]()
    await built.start()
    yield built
    await built.stop()


@pytest.fixture(params=LINKED)
async def linked_harness(request: pytest.FixtureRequest) -> AsyncIterator[ProviderHarness]:
    """Each provider that follows the API's own next links."""
    async for built in _served(request.param):
        yield built


class Door:
    """A poller over one adapter with an in-memory store: what the service does per source."""

    def __init__(self, provider: Provider, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.poller = SourcePoller(
            SourceSettings(organizer="acme", source=SOURCE, provider=provider.name),
            provider=provider,
            store=self.store,
            route=lambda _: ["memory"],
            clock=lambda: datetime.now(UTC),
        )

    async def poll(self) -> list[OutboxEvent]:
        return (await self.poller.poll_once()).events


def _of(events: list[OutboxEvent], ticket_id: str) -> list[str]:
    # Ticket events only: a ticket type's id (Nuweb's inventory) may spell the same.
    return [
        event.type
        for event in events
        if event.subject == ticket_id and event.type.startswith("ticket.")
    ]


async def test_the_first_poll_is_silent(harness: ProviderHarness) -> None:
    """The baseline records the provider's tickets and emits nothing."""
    door = Door(harness.adapter())
    assert await door.poll() == []
    snapshot = await door.store.load(SOURCE)
    assert set(harness.ticket_ids()) <= set(snapshot.tickets)


async def test_each_transition_yields_its_event(harness: ProviderHarness) -> None:
    """Every transition the provider can show becomes exactly its event, on its ticket."""
    door = Door(harness.adapter())
    await door.poll()
    tickets = harness.ticket_ids()
    planned = sorted(harness.transitions)
    assert len(tickets) >= len(planned) + 1
    pairs = list(zip(planned, tickets, strict=False))
    for transition, ticket in pairs:
        for step in PREREQUISITES.get(transition, ()):
            harness.apply(step, ticket)
    await door.poll()
    for transition, ticket in pairs:
        harness.apply(transition, ticket)
    events = await door.poll()
    for transition, ticket in pairs:
        assert _of(events, ticket) == [transition], transition


async def test_a_new_ticket_is_issued(harness: ProviderHarness) -> None:
    """A ticket created after the baseline yields ticket.issued."""
    door = Door(harness.adapter())
    await door.poll()
    ticket = harness.issue()
    assert _of(await door.poll(), ticket) == ["ticket.issued"]


async def test_a_check_in_carries_its_scan_time(harness: ProviderHarness) -> None:
    """occurred_at of a check-in is the provider's scan time, in before/after too."""
    door = Door(harness.adapter())
    await door.poll()
    ticket = harness.ticket_ids()[0]
    harness.apply("ticket.checked_in", ticket)
    (event,) = [e for e in await door.poll() if e.subject == ticket]
    assert event.time <= datetime.now(UTC)
    assert event.time > datetime.now(UTC) - timedelta(minutes=5)


async def test_lookback_catches_a_backdated_scan(harness: ProviderHarness) -> None:
    """A scan synced late by an offline scanner, back-dated 90 s, is still detected once."""
    if not harness.backdated_scans:
        pytest.fail("every simulator must support back-dated scans")
    door = Door(harness.adapter(lookback=timedelta(minutes=2)))
    await door.poll()
    ticket = harness.ticket_ids()[0]
    scanned_at = datetime.now(UTC) - timedelta(seconds=90)
    harness.apply("ticket.checked_in", ticket, at=scanned_at)
    events = await door.poll()
    assert _of(events, ticket) == ["ticket.checked_in"]
    assert abs((events[0].time - scanned_at).total_seconds()) < 1
    assert _of(await door.poll(), ticket) == []  # re-read by the lookback, not re-emitted


async def test_a_failed_page_commits_nothing(harness: ProviderHarness) -> None:
    """A page failing past every retry fails the poll: no events, no cursor advance."""
    door = Door(harness.adapter())
    await door.poll()
    before = await door.store.load(SOURCE)
    for ticket in harness.ticket_ids()[:7]:  # more than one page of changes
        harness.apply("ticket.checked_in", ticket)
    harness.push_fault(Fault.fail_on_page(2))
    harness.push_fault(Fault.fail_on_page(2))
    with pytest.raises(ProviderError):
        await door.poll()
    after = await door.store.load(SOURCE)
    assert after.cursor == before.cursor
    assert after.tickets == before.tickets
    recovered = await door.poll()
    assert len([e for e in recovered if e.type == "ticket.checked_in"]) == 7


@pytest.mark.parametrize("fault", [Fault.status(429, retry_after=1), Fault.status(503)])
async def test_throttling_and_server_errors_are_retried(
    harness: ProviderHarness, fault: Fault
) -> None:
    """A 429 or a 5xx is retried within the poll, which then succeeds."""
    door = Door(harness.adapter())
    await door.poll()
    ticket = harness.ticket_ids()[0]
    harness.apply("ticket.checked_in", ticket)
    served = harness.requests_served
    harness.push_fault(fault)
    assert _of(await door.poll(), ticket) == ["ticket.checked_in"]
    assert harness.requests_served >= served + 2


async def test_a_next_link_on_another_origin_is_read_from_the_configured_one(
    linked_harness: ProviderHarness,
) -> None:
    """A next link naming another scheme and host (as Nuweb's spec examples do) gives only
    its path and query: the page is read from the configured origin, so the token never
    leaves it and the read does not fail. Nothing listens on the link's origin: a request
    sent there would fail the poll."""
    harness = linked_harness
    door = Door(harness.adapter())
    await door.poll()
    tickets = harness.ticket_ids()[:7]
    for ticket in tickets:
        harness.apply("ticket.checked_in", ticket)
    harness.redirect_next_to("http://127.0.0.2:9")
    events = await door.poll()
    assert [_of(events, ticket) for ticket in tickets] == [["ticket.checked_in"]] * 7


async def test_every_record_names_its_ticket_type(harness: ProviderHarness) -> None:
    """The diff tells a ticket type change (``ticket.type_changed``) from the type id and
    name on each record: every adapter must report them."""
    result = await harness.adapter().poll(None)
    assert result.tickets
    assert all(ticket.ticket_type.id for ticket in result.tickets)
    assert all(ticket.ticket_type.name for ticket in result.tickets)


async def test_a_restarted_adapter_resumes_from_the_stored_cursor(
    harness: ProviderHarness,
) -> None:
    """A new process (new adapter, same store) emits only what changed since the commit."""
    store = MemoryStore()
    await Door(harness.adapter(), store).poll()
    tickets = harness.ticket_ids()
    harness.apply("ticket.checked_in", tickets[0])
    first = await Door(harness.adapter(), store).poll()
    harness.apply("ticket.checked_in", tickets[1])
    second = await Door(harness.adapter(), store).poll()
    assert _of(first, tickets[0]) == ["ticket.checked_in"]
    assert [e.subject for e in second] == [tickets[1]]


async def _step(harness: DeepReadHarness, door: Door) -> tuple[list[OutboxEvent], int]:
    """One live poll interval later, a new ticket sold (door traffic moves the cursor)."""
    harness.clock.advance(POLL_EVERY)
    harness.issue()
    served = harness.requests_served
    events = await door.poll()
    return events, harness.requests_served - served


async def test_a_scan_backdated_by_nearly_the_lookback_is_caught_by_the_next_deep_read(
    deep_harness: DeepReadHarness,
) -> None:
    """A check-in that syncs right after a deep read, back-dated by nearly the whole
    lookback, is missed by the plain reads (they start at the cursor) and caught once by
    the next deep read, although the cursor has moved on by then a whole deep interval."""
    harness = deep_harness
    door = Door(harness.adapter(lookback=LOOKBACK))
    await door.poll()  # the baseline, a full read
    late = harness.ticket_ids()[0]
    steps = round(harness.deep_interval.total_seconds() / POLL_EVERY)
    for _ in range(steps):  # the first deep read, then plain ones for the rest of a minute
        await _step(harness, door)
    events, deep_cost = await _step(harness, door)  # a minute on: a deep read
    scanned_at = harness.clock() - LOOKBACK + timedelta(seconds=1)
    harness.sync_late(late, scanned_at)
    for _ in range(steps - 1):
        events, cost = await _step(harness, door)
        assert _of(events, late) == []
        assert cost < deep_cost
    events, _ = await _step(harness, door)
    assert _of(events, late) == ["ticket.checked_in"]
    (event,) = [e for e in events if e.subject == late and e.type == "ticket.checked_in"]
    assert abs((event.time - scanned_at).total_seconds()) < 1
    events, _ = await _step(harness, door)
    assert _of(events, late) == []


async def test_a_plain_read_costs_one_request_when_nothing_changed(
    deep_harness: DeepReadHarness,
) -> None:
    """Between deep reads a poll reads from the cursor: one request for no change."""
    harness = deep_harness
    door = Door(harness.adapter(lookback=LOOKBACK))
    await door.poll()  # the baseline, a full read
    harness.clock.advance(2)
    harness.apply("ticket.checked_in", harness.ticket_ids()[0])
    await door.poll()  # the first deep read (a full read leaves nothing to anchor it)
    steps = round(harness.deep_interval.total_seconds() / POLL_EVERY)
    costs = []
    for _ in range(steps - 1):
        harness.clock.advance(POLL_EVERY)
        served = harness.requests_served
        assert await door.poll() == []
        costs.append(harness.requests_served - served)
    assert costs == [1] * (steps - 1)
    harness.clock.advance(POLL_EVERY)
    served = harness.requests_served
    await door.poll()
    assert harness.requests_served - served > 1  # the deep read re-reads the window


async def test_a_cursor_of_the_older_format_is_read_after_an_upgrade(
    deep_harness: DeepReadHarness,
) -> None:
    """A cursor committed before deep reads existed still resumes, and its first read
    is deep (from its position minus the lookback), as every read used to be."""
    harness = deep_harness
    door = Door(harness.adapter(lookback=LOOKBACK))
    await door.poll()
    harness.clock.advance(POLL_EVERY)
    harness.issue()
    await door.poll()
    snapshot = await door.store.load(SOURCE)
    assert snapshot.cursor is not None
    legacy = harness.legacy_cursor(snapshot.cursor)
    assert legacy != snapshot.cursor
    await door.store.commit(SOURCE, tickets={}, events=[], cursor=legacy, epoch=snapshot.epoch)
    late = harness.ticket_ids()[0]
    scanned_at = harness.clock() - LOOKBACK + timedelta(seconds=1)
    harness.sync_late(late, scanned_at)
    harness.clock.advance(1)
    upgraded = Door(harness.adapter(lookback=LOOKBACK), door.store)
    assert _of(await upgraded.poll(), late) == ["ticket.checked_in"]
    resumed = (await door.store.load(SOURCE)).cursor
    assert resumed is not None
    assert harness.legacy_cursor(resumed) != resumed  # written back in the new format
