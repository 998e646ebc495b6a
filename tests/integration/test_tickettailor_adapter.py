"""The Ticket Tailor adapter against the Ticket Tailor simulator served on 127.0.0.1.

Reads one at a time (``TicketTailorProvider.poll``) and, where events matter, through the
real poller with an in-memory store (``Door``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest

from notifier.dev.simulators.tickettailor import Fault, TicketTailorSimulator, TicketTypeSpec, serve
from notifier.envelope import OutboxEvent
from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketId, TicketRecord, TicketStatus, TicketTypeRecord
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.base import PollResult, Provider
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.tickettailor import RequestShare, TicketTailorProvider
from notifier.providers.waits import DEFAULT_MAX_HEADER_WAIT
from notifier.store.memory import MemoryStore
from tests.fakes import Sleeps

API_KEY = "sk_live_3f9a1c"
PAGE = 5
START = datetime(2026, 5, 1, 16, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A wall clock tests move by hand, shared by simulator and adapter."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    """A running simulator with a live and a far-off event."""

    sim: TicketTailorSimulator
    base_url: str
    clock: FakeClock
    sleeps: Sleeps
    live: str
    later: str


MakeProvider = Callable[..., TicketTailorProvider]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    """One box office: an event live now and one in a month; served on loopback."""
    clock = FakeClock()
    sim = TicketTailorSimulator(clock=clock)
    sim.add_box_office(API_KEY)
    live = sim.add_event(START - timedelta(hours=1), START + timedelta(hours=4), name="Tonight")
    later = sim.add_event(START + timedelta(days=30), name="Next month")
    runner = await serve(sim, "127.0.0.1", 0)
    yield Env(sim, "http://127.0.0.1:" + str(runner.addresses[0][1]), clock, Sleeps(), live, later)
    await runner.cleanup()


@pytest.fixture
async def make_provider(env: Env) -> AsyncIterator[MakeProvider]:
    """Builds adapters on the simulator (pages of five, recorded sleeps); closes clients.

    Unless a test gives one, the account's budget lets every poll sweep.
    """
    clients: list[ProviderHttpClient] = []

    def build(
        api_key: str = API_KEY,
        *,
        event_ids: Sequence[str] | None = None,
        share: RequestShare | None = None,
        max_pages: int = 25,
    ) -> TicketTailorProvider:
        client = ProviderHttpClient(
            env.base_url, policy=RetryPolicy(max_attempts=3), sleep=env.sleeps
        )
        clients.append(client)
        return TicketTailorProvider(
            "tt",
            api_key,
            base_url=env.base_url,
            http=client,
            clock=env.clock,
            sleep=env.sleeps,
            event_ids=event_ids,
            share=share or RequestShare(requests_per_minute=10**9),
            page_limit=PAGE,
            max_pages=max_pages,
        )

    yield build
    for client in clients:
        await client.close()


def by_id(tickets: Sequence[TicketRecord]) -> dict[str, TicketRecord]:
    """Records keyed by ticket id."""
    return {t.ticket_id: t for t in tickets}


def orders(env: Env, event_id: str, count: int) -> list[tuple[str, str]]:
    """``count`` one-ticket orders on the event: (order id, ticket id) pairs."""
    made = []
    for n in range(count):
        order_id, [ticket_id] = env.sim.create_order(
            event_id, first_name="Guest", last_name=str(n), email=str(n) + "@x.io"
        )
        made.append((order_id, ticket_id))
    return made


def later_by(env: Env, delta: timedelta) -> None:
    """Move the shared clock forward."""
    env.clock.now += delta


class Door:
    """The poller over one adapter with an in-memory store, as the service runs a source."""

    def __init__(
        self, provider: Provider, clock: FakeClock, settle: timedelta = timedelta(0)
    ) -> None:
        self.store = MemoryStore()
        self.poller = SourcePoller(
            SourceSettings(
                organizer="acme",
                source=SourceId("tt"),
                provider="tickettailor",
                inventory_settle=settle,
            ),
            provider=provider,
            store=self.store,
            route=lambda _: ["memory"],
            clock=clock,
        )

    async def poll(self) -> list[OutboxEvent]:
        """One poll to its end: steps stopped at the page cap continue at once."""
        events: list[OutboxEvent] = []
        while True:
            report = await self.poller.poll_once()
            events.extend(report.events)
            if not report.more:
                return events


def of(events: list[OutboxEvent], ticket_id: str) -> list[str]:
    return [e.type for e in events if e.subject == ticket_id]


async def read_through(provider: TicketTailorProvider, cursor: str | None) -> list[PollResult]:
    """The steps of one poll, continued while the adapter says ``more``."""
    steps = [await provider.poll(cursor)]
    while steps[-1].more:
        steps.append(await provider.poll(steps[-1].cursor))
    return steps


async def test_first_poll_sweeps_every_followed_event_across_pages(
    env: Env, make_provider: MakeProvider
) -> None:
    """The first poll reads events, the check-in feed's position, the newest tickets and a
    sweep of every current and upcoming event's tickets, page by page."""
    made = orders(env, env.live, 7) + orders(env, env.later, 5)
    result = await make_provider().poll(None)
    assert {t.ticket_id for t in result.tickets} == {ticket for _, ticket in made}
    # events 1 + check-ins 1 + newest tickets 1 + live event 2 pages + later event 2
    # pages (a full page takes one more read to show it was the last)
    assert result.requests == 7
    assert env.sim.requests_served == 7
    assert not result.more


