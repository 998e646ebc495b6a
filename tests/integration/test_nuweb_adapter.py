"""The Nuweb adapter against the Nuweb simulator served on 127.0.0.1."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_schema_validator import OAS31Validator

from notifier.dev.simulators.nuweb import Fault, NuwebSimulator, serve
from notifier.envelope import OutboxEvent
from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketStatus
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.nuweb import (
    ORDER_ITEMS_INTERVAL,
    ORDER_ITEMS_OVERLAP,
    RECONCILE_INTERVAL,
    RETRY_POLICY,
    NuwebProvider,
    decode_cursor,
    format_nuweb_time,
)
from notifier.store.memory import MemoryStore
from tests.reference_specs import NUWEB_OPENAPI

COMPANY = 12
EVENT = 5
TOKEN = "nu-token-9a7b"
SOURCE = SourceId("nuweb-main")
ENTRY, ORDER_ITEMS = "/v1/entry/tickets", "/v1/order-items"
MINUTE = ORDER_ITEMS_INTERVAL.total_seconds()


@dataclass
class FakeTime:
    """One clock for simulator and adapter; sleeping advances it instead of waiting."""

    current: datetime = field(default_factory=lambda: datetime(2026, 6, 1, 18, 0, tzinfo=UTC))
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@dataclass
class Env:
    """A running simulator, its URL and the shared fake time."""

    sim: NuwebSimulator
    base_url: str
    time: FakeTime
    ticket_type: int


MakeProvider = Callable[..., NuwebProvider]


def simulator(time: FakeTime, **options: Any) -> NuwebSimulator:
    """A simulator with company 12, event 5 and one ticket type."""
    sim = NuwebSimulator(clock=time.now, **options)
    sim.add_company(COMPANY, TOKEN)
    sim.add_event(COMPANY, EVENT)
    return sim


@pytest.fixture
def options() -> dict[str, Any]:
    """Simulator options; tests override this fixture through parametrization."""
    return {}


@pytest.fixture
async def env(options: dict[str, Any]) -> AsyncIterator[Env]:
    """The simulator served on loopback with one ticket type on event 5."""
    time = FakeTime()
    sim = simulator(time, **options)
    ticket_type = sim.add_ticket_type(EVENT, "General Admission", total_stock=100)
    runner = await serve(sim, "127.0.0.1", 0)
    yield Env(sim, "http://127.0.0.1:" + str(runner.addresses[0][1]), time, ticket_type)
    await runner.cleanup()


@pytest.fixture
async def make_provider(env: Env) -> AsyncIterator[MakeProvider]:
    """Builds providers on the simulator with fake time; closes their clients."""
    clients: list[ProviderHttpClient] = []

    def build(
        *, lookback: timedelta = timedelta(0), token: str = TOKEN, **kwargs: Any
    ) -> NuwebProvider:
        policy = RetryPolicy(max_attempts=3, retry_after_headers=RETRY_POLICY.retry_after_headers)
        client = ProviderHttpClient(env.base_url, policy=policy, sleep=env.time.sleep)
        clients.append(client)
        return NuwebProvider(
            "nuweb-main",
            token,
            COMPANY,
            event_ids=[EVENT],
            base_url=env.base_url,
            lookback=lookback,
            http=client,
            clock=env.time.now,
            sleep=env.time.sleep,
            **kwargs,
        )

    yield build
    for client in clients:
        await client.close()


def requests_to(env: Env, path: str) -> list[dict[str, str]]:
    """Queries of the requests the simulator saw on ``path``."""
    return [seen.query for seen in env.sim.seen if seen.path == path]


async def test_first_poll_reads_tickets_and_inventory(
    env: Env, make_provider: MakeProvider
) -> None:
    """From scratch: order items, every entry ticket and the inventory, in three requests,
    marked complete."""
    ids = [env.sim.sell(env.ticket_type) for _ in range(3)]
    result = await make_provider().poll(None)
    assert sorted(t.ticket_id for t in result.tickets) == sorted(str(i) for i in ids)
    assert result.complete
    assert result.requests == 3
    assert "lastUpdated" not in requests_to(env, ORDER_ITEMS)[0]
    [ticket_type] = result.ticket_types
    assert (ticket_type.sold, ticket_type.current_stock) == (3, 97)


async def test_entry_tickets_resume_from_list_end_time(
    env: Env, make_provider: MakeProvider
) -> None:
    """The next poll sends startTime = the previous listEndTime and gets only the change."""
    ids = [env.sim.sell(env.ticket_type) for _ in range(3)]
    provider = make_provider()
    first = await provider.poll(None)
    list_end = decode_cursor(first.cursor).entry[str(EVENT)]
    env.time.advance(5)
    env.sim.scan_in(ids[1])
    second = await provider.poll(first.cursor)
    assert [t.ticket_id for t in second.tickets] == [str(ids[1])]
    assert requests_to(env, "/v1/entry/tickets")[-1]["startTime"] == format_nuweb_time(list_end)
    assert not second.complete


async def test_lookback_moves_start_time_back(env: Env, make_provider: MakeProvider) -> None:
    """With a lookback, startTime is the previous listEndTime minus the lookback."""
    env.sim.sell(env.ticket_type)
    provider = make_provider(lookback=timedelta(minutes=2))
    first = await provider.poll(None)
    await provider.poll(first.cursor)
    expected = decode_cursor(first.cursor).entry[str(EVENT)] - timedelta(minutes=2)
    assert requests_to(env, "/v1/entry/tickets")[-1]["startTime"] == format_nuweb_time(expected)


async def test_scan_in_sets_checked_in_at(env: Env, make_provider: MakeProvider) -> None:
    """A scan in yields status valid with checked_in_at = the scan time."""
    ticket = env.sim.sell(env.ticket_type)
    provider = make_provider()
    first = await provider.poll(None)
    env.time.advance(3)
    env.sim.scan_in(ticket)
    [record] = (await provider.poll(first.cursor)).tickets
    assert record.status is TicketStatus.VALID
    assert record.checked_in_at == env.time.now()
    assert record.checked_out_at is None


async def test_scan_out_sets_checked_out_at(env: Env, make_provider: MakeProvider) -> None:
    """An out scan after the in scan yields checked_out_at = the exit time."""
    ticket = env.sim.sell(env.ticket_type)
    env.sim.scan_in(ticket)
    provider = make_provider()
    first = await provider.poll(None)
    env.time.advance(600)
    env.sim.scan_out(ticket)
    [record] = (await provider.poll(first.cursor)).tickets
    assert record.checked_out_at == env.time.now()
    assert record.checked_in_at is not None


async def test_refund_maps_to_refunded(env: Env, make_provider: MakeProvider) -> None:
    """A refunded entry ticket reads as refunded."""
    ticket = env.sim.sell(env.ticket_type)
    provider = make_provider()
    first = await provider.poll(None)
    env.time.advance(1)
    env.sim.refund(ticket)
    [record] = (await provider.poll(first.cursor)).tickets
    assert record.status is TicketStatus.REFUNDED
    assert record.status_raw == "refunded"


@pytest.mark.parametrize("options", [{"entry_page_size": 2}])
async def test_entry_pages_follow_pagination_next(env: Env, make_provider: MakeProvider) -> None:
    """Five tickets in pages of two take three entry requests; all come back once."""
    ids = [env.sim.sell(env.ticket_type) for _ in range(5)]
    result = await make_provider().poll(None)
    assert sorted(t.ticket_id for t in result.tickets) == sorted(str(i) for i in ids)
    assert len(requests_to(env, "/v1/entry/tickets")) == 3


async def test_inventory_waits_a_minute_between_reads(
    env: Env, make_provider: MakeProvider
) -> None:
    """Inventory is skipped within 60 s of the last read, then read with lastUpdated."""
    provider = make_provider()
    first = await provider.poll(None)
    env.time.advance(10)
    second = await provider.poll(first.cursor)
    assert second.ticket_types == []
    assert len(requests_to(env, "/v1/event-tickets")) == 1
    env.time.advance(51)
    await provider.poll(second.cursor)
    query = requests_to(env, "/v1/event-tickets")[-1]
    assert query["withTrashed"] == "true"
    assert query["limit"] == "25"
    assert "lastUpdated" in query


async def test_inventory_incremental_sees_a_sale(env: Env, make_provider: MakeProvider) -> None:
    """A sale (which moves stock, not updatedAt) shows up in the next incremental read."""
    other = env.sim.add_ticket_type(EVENT, "VIP")
    provider = make_provider()
    first = await provider.poll(None)
    env.time.advance(61)
    env.sim.sell(other)
    second = await provider.poll(first.cursor)
    sold = {str(t.ticket_type_id): t.sold for t in second.ticket_types}
    assert sold[str(other)] == 1
    assert "lastUpdated" in requests_to(env, "/v1/event-tickets")[-1]


async def test_deleted_ticket_type_is_visible(env: Env, make_provider: MakeProvider) -> None:
    """withTrashed=true shows a deleted ticket type with its deleted_at."""
    provider = make_provider()
    first = await provider.poll(None)
    env.time.advance(61)
    env.sim.delete_ticket_type(env.ticket_type)
    [removed] = (await provider.poll(first.cursor)).ticket_types
    assert removed.deleted_at == env.time.now()


async def test_sale_items_endpoint_is_a_setting(env: Env, make_provider: MakeProvider) -> None:
    """inventory_endpoint="sale-items" reads /v1/sale-items with the same result."""
    result = await make_provider(inventory_endpoint="sale-items").poll(None)
    assert [t.name for t in result.ticket_types] == ["General Admission"]
    assert len(requests_to(env, "/v1/sale-items")) == 1


@pytest.mark.parametrize("options", [{"rate_limit": 3}])
async def test_pacing_avoids_429_in_a_burst(env: Env, make_provider: MakeProvider) -> None:
    """With a limit of 3/min, ten back-to-back polls wait out the window and never get a 429."""
    env.sim.sell(env.ticket_type)
    provider = make_provider()
    cursor = None
    for _ in range(10):
        cursor = (await provider.poll(cursor)).cursor
    assert env.sim.rate_limited == 0
    assert env.time.sleeps
    assert env.sim.requests_served >= 10


@pytest.mark.parametrize("options", [{"rate_limit": 2}])
async def test_429_waits_available_in_seconds(env: Env, make_provider: MakeProvider) -> None:
    """A 429 (no Retry-After) from another client's use is retried after X-Available-In-Seconds."""
    async with aiohttp.ClientSession() as other:  # the box office spends the budget
        for _ in range(2):
            async with other.get(
                env.base_url + "/v1/sale-items",
                headers={"Authorization": "Bearer " + TOKEN},
            ) as response:
                assert response.status == 200
    env.time.advance(20)
    result = await make_provider().poll(None)
    assert env.sim.rate_limited == 1
    assert env.time.sleeps[0] == 40
    assert result.requests == 4  # order items twice (the 429, then its retry), entry, inventory


