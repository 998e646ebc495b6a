"""The Ticket Tailor adapter against the Ticket Tailor simulator served on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from notifier.errors import FatalProviderError
from notifier.model import TicketRecord, TicketStatus, TicketTypeRecord
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.tickettailor import TicketTailorProvider
from notifier.simulators.tickettailor import Fault, TicketTailorSimulator, TicketTypeSpec, serve
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
    """Builds adapters on the simulator (pages of five, recorded sleeps); closes clients."""
    clients: list[ProviderHttpClient] = []

    def build(
        api_key: str = API_KEY, *, event_ids: Sequence[str] | None = None
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
            page_limit=PAGE,
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


async def test_first_poll_is_a_complete_reconcile_across_pages(
    env: Env, make_provider: MakeProvider
) -> None:
    """The first poll sweeps every ticket over several pages and says it is complete."""
    made = orders(env, env.live, 7) + orders(env, env.later, 5)
    result = await make_provider().poll(None)
    assert {t.ticket_id for t in result.tickets} == {ticket for _, ticket in made}
    assert result.complete
    # events 1 + tickets 3 pages + orders 3 pages
    assert result.requests == 7
    assert env.sim.requests_served == 7


async def test_new_ticket_is_found_by_the_created_at_watermark(
    env: Env, make_provider: MakeProvider
) -> None:
    """A ticket created after the last poll on a non-live event comes in by created_at."""
    orders(env, env.later, 3)
    provider = make_provider()
    first = await provider.poll(None)
    later_by(env, timedelta(minutes=10))
    [(_, new)] = orders(env, env.later, 1)
    second = await provider.poll(first.cursor)
    assert not second.complete
    assert new in by_id(second.tickets)
    watermark_reads = [s for s in env.sim.seen if "created_at.gte" in s.query]
    assert watermark_reads
    assert int(watermark_reads[0].query["created_at.gte"]) <= int(START.timestamp())


async def test_live_event_void_and_check_in_seen_next_poll(
    env: Env, make_provider: MakeProvider
) -> None:
    """A void and a check-in on a live event's tickets show up on the very next poll."""
    [(_, voided), (_, scanned)] = orders(env, env.live, 2)
    provider = make_provider()
    first = await provider.poll(None)
    later_by(env, timedelta(minutes=10))
    env.sim.void(voided)
    env.sim.check_in(scanned)
    tickets = by_id((await provider.poll(first.cursor)).tickets)
    assert tickets[voided].status is TicketStatus.VOID
    assert tickets[voided].status_changed_at == env.clock.now.replace(microsecond=0)
    assert tickets[scanned].checked_in_at == env.clock.now.replace(microsecond=0)


async def test_check_in_time_stays_put_after_a_later_edit(
    env: Env, make_provider: MakeProvider
) -> None:
    """A later edit of a checked-in ticket does not move its check-in time."""
    [(_, ticket)] = orders(env, env.live, 1)
    provider = make_provider()
    env.sim.check_in(ticket)
    first = await provider.poll(None)
    checked_in_at = by_id(first.tickets)[ticket].checked_in_at
    later_by(env, timedelta(minutes=10))
    env.sim.transfer(ticket, first_name="Nina", last_name="Roy", email="nina@x.io")
    after = by_id((await provider.poll(first.cursor)).tickets)[ticket]
    assert after.holder.first_name == "Nina"
    assert after.checked_in_at == checked_in_at


async def test_non_live_change_waits_for_the_reconcile_sweep(
    env: Env, make_provider: MakeProvider
) -> None:
    """A check-in on a non-live event's ticket is read only when the reconcile comes due."""
    [(_, ticket)] = orders(env, env.later, 1)
    later_by(env, timedelta(minutes=10))
    orders(env, env.later, 1)  # moves the created_at watermark past the ticket
    provider = make_provider()
    first = await provider.poll(None)
    later_by(env, timedelta(minutes=10))
    env.sim.check_in(ticket)
    second = await provider.poll(first.cursor)
    assert ticket not in by_id(second.tickets)
    later_by(env, timedelta(hours=6))
    third = await provider.poll(second.cursor)
    assert third.complete
    assert by_id(third.tickets)[ticket].checked_in_at is not None