async def test_a_refund_voids_and_refunds_every_ticket_it_covers(
    env: Env, make_provider: MakeProvider
) -> None:
    """A full refund: both tickets of the order are refunded at their voided_at."""
    order_id, tickets = env.sim.create_order(env.live, quantity=2)
    door = Door(make_provider(), env.clock)
    await door.poll()
    later_by(env, timedelta(minutes=10))
    env.sim.refund_order(order_id)
    events = await door.poll()
    refunded_at = env.clock.now.replace(microsecond=0)
    for ticket in tickets:
        assert of(events, ticket) == ["ticket.refunded"]
    assert {e.time for e in events} == {refunded_at}
    assert "updated_at" not in env.sim.orders[order_id]


async def test_a_partial_refund_leaves_the_other_tickets_valid(
    env: Env, make_provider: MakeProvider
) -> None:
    """One ticket of four refunded: one ticket.refunded, nothing for the three others."""
    order_id, tickets = env.sim.create_order(env.live, quantity=4)
    door = Door(make_provider(), env.clock)
    await door.poll()
    later_by(env, timedelta(minutes=10))
    env.sim.refund_order(order_id, 1500, ticket_ids=[tickets[0]])
    events = await door.poll()
    assert of(events, tickets[0]) == ["ticket.refunded"]
    assert [e for e in events if e.type.startswith("ticket.") and e.subject != tickets[0]] == []
    snapshot = await door.store.load(SourceId("tt"))
    assert [snapshot.tickets[TicketId(t)].status for t in tickets[1:]] == [TicketStatus.VALID] * 3
    assert env.sim.orders[order_id]["status"] == "completed"


async def test_a_fee_only_refund_changes_no_ticket(env: Env, make_provider: MakeProvider) -> None:
    """A refund of fees alone voids nothing, so every ticket stays valid and silent."""
    order_id, _ = env.sim.create_order(env.live, quantity=2)
    door = Door(make_provider(), env.clock)
    await door.poll()
    later_by(env, timedelta(minutes=10))
    env.sim.refund_order(order_id, 150, ticket_ids=())
    assert [e for e in await door.poll() if e.type.startswith("ticket.")] == []
    assert env.sim.orders[order_id]["refund_amount"] == 150


async def test_cancel_without_refund_cancels_and_a_plain_void_voids(
    env: Env, make_provider: MakeProvider
) -> None:
    """Voided in a cancelled order without refund is canceled; voided otherwise, voided.
    Each order is read once, for its first void."""
    (canceled, c_ticket), (_, voided) = orders(env, env.live, 2)
    door = Door(make_provider(), env.clock)
    await door.poll()
    later_by(env, timedelta(minutes=10))
    env.sim.cancel_order(canceled, "Duplicate")
    env.sim.void(voided)
    events = await door.poll()
    assert of(events, c_ticket) == ["ticket.canceled"]
    assert of(events, voided) == ["ticket.voided"]
    order_reads = [s for s in env.sim.seen if s.path_qs.startswith("/v1/orders/")]
    assert len(order_reads) == 2
    await door.poll()
    assert len([s for s in env.sim.seen if s.path_qs.startswith("/v1/orders/")]) == 2


async def test_check_ins_come_from_their_feed_with_their_own_time(
    env: Env, make_provider: MakeProvider
) -> None:
    """A check-in, back-dated by an offline scanner, is read from /v1/check_ins with its
    check_in_at; a later edit of the ticket does not move it."""
    [(_, ticket)] = orders(env, env.live, 1)
    door = Door(make_provider(), env.clock)
    await door.poll()
    later_by(env, timedelta(minutes=10))
    scanned_at = env.clock.now - timedelta(minutes=3)
    env.sim.check_in(ticket, at=scanned_at)
    events = await door.poll()
    assert of(events, ticket) == ["ticket.checked_in"]
    assert events[0].time == scanned_at.replace(microsecond=0)
    later_by(env, timedelta(minutes=1))
    env.sim.transfer(ticket, first_name="Nina", last_name="Roy", email="nina@x.io")
    assert of(await door.poll(), ticket) == ["ticket.holder_changed"]