async def test_headers_carry_auth_and_company_never_the_token_in_url(
    env: Env, make_provider: MakeProvider
) -> None:
    """Every request has Bearer auth and X-NU-COMPANY-ID; the token never appears in a URL."""
    env.sim.sell(env.ticket_type)
    await make_provider().poll(None)
    assert env.sim.seen
    for seen in env.sim.seen:
        assert seen.authorization == "Bearer " + TOKEN
        assert seen.company_header == str(COMPANY)
        assert TOKEN not in json.dumps(seen.query)


async def test_unknown_token_is_fatal_without_the_token(
    env: Env, make_provider: MakeProvider
) -> None:
    """A 401 is fatal and its message does not contain the token."""
    with pytest.raises(FatalProviderError) as caught:
        await make_provider(token="wrong-secret-token").poll(None)
    assert caught.value.status == 401
    assert "wrong-secret-token" not in str(caught.value)


async def test_foreign_next_link_is_read_from_the_configured_origin(
    env: Env, make_provider: MakeProvider
) -> None:
    """A next link on another scheme and host (as the spec's examples give) contributes its
    path and query only: the page is read from the configured origin, the token stays home
    (nothing listens on the link's origin) and both tickets are read."""
    env.sim.entry_page_size = 1
    env.sim.sell(env.ticket_type)
    env.sim.sell(env.ticket_type)
    env.sim.next_origin = "http://127.0.0.2:9"
    result = await make_provider().poll(None)
    assert len(result.tickets) == 2


