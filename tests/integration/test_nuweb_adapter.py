"""The Nuweb adapter against the Nuweb simulator served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_schema_validator import OAS31Validator

from notifier.errors import FatalProviderError
from notifier.model import TicketStatus
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.nuweb import (
    RETRY_POLICY,
    NuwebProvider,
    decode_cursor,
    format_nuweb_time,
)
from notifier.simulators.nuweb import Fault, NuwebSimulator, serve
from tests.reference_specs import NUWEB_OPENAPI

COMPANY = 12
EVENT = 5
TOKEN = "nu-token-9a7b"


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
    """From scratch: every entry ticket and the inventory, in two requests, marked complete."""
    ids = [env.sim.sell(env.ticket_type) for _ in range(3)]
    result = await make_provider().poll(None)
    assert sorted(t.ticket_id for t in result.tickets) == sorted(str(i) for i in ids)
    assert result.complete
    assert result.requests == 2
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
    assert result.requests == 3


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


async def test_foreign_next_link_is_refused(env: Env, make_provider: MakeProvider) -> None:
    """A next link to another origin fails the poll instead of sending the token there."""
    env.sim.entry_page_size = 1
    env.sim.sell(env.ticket_type)
    env.sim.sell(env.ticket_type)
    env.sim.next_origin = "http://evil.example"
    with pytest.raises(FatalProviderError, match="another origin"):
        await make_provider().poll(None)


async def test_server_error_is_retried(env: Env, make_provider: MakeProvider) -> None:
    """A 500 on the entry read is retried by the client and the poll succeeds."""
    env.sim.sell(env.ticket_type)
    env.sim.faults.push(Fault.status(500))
    result = await make_provider().poll(None)
    assert len(result.tickets) == 1
    assert result.requests == 3


# --------------------------------------------------------------------------- OpenAPI


def spec_path() -> Path:
    """The official spec, in ../shared beside the repository."""
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