async def test_a_quiet_poll_between_sweeps_costs_two_requests(
    env: Env, make_provider: MakeProvider
) -> None:
    """Between sweeps a poll reads the check-in feed and the newest tickets; a check-in
    of a ticket it has read is reported from the feed alone."""
    [(_, ticket)] = orders(env, env.live, 1)
    provider = make_provider(share=RequestShare())
    cursor = (await provider.poll(None)).cursor
    later_by(env, timedelta(seconds=1))
    env.sim.check_in(ticket)
    served = env.sim.requests_served
    result = await provider.poll(cursor)
    assert env.sim.requests_served - served == 2
    assert by_id(result.tickets)[ticket].checked_in_at == env.clock.now.replace(microsecond=0)


async def test_a_ticket_sold_and_scanned_between_polls_needs_no_read_of_its_own(
    env: Env, make_provider: MakeProvider
) -> None:
    """Sold at the door and scanned at once: issued then checked in, from the two feeds."""
    orders(env, env.live, 1)
    door = Door(make_provider(share=RequestShare()), env.clock)
    await door.poll()
    later_by(env, timedelta(seconds=1))
    [(_, ticket)] = orders(env, env.live, 1)
    env.sim.check_in(ticket)
    env.sim.seen.clear()
    assert of(await door.poll(), ticket) == ["ticket.issued", "ticket.checked_in"]
    assert [s.path_qs.split("?")[0] for s in env.sim.seen] == [
        "/v1/issued_tickets",
        "/v1/check_ins",
    ]


async def test_sweeps_come_due_as_the_budget_allows(env: Env, make_provider: MakeProvider) -> None:
    """A void shows only in a sweep, which comes due pages / (half the budget / sources)
    after the last one: here 4 pages (3 of the live event, 1 of the empty later one) at
    half of 5,000 / 30 min shared by two sources, 5.76 s."""
    made = orders(env, env.live, 12)
    share = RequestShare()
    share.join("another source of the same key")
    provider = make_provider(share=share)
    cursor = (await provider.poll(None)).cursor
    env.sim.void(made[0][1])
    later_by(env, timedelta(seconds=5.5))
    early = await provider.poll(cursor)
    assert made[0][1] not in by_id(early.tickets)
    later_by(env, timedelta(seconds=0.5))
    due = await provider.poll(early.cursor)
    assert by_id(due.tickets)[made[0][1]].status is TicketStatus.VOID


async def test_a_step_reads_at_most_its_page_cap_and_resumes(
    env: Env, make_provider: MakeProvider
) -> None:
    """With a cap of 3 pages a baseline of 6 pages takes several committed steps, stays
    silent, and then changes are reported as usual."""
    made = orders(env, env.live, 22)
    door = Door(make_provider(max_pages=3), env.clock)
    served = env.sim.requests_served
    steps = 0
    while True:
        report = await door.poller.poll_once()
        steps += 1
        assert report.events == []
        assert env.sim.requests_served - served <= 3
        served = env.sim.requests_served
        if not report.more:
            break
    assert steps >= 3
    snapshot = await door.store.load(SourceId("tt"))
    assert {t for _, t in made} <= set(snapshot.tickets)
    later_by(env, timedelta(minutes=1))
    env.sim.void(made[0][1])
    assert of(await door.poll(), made[0][1]) == ["ticket.voided"]


async def test_a_new_event_is_followed_without_a_restart(
    env: Env, make_provider: MakeProvider
) -> None:
    """An event created mid-run: its tickets and check-ins are reported, and it joins the
    sweeps once the events are read again (a minute on)."""
    door = Door(make_provider(), env.clock)
    orders(env, env.live, 1)
    await door.poll()
    later_by(env, timedelta(minutes=5))
    added = env.sim.add_event(env.clock.now + timedelta(hours=1), name="Added tonight")
    [(_, ticket)] = orders(env, added, 1)
    assert of(await door.poll(), ticket) == ["ticket.issued"]
    later_by(env, timedelta(seconds=30))
    env.sim.check_in(ticket)
    assert of(await door.poll(), ticket) == ["ticket.checked_in"]
    later_by(env, timedelta(minutes=1))
    env.sim.transfer(ticket, first_name="Nina", last_name="Roy", email="nina@x.io")
    assert of(await door.poll(), ticket) == ["ticket.holder_changed"]
    swept = [s.query.get("event_id") for s in env.sim.seen if "starting_after" not in s.query]
    assert added in swept