async def test_server_error_is_retried(env: Env, make_provider: MakeProvider) -> None:
    """A 500 on the first request (order items) is retried by the client; the poll succeeds."""
    env.sim.sell(env.ticket_type)
    env.sim.faults.push(Fault.status(500))
    result = await make_provider().poll(None)
    assert len(result.tickets) == 1
    assert result.requests == 4


# --------------------------------------------------------------------------- order items


class Door:
    """The adapter behind the real poller, on an in-memory store: what the service runs."""

    def __init__(self, provider: NuwebProvider, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.poller = SourcePoller(
            SourceSettings(organizer="harbour-club", source=SOURCE, provider="nuweb"),
            provider=provider,
            store=self.store,
            route=lambda _: ["memory"],
            clock=lambda: datetime(2026, 6, 1, tzinfo=UTC),
        )

    async def poll(self) -> list[OutboxEvent]:
        """Ticket events only: a cancellation also moves stock (ticket_type events)."""
        events = (await self.poller.poll_once()).events
        return [event for event in events if event.type.startswith("ticket.")]

    async def cursor(self) -> str | None:
        return (await self.store.load(SOURCE)).cursor


def of(events: list[OutboxEvent], ticket: int) -> list[str]:
    """The types of one ticket's events, in order."""
    return [event.type for event in events if event.subject == str(ticket)]


def payload(event: OutboxEvent) -> dict[str, Any]:
    """The event's ``data``."""
    loaded: dict[str, Any] = orjson.loads(event.data)
    return loaded


async def settled(env: Env, make_provider: MakeProvider, count: int = 3, **kwargs: Any) -> Any:
    """``count`` tickets sold and a source that has recorded its baseline of them."""
    ids = [env.sim.sell(env.ticket_type, "Guest " + str(n)) for n in range(count)]
    door = Door(make_provider(**kwargs))
    assert await door.poll() == []
    return ids, door


@pytest.mark.parametrize("lookback", [timedelta(0), timedelta(minutes=2)])
async def test_cancel_yields_exactly_one_canceled_event(
    env: Env, make_provider: MakeProvider, lookback: timedelta
) -> None:
    """A cancellation without refund: one ticket.canceled, valid -> canceled, at cancelledAt,
    on the poll that reads order items (a minute on, when the entry cursor has passed the
    ticket: it is read again from the cancellation), and never again."""
    (ticket, *_), door = await settled(env, make_provider, lookback=lookback)
    env.time.advance(5)
    env.sim.cancel(ticket)
    cancelled_at = parse_time(env.sim.order_item(ticket)["attributes"]["cancelledAt"])
    env.time.advance(5)
    assert await door.poll() == []  # order items not due yet; the entry ticket looks unchanged
    env.time.advance(MINUTE)
    [event] = await door.poll()
    data = payload(event)
    assert (event.type, event.subject) == ("ticket.canceled", str(ticket))
    assert (data["before"]["status"], data["after"]["status"]) == ("valid", "canceled")
    assert event.time == cancelled_at
    assert data["details"]["cancelledAt"] == cancelled_at.isoformat()
    assert parse_time(requests_to(env, ENTRY)[-1]["startTime"]) <= cancelled_at
    for _ in range(3):  # re-read by the overlap and the lookback: nothing new
        env.time.advance(MINUTE)
        assert await door.poll() == []


async def test_a_scanned_ticket_cancelled_keeps_its_check_in(
    env: Env, make_provider: MakeProvider
) -> None:
    """Cancelling an admitted ticket changes its status only: no check-in reverted."""
    (ticket, *_), door = await settled(env, make_provider)
    env.sim.scan_in(ticket)
    env.time.advance(5)
    assert of(await door.poll(), ticket) == ["ticket.checked_in"]
    env.sim.cancel(ticket)
    env.time.advance(MINUTE)
    [event] = await door.poll()
    data = payload(event)
    assert event.type == "ticket.canceled"
    assert data["before"]["checked_in_at"] == data["after"]["checked_in_at"] is not None


async def test_resale_resolds_the_old_ticket_and_issues_the_new(
    env: Env, make_provider: MakeProvider
) -> None:
    """A resale: ticket.resold for the seller's ticket, ticket.issued for the buyer's, each
    naming the other."""
    (old, *_), door = await settled(env, make_provider)
    env.time.advance(10)
    new = env.sim.resell(old, "Rhea Okafor", "rhea@example.com")
    resold_at = parse_time(env.sim.order_item(new)["attributes"]["createdAt"])
    env.time.advance(MINUTE)
    events = await door.poll()
    assert of(events, old) == ["ticket.resold"]
    assert of(events, new) == ["ticket.issued"]
    [resold] = [e for e in events if e.subject == str(old)]
    [issued] = [e for e in events if e.subject == str(new)]
    assert (payload(resold)["after"]["status"], resold.time) == ("resold", resold_at)
    assert payload(resold)["details"]["resoldAs"] == str(new)
    assert payload(issued)["details"]["resaleOf"] == str(old)
    assert payload(issued)["holder"]["email"] == "rhea@example.com"
    env.time.advance(MINUTE)
    assert await door.poll() == []


async def test_a_refund_stays_a_refund(env: Env, make_provider: MakeProvider) -> None:
    """A refund cancels the order item too, but with an amount: ticket.refunded only."""
    (ticket, *_), door = await settled(env, make_provider)
    env.sim.refund(ticket)
    env.time.advance(MINUTE)
    assert of(await door.poll(), ticket) == ["ticket.refunded"]
    env.time.advance(MINUTE)
    assert await door.poll() == []


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="fail_on_page", http_status=429, page=2),
        Fault(kind="fail_on_page", http_status=500, page=2),
    ],
    ids=["429", "500"],
)
@pytest.mark.parametrize("options", [{"order_items_page_size": 2}])
async def test_failing_order_items_never_stop_check_ins(
    env: Env, make_provider: MakeProvider, fault: Fault
) -> None:
    """Order items failing on page 2 past every retry fail their own stream only: the
    check-in of the same poll is reported, their position stays where it was, and once
    their back-off has passed the cancellation is reported once."""
    ids, door = await settled(env, make_provider, count=5)
    env.sim.cancel(ids[4])
    env.sim.scan_in(ids[0])
    env.time.advance(MINUTE)
    before = decode_cursor(await door.cursor())
    env.sim.fail_path(ORDER_ITEMS, *[fault] * 9)  # 3 attempts, each waited out twice on a 429
    events = await door.poll()
    assert [(e.type, e.subject) for e in events] == [("ticket.checked_in", str(ids[0]))]
    after = decode_cursor(await door.cursor())
    assert (after.order_items, after.order_items_read_at) == (
        before.order_items,
        before.order_items_read_at,
    )
    assert after.entry != before.entry
    env.sim.path_faults.clear()
    env.time.advance(MINUTE)
    events = await door.poll()
    assert [(e.type, e.subject) for e in events] == [("ticket.canceled", str(ids[4]))]
    env.time.advance(MINUTE)
    assert await door.poll() == []