async def test_order_cancel_and_refund_close_their_tickets(
    env: Env, make_provider: MakeProvider
) -> None:
    """Cancelling an order cancels its tickets, refunding refunds them; a void still wins."""
    (canceled, c_ticket), (refunded, r_ticket), (_, voided) = orders(env, env.live, 3)
    env.sim.void(voided)
    provider = make_provider()
    first = await provider.poll(None)
    later_by(env, timedelta(minutes=10))
    env.sim.cancel_order(canceled, "Duplicate")
    env.sim.refund_order(refunded, 1500)
    env.sim.refund_order(env.sim.tickets[voided]["order_id"], 1500)
    second = await provider.poll(first.cursor)
    tickets = by_id(second.tickets)
    assert tickets[c_ticket].status is TicketStatus.CANCELED
    assert tickets[r_ticket].status is TicketStatus.REFUNDED
    assert tickets[r_ticket].status_changed_at == env.clock.now.replace(microsecond=0)
    assert tickets[voided].status is TicketStatus.VOID


async def test_closed_order_is_remembered_for_tickets_read_alone(
    env: Env, make_provider: MakeProvider
) -> None:
    """A refunded ticket stays refunded in a later poll that does not re-read its order."""
    [(order_id, ticket)] = orders(env, env.live, 1)
    env.sim.refund_order(order_id, 1500)
    provider = make_provider()
    first = await provider.poll(None)
    later_by(env, timedelta(minutes=10))
    env.sim.check_in(ticket)
    env.sim.orders.pop(order_id)  # the order no longer lists: only the cursor knows it
    record = by_id((await provider.poll(first.cursor)).tickets)[ticket]
    assert record.status is TicketStatus.REFUNDED
    assert record.checked_in_at is not None


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


async def test_low_rate_limit_remaining_waits_for_reset(
    env: Env, make_provider: MakeProvider
) -> None:
    """When X-Rate-Limit-Remaining runs low the adapter sleeps until the window resets."""
    env.sim.rate_limit = 12
    orders(env, env.live, 3)
    result = await make_provider().poll(None)
    assert result.complete
    assert env.sleeps.delays
    assert env.sleeps.delays[0] == pytest.approx(30 * 60, abs=1)


async def test_429_with_retry_after_is_retried(env: Env, make_provider: MakeProvider) -> None:
    """An injected 429 waits its Retry-After and the poll still completes."""
    orders(env, env.live, 2)
    env.sim.faults.push(Fault.status(429, retry_after=3))
    result = await make_provider().poll(None)
    assert len(result.tickets) == 2
    assert env.sleeps.delays == [3.0]
    assert result.requests == 4


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


async def test_next_link_to_another_origin_is_read_from_the_configured_one(
    env: Env, make_provider: MakeProvider
) -> None:
    """A links.next naming another host gives only its path and query: the page is read
    from the configured origin (nothing listens on the link's), so the key stays home."""
    orders(env, env.live, 8)
    env.sim.redirect_next_to("http://127.0.0.2:9")
    result = await make_provider().poll(None)
    assert len(result.tickets) >= 8


async def test_configured_events_limit_every_read(env: Env, make_provider: MakeProvider) -> None:
    """With event_ids, tickets, orders and inventory of other events are not read."""
    orders(env, env.live, 2)
    [(_, wanted)] = orders(env, env.later, 1)
    result = await make_provider(event_ids=[env.later]).poll(None)
    assert [t.ticket_id for t in result.tickets] == [wanted]
    assert {t.event_id for t in result.ticket_types} == {env.later}


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