async def test_an_ended_event_is_dropped_after_its_close_out(
    env: Env, make_provider: MakeProvider
) -> None:
    """Twelve hours after its end an event is no longer swept nor remembered."""
    [(_, ticket)] = orders(env, env.live, 1)
    provider = make_provider()
    env.sim.check_in(ticket)
    result = await provider.poll(None)
    assert env.live in orjson.loads(result.cursor or "{}")["check_ins"]
    later_by(env, timedelta(hours=16, minutes=1))
    result = await provider.poll(result.cursor)
    env.sim.seen.clear()
    later_by(env, timedelta(minutes=1))
    result = await provider.poll(result.cursor)
    assert all(s.query.get("event_id") != env.live for s in env.sim.seen)
    assert env.live not in orjson.loads(result.cursor or "{}")["check_ins"]


async def test_inventory_and_computed_sell_out(env: Env, make_provider: MakeProvider) -> None:
    """Ticket types come back as inventory; a sell-out is computed while status says on_sale."""
    event = env.sim.add_event(
        START + timedelta(days=2), ticket_types=[TicketTypeSpec("Door", 900, 3)]
    )
    [door] = env.sim.ticket_type_ids(event)
    env.sim.create_order(event, quantity=2, ticket_type_id=door)
    env.sim.sell_out(door)
    [hidden, _] = env.sim.ticket_type_ids(env.live)
    env.sim.set_ticket_type_status(hidden, "hidden")
    result = await make_provider().poll(None)
    types: dict[str, TicketTypeRecord] = {t.ticket_type_id: t for t in result.ticket_types}
    record = types[door]
    assert (record.total_stock, record.sold, record.reserved, record.current_stock) == (3, 2, 1, 0)
    assert record.on_sale is True
    assert record.price_minor == 900
    assert types[hidden].on_sale is False


async def test_a_swinging_count_is_reported_once_it_has_settled(
    env: Env, make_provider: MakeProvider
) -> None:
    """After a void on a sold-out type the simulator's quantity_issued swings as observed
    (3 -> 1 -> 0 -> 1 for ten minutes): with a ten-minute settle window one sold_changed
    and one back_in_stock report the settled count; without one, the stock flaps."""
    env.sim.swing_after_void = True
    event = env.sim.add_event(
        START + timedelta(days=2), ticket_types=[TicketTypeSpec("Door", 900, 3)]
    )
    [door_type] = env.sim.ticket_type_ids(event)
    _, tickets = env.sim.create_order(event, quantity=3, ticket_type_id=door_type)
    settled = Door(make_provider(), env.clock, settle=timedelta(minutes=10))
    unsettled = Door(make_provider(), env.clock)
    await settled.poll()
    await unsettled.poll()
    later_by(env, timedelta(minutes=1))
    env.sim.void(tickets[0])
    seen: dict[str, list[OutboxEvent]] = {"settled": [], "unsettled": []}
    for _ in range(25):
        later_by(env, timedelta(minutes=1))
        seen["settled"] += [e for e in await settled.poll() if e.subject == door_type]
        seen["unsettled"] += [e for e in await unsettled.poll() if e.subject == door_type]
    assert [e.type for e in seen["settled"]] == [
        "ticket_type.sold_changed",
        "ticket_type.back_in_stock",
    ]
    assert orjson.loads(seen["settled"][0].data)["after"]["sold"] == 2
    assert [e.type for e in seen["unsettled"]].count("ticket_type.sold_out") >= 2


async def test_a_foreign_next_link_is_never_followed(env: Env, make_provider: MakeProvider) -> None:
    """Every request is built from the last id read: a links.next to another host is
    ignored, the key goes nowhere else and the read completes."""
    made = orders(env, env.live, 8)
    env.sim.redirect_next_to("http://127.0.0.2:9")
    result = await make_provider().poll(None)
    assert {t for _, t in made} <= set(by_id(result.tickets))


async def test_low_rate_limit_remaining_waits_for_reset(
    env: Env, make_provider: MakeProvider
) -> None:
    """When X-Rate-Limit-Remaining runs low the adapter sleeps until the window resets
    (at most the configured cap)."""
    env.sim.rate_limit = 12
    orders(env, env.live, 3)
    await make_provider().poll(None)
    assert env.sleeps.delays
    # The reset is 30 min away; a header's wait is capped (limits.max_provider_wait, 15 min).
    assert env.sleeps.delays[0] == pytest.approx(min(30 * 60, DEFAULT_MAX_HEADER_WAIT), abs=1)