@pytest.mark.parametrize("options", [{"order_items_page_size": 2}])
async def test_order_items_pages_follow_links(env: Env, make_provider: MakeProvider) -> None:
    """Five order items in pages of two take three requests; three cancellations all show."""
    ids, door = await settled(env, make_provider, count=5)
    assert len(requests_to(env, ORDER_ITEMS)) == 3
    for ticket in ids[:3]:
        env.sim.cancel(ticket)
    env.time.advance(MINUTE)
    events = await door.poll()
    assert sorted(e.subject for e in events) == sorted(str(t) for t in ids[:3])
    assert {e.type for e in events} == {"ticket.canceled"}


async def test_order_items_are_read_incrementally_once_a_minute(
    env: Env, make_provider: MakeProvider
) -> None:
    """Twelve polls 5 s apart read order items once, filtered for the configured events,
    with trashed items, 100 a page, from the newest change minus the overlap."""
    ids, door = await settled(env, make_provider)
    newest = parse_time(env.sim.order_item(ids[-1])["meta"]["lastUpdated"])
    for _ in range(12):
        env.time.advance(5)
        await door.poll()
    queries = requests_to(env, ORDER_ITEMS)
    assert len(queries) == 2  # the baseline's, and one a minute later
    assert queries[1] == {
        "eventIds": str(EVENT),
        "type": "ticket,season_ticket",
        "withTrashed": "true",
        "limit": "100",
        "lastUpdated": format_nuweb_time(newest - ORDER_ITEMS_OVERLAP),
    }


async def test_a_cursor_from_before_order_items_reports_no_old_cancellation(
    env: Env, make_provider: MakeProvider
) -> None:
    """A source settled by the version that did not read order items: cancellations it
    had already passed stay unreported, even when a lookback re-reads their tickets or an
    edit of their order makes order items list them again; one made after its position is
    reported. Order items start at that position."""
    (old_cancel, later_cancel, *_), door = await settled(
        env, make_provider, lookback=timedelta(minutes=2)
    )
    env.time.advance(5)
    env.sim.cancel(old_cancel)
    env.time.advance(5)
    position = env.sim.list_end_time()  # where the older version's last read ended
    snapshot = await door.store.load(SOURCE)
    older = {
        "entry": {str(EVENT): format_nuweb_time(position)},
        "inventory": {},
        "inventory_read_at": format_nuweb_time(env.time.now()),
    }
    await door.store.commit(
        SOURCE, tickets={}, events=[], cursor=json.dumps(older), epoch=snapshot.epoch
    )
    env.time.advance(5)
    env.sim.cancel(later_cancel)
    env.time.advance(5)
    upgraded = Door(make_provider(lookback=timedelta(minutes=2)), door.store)
    events = await upgraded.poll()
    assert [(e.type, e.subject) for e in events] == [("ticket.canceled", str(later_cancel))]
    assert requests_to(env, ORDER_ITEMS)[-1]["lastUpdated"] == format_nuweb_time(position)
    env.sim.edit_order(old_cancel)
    edited = parse_time(env.sim.order_item(old_cancel)["meta"]["lastUpdated"])
    reads = len(requests_to(env, ORDER_ITEMS))
    for _ in range(3):
        env.time.advance(MINUTE)
        assert await upgraded.poll() == []
    assert parse_time(requests_to(env, ORDER_ITEMS)[reads]["lastUpdated"]) <= edited