async def test_429_with_retry_after_is_retried(env: Env, make_provider: MakeProvider) -> None:
    """An injected 429 waits its Retry-After and the poll still completes."""
    orders(env, env.live, 2)
    env.sim.faults.push(Fault.status(429, retry_after=3))
    result = await make_provider().poll(None)
    assert len(result.tickets) == 2
    assert env.sleeps.delays == [3.0]
    assert result.requests == env.sim.requests_served == 6


async def test_basic_auth_and_key_never_in_url(env: Env, make_provider: MakeProvider) -> None:
    """Every request carries Basic base64("key:") and the key appears in no URL."""
    orders(env, env.live, 6)
    await make_provider().poll(None)
    expected = "Basic " + base64.b64encode((API_KEY + ":").encode()).decode()
    assert env.sim.seen
    for seen in env.sim.seen:
        assert seen.authorization == expected
        assert API_KEY not in seen.path_qs


async def test_bad_key_is_fatal_and_not_echoed(env: Env, make_provider: MakeProvider) -> None:
    """An unknown key is a 401: fatal, and the key is not in the message."""
    with pytest.raises(FatalProviderError) as caught:
        await make_provider("sk_wrong_key").poll(None)
    assert caught.value.status == 401
    assert "sk_wrong_key" not in str(caught.value)


async def test_configured_events_limit_every_read(env: Env, make_provider: MakeProvider) -> None:
    """With event_ids, tickets, inventory and windows of other events are not reported."""
    orders(env, env.live, 2)
    [(_, wanted)] = orders(env, env.later, 1)
    result = await make_provider(event_ids=[env.later]).poll(None)
    assert [t.ticket_id for t in result.tickets] == [wanted]
    assert {t.event_id for t in result.ticket_types} == {env.later}
    assert set(result.event_windows) == {env.later}


async def _get(
    env: Env, path: str, params: dict[str, str], key: str = API_KEY
) -> tuple[int, dict[str, object], dict[str, str]]:
    headers = {"Authorization": "Basic " + base64.b64encode((key + ":").encode()).decode()}
    async with (
        aiohttp.ClientSession() as session,
        session.get(env.base_url + path, params=params, headers=headers) as response,
    ):
        body: dict[str, object] = await response.json()
        return response.status, body, dict(response.headers)


async def test_simulator_error_body_and_limit_bound(env: Env) -> None:
    """A bad key and a limit above 100 answer with the error body of Ticket Tailor's API
    reference."""
    status, body, _ = await _get(env, "/v1/issued_tickets", {}, key="nope")
    assert status == 401
    assert set(body) == {"status", "error_code", "message"}
    status, body, _ = await _get(env, "/v1/issued_tickets", {"limit": "101"})
    assert (status, body["status"]) == (400, 400)


async def test_simulator_paging_newest_first_ending_before_wins(env: Env) -> None:
    """Pages run newest first with relative links; ending_before wins over starting_after."""
    made = [ticket for _, ticket in orders(env, env.live, 6)]
    status, body, headers = await _get(env, "/v1/issued_tickets", {"limit": "2"})
    assert status == 200
    data = body["data"]
    assert isinstance(data, list)
    assert [row["id"] for row in data] == [made[5], made[4]]
    links = body["links"]
    assert isinstance(links, dict)
    assert str(links["next"]).startswith("/v1/issued_tickets?")
    assert links["previous"] is None
    assert int(headers["X-Rate-Limit-Remaining"]) == 4999
    params = {"limit": "2", "ending_before": made[1], "starting_after": made[5]}
    _, body, _ = await _get(env, "/v1/issued_tickets", params)
    assert isinstance(body["data"], list)
    assert [row["id"] for row in body["data"]] == [made[3], made[2]]


async def test_simulator_rate_window_answers_429_with_retry_after(env: Env) -> None:
    """Past the window's limit the simulator answers 429 with Retry-After until it resets."""
    env.sim.rate_limit = 1
    assert (await _get(env, "/v1/ping", {}))[0] == 200
    status, body, headers = await _get(env, "/v1/ping", {})
    assert (status, body["error_code"]) == (429, "TOO_MANY_REQUESTS")
    assert headers["Retry-After"] == str(30 * 60)
    later_by(env, timedelta(minutes=30))
    assert (await _get(env, "/v1/ping", {}))[0] == 200