async def test_the_adapter_sweeps_itself_and_keeps_its_overrides(
    env: Env, make_provider: MakeProvider
) -> None:
    """Every six hours the adapter re-reads every entry ticket (the service leaves it to
    the adapter): a cancelled ticket read again there stays canceled, silently."""
    (ticket, *_), door = await settled(env, make_provider)
    assert NuwebProvider.reconciles_itself
    env.sim.cancel(ticket)
    env.time.advance(MINUTE)
    assert of(await door.poll(), ticket) == ["ticket.canceled"]
    env.time.advance(RECONCILE_INTERVAL.total_seconds())
    served = len(requests_to(env, ENTRY))
    report = await door.poller.poll_once()
    assert [event for event in report.events if event.type.startswith("ticket.")] == []
    [sweep] = requests_to(env, ENTRY)[served:]
    assert "startTime" not in sweep
    assert report.records == 3


def parse_time(text: str) -> datetime:
    """A Nuweb timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# --------------------------------------------------------------------------- OpenAPI


def spec_path() -> Path:
    """The official spec's excerpt kept in tests/fixtures/specs/."""
    return NUWEB_OPENAPI


@cache
def spec() -> dict[str, Any]:
    """The parsed OpenAPI document."""
    loaded: dict[str, Any] = json.loads(spec_path().read_text())
    return loaded


def response_schema(path: str, status: str = "200") -> dict[str, Any]:
    """The JSON schema of a GET response, resolving a component $ref."""
    response = spec()["paths"][path]["get"]["responses"][status]
    if "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize(
    ("url", "spec_key"),
    [
        ("/v1/event-tickets?eventId=5&withTrashed=true", "/event-tickets"),
        ("/v1/sale-items?eventId=5", "/sale-items"),
        ("/v1/entry/tickets?eventId=5&includeZones=true", "/entry/tickets"),
        ("/v1/events?endingAfter=2026-06-01T00:00:00.000000Z&hideChildEvents=true", "/events"),
    ],
)
async def test_responses_validate_against_openapi(env: Env, url: str, spec_key: str) -> None:
    """Simulator bodies validate against the official OpenAPI schema of their endpoint."""
    ticket = env.sim.sell(env.ticket_type)
    env.sim.scan_in(ticket)
    env.sim.scan_out(ticket)
    headers = {"Authorization": "Bearer " + TOKEN, "X-NU-COMPANY-ID": str(COMPANY)}
    async with (
        aiohttp.ClientSession() as session,
        session.get(env.base_url + url, headers=headers) as response,
    ):
        body = await response.json()
    assert response.status == 200
    OAS31Validator(response_schema(spec_key)).validate(body)


def order_items_schema() -> dict[str, Any]:
    """The spec's /order-items schema, corrected where its own example contradicts it:
    ``data`` is a list of items (the schema says one object) and ``replacedOrderItem`` one
    object or null (the schema says an array of them)."""
    schema = copy.deepcopy(response_schema("/order-items"))
    item = schema["properties"]["data"]
    replaced = item["properties"]["attributes"]["properties"]["replacedOrderItem"]
    replaced["type"] = ["object", "null"]
    replaced["properties"] = replaced.pop("items")["properties"]
    schema["properties"]["data"] = {"type": "array", "items": item}
    return schema


async def test_order_items_validate_against_openapi(env: Env) -> None:
    """Order items (a sale, a cancellation, a resale, a refund) validate against the spec."""
    _sold, cancelled, resold, refunded = (env.sim.sell(env.ticket_type) for _ in range(4))
    env.sim.cancel(cancelled)
    env.sim.resell(resold)
    env.sim.refund(refunded)
    headers = {"Authorization": "Bearer " + TOKEN, "X-NU-COMPANY-ID": str(COMPANY)}
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            env.base_url + ORDER_ITEMS + "?eventIds=5&withTrashed=true", headers=headers
        ) as response,
    ):
        body = await response.json()
    assert response.status == 200
    OAS31Validator(order_items_schema()).validate(body)
    assert len(body["data"]) == 5
    assert body["data"][-1]["attributes"]["replacedOrderItem"]["orderItemId"] == resold


async def test_trashed_order_items_need_with_trashed(env: Env) -> None:
    """A cancelled item is removed from its order: listed only with withTrashed=true."""
    kept, cancelled = env.sim.sell(env.ticket_type), env.sim.sell(env.ticket_type)
    env.sim.cancel(cancelled)
    headers = {"Authorization": "Bearer " + TOKEN, "X-NU-COMPANY-ID": str(COMPANY)}
    async with aiohttp.ClientSession() as session:
        async with session.get(env.base_url + ORDER_ITEMS, headers=headers) as response:
            plain = await response.json()
        query = ORDER_ITEMS + "?withTrashed=true"
        async with session.get(env.base_url + query, headers=headers) as response:
            trashed = await response.json()
    assert [item["id"] for item in plain["data"]] == [kept]
    assert [item["id"] for item in trashed["data"]] == [kept, cancelled]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, "401"), ({"Authorization": "Bearer " + TOKEN, "X-NU-COMPANY-ID": "999"}, "403")],
)
async def test_auth_errors_validate_against_openapi(
    env: Env, headers: dict[str, str], status: str
) -> None:
    """401 and 403 bodies match the spec's AuthenticationError / AuthorizationError."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(env.base_url + "/v1/entry/tickets?eventId=5", headers=headers) as response,
    ):
        body = await response.json()
    assert str(response.status) == status
    OAS31Validator(response_schema("/entry/tickets", status)).validate(body)
