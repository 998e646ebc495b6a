"""The Eventpop adapter against the Eventpop simulator served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from openapi_schema_validator import OAS30Validator
from structlog.testing import capture_logs

from notifier.dev.simulators.eventpop import EventpopSimulator, Fault, PageServed, serve
from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.model import TicketRecord, TicketStatus
from notifier.providers.eventpop import EventpopProvider, Scope, decode_cursor
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from tests.fakes import Sleeps
from tests.reference_specs import EVENTPOP_SWAGGER

ORGANIZER = 4242
TOKEN = "ep-access-7f3a"
REFRESH = "ep-refresh-91c2"
CLIENT_ID, CLIENT_SECRET = "ep-client", "ep-client-secret-55"
PAGE = 5
SWAGGER = EVENTPOP_SWAGGER


@dataclass
class ManualClock:
    """A wall clock that moves only when told to; shared by simulator and adapter."""

    now: datetime = datetime(2026, 4, 27, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Env:
    """A running simulator, its API base URL, its clock and one event."""

    sim: EventpopSimulator
    base_url: str
    clock: ManualClock
    event_id: int


MakeProvider = Callable[..., EventpopProvider]


@pytest.fixture(params=[False, True], ids=["exclusive", "inclusive"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """A simulator (time bounds exclusive, then inclusive) with one organizer and event."""
    clock = ManualClock()
    sim = EventpopSimulator(clock=clock, inclusive_bounds=request.param)
    sim.add_client(CLIENT_ID, CLIENT_SECRET)
    sim.add_organizer(ORGANIZER, TOKEN, refresh_token=REFRESH, client_id=CLIENT_ID)
    event_id = sim.add_event(ORGANIZER, 71001)
    runner = await serve(sim, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    yield Env(sim, "http://127.0.0.1:" + str(port) + "/api/public", clock, event_id)
    await runner.cleanup()


@pytest.fixture
async def make_provider(env: Env) -> AsyncIterator[MakeProvider]:
    """Builds providers on the simulator (pages of five, recorded sleeps); closes them all."""
    clients: list[ProviderHttpClient] = []

    def build(
        token: str = TOKEN,
        *,
        refresh: bool = False,
        token_expires_at: datetime | None = None,
        lookback: timedelta = timedelta(0),
        scope: Scope = "organizer",
        event_ids: Sequence[int] | None = None,
        per_page: int = PAGE,
        attempts: int = 3,
    ) -> EventpopProvider:
        client = ProviderHttpClient(
            env.base_url, policy=RetryPolicy(max_attempts=attempts), sleep=Sleeps()
        )
        clients.append(client)
        return EventpopProvider(
            "ep",
            ORGANIZER,
            token,
            event_ids=[env.event_id] if event_ids is None else event_ids,
            base_url=env.base_url,
            token_expires_at=token_expires_at,
            scope=scope,
            per_page=per_page,
            lookback=lookback,
            http=client,
            clock=env.clock,
            client_id=CLIENT_ID if refresh else None,
            client_secret=CLIENT_SECRET if refresh else None,
            refresh_token=REFRESH if refresh else None,
        )

    yield build
    for client in clients:
        await client.close()


def issue(env: Env, count: int, *, spacing: float = 10.0, user_id: int | None = None) -> list[int]:
    """Create ``count`` tickets, ``spacing`` seconds apart (0: one bulk instant)."""
    ids = []
    for n in range(count):
        env.clock.advance(spacing)
        ids.append(
            env.sim.create_ticket(
                env.event_id,
                firstname="Guest",
                lastname=str(n),
                email=str(n) + "@x.co.th",
                user_id=user_id,
            )
        )
    return ids


def by_id(tickets: Sequence[TicketRecord]) -> dict[str, TicketRecord]:
    """Records keyed by ticket id."""
    return {t.ticket_id: t for t in tickets}


def ticket_gets(env: Env) -> list[Any]:
    """The GET requests the simulator saw."""
    return [seen for seen in env.sim.seen if seen.method == "GET"]


async def test_first_read_follows_pages_and_is_complete(
    env: Env, make_provider: MakeProvider
) -> None:
    """From scratch the adapter reads every page, each ticket once, marked complete."""
    ids = issue(env, 12)
    result = await make_provider().poll(None)
    assert sorted(int(t.ticket_id) for t in result.tickets) == ids
    assert len(result.tickets) == 12
    assert result.complete
    assert result.requests == len(ticket_gets(env)) == 3
    position = decode_cursor(result.cursor)["event:71001"]
    assert position.ticket_id == ids[-1]


async def test_incremental_read_returns_only_changes(env: Env, make_provider: MakeProvider) -> None:
    """After the first read only changed tickets come back, in one request when few changed."""
    ids = issue(env, 8)
    provider = make_provider()
    first = await provider.poll(None)
    env.clock.advance(30)
    env.sim.use(ids[2])
    env.clock.advance(30)
    env.sim.revoke(ids[5], "refunded")
    second = await provider.poll(first.cursor)
    tickets = by_id(second.tickets)
    assert sorted(tickets) == sorted([str(ids[2]), str(ids[5])])
    assert tickets[str(ids[2])].checked_in_at == env.clock.now - timedelta(seconds=30)
    assert tickets[str(ids[5])].status is TicketStatus.VOID
    assert tickets[str(ids[5])].raw["revoke_note"] == "refunded"
    assert not second.complete
    assert second.requests == 1
    third = await provider.poll(second.cursor)
    assert third.tickets == []
    assert third.cursor == second.cursor
    assert third.requests == 1


async def test_lookback_rereads_the_window_without_duplicates(
    env: Env, make_provider: MakeProvider
) -> None:
    """A lookback re-reads recent tickets once each, and the cursor's positions never
    move back (its deep-read state records the re-read)."""
    ids = issue(env, 7)
    provider = make_provider(lookback=timedelta(seconds=45))
    first = await provider.poll(None)
    again = await provider.poll(first.cursor)
    assert sorted(int(t.ticket_id) for t in again.tickets) == ids[-5:]
    assert decode_cursor(again.cursor) == decode_cursor(first.cursor)
    env.sim.use(ids[-1], at=env.clock.now - timedelta(seconds=40))  # a late offline scan
    late = await provider.poll(again.cursor)
    assert len({t.ticket_id for t in late.tickets}) == len(late.tickets)
    assert by_id(late.tickets)[str(ids[-1])].checked_in_at is not None


@pytest.mark.parametrize("spacing", [10.0, 0.0], ids=["spread", "bulk-instant"])
async def test_tickets_updated_between_pages_are_not_lost(
    env: Env, make_provider: MakeProvider, spacing: float
) -> None:
    """Tickets updated between pages move in the order; the read still loses none of them."""
    ids = issue(env, 14, spacing=spacing)
    mutated: list[int] = []

    def mutate(page: PageServed) -> None:
        if page.read_page == 1 and not mutated:
            mutated.extend([ids[0], ids[1], ids[8]])  # two already read, one not yet
            for ticket_id in mutated:
                env.clock.advance(spacing)
                env.sim.use(ticket_id)

    env.sim.on_page_served = mutate
    result = await make_provider().poll(None)
    tickets = by_id(result.tickets)
    assert sorted(map(int, tickets)) == ids
    assert len(result.tickets) == len(ids)
    assert {int(t) for t, r in tickets.items() if r.checked_in_at is not None} == set(mutated)


async def test_page_numbers_would_lose_tickets_in_the_simulator(env: Env) -> None:
    """The simulator reproduces the hazard: naive page-number paging skips shifted tickets."""
    ids = issue(env, 12)

    def mutate(page: PageServed) -> None:
        if page.read_page == 1:
            env.sim.use(ids[0])
            env.sim.use(ids[1])

    env.sim.on_page_served = mutate
    seen: set[int] = set()
    url = env.base_url + "/organizers/4242/events/71001/tickets"
    headers = {"Authorization": "Bearer " + TOKEN}
    async with aiohttp.ClientSession() as session:
        for page in (1, 2, 3):
            params = {"order_by": "updated_at", "per_page": "5", "page": str(page)}
            async with session.get(url, params=params, headers=headers) as response:
                seen.update(t["id"] for t in (await response.json())["tickets"])
    assert set(ids) - seen == {ids[5], ids[6]}


async def test_identical_update_times_beyond_a_page(env: Env, make_provider: MakeProvider) -> None:
    """Twelve tickets sharing one update time (a bulk update) are read by id keyset, all once."""
    ids = issue(env, 12)
    provider = make_provider()
    first = await provider.poll(None)
    env.clock.advance(60)
    env.sim.touch(*ids)
    second = await provider.poll(first.cursor)
    assert sorted(int(t.ticket_id) for t in second.tickets) == ids
    assert any(seen.query.get("order_by") == "id" for seen in ticket_gets(env))
    assert all(seen.query.get("page", "1") == "1" for seen in ticket_gets(env))


async def test_server_capped_per_page_does_not_end_the_read(
    env: Env, make_provider: MakeProvider
) -> None:
    """Asking 150 per page of a server capped at 100: the 100-ticket page is full, not last."""
    issue(env, 120, spacing=1.5)
    result = await make_provider(per_page=150).poll(None)
    assert len(result.tickets) == 120


async def test_refresh_before_expiry(env: Env, make_provider: MakeProvider) -> None:
    """Five minutes before expiry the token is refreshed first: no request is refused."""
    issue(env, 2)
    provider = make_provider(refresh=True, token_expires_at=env.clock.now + timedelta(hours=2))
    first = await provider.poll(None)
    assert env.sim.refreshes == 0
    env.clock.advance(7200 - 200)
    with capture_logs() as logs:
        second = await provider.poll(first.cursor)
    assert env.sim.refreshes == 1
    assert env.sim.token_valid(TOKEN)  # the old token still worked: refreshed early
    assert second.requests == 2
    refreshed = [e for e in logs if e["event"] == "token_refreshed"]
    assert refreshed
    assert refreshed[0]["reason"] == "expiring"
    assert TOKEN not in str(logs)
    assert REFRESH not in str(logs)


async def test_refresh_on_401_then_retry(env: Env, make_provider: MakeProvider) -> None:
    """A 401 refreshes once and retries; the rotated refresh token serves the next refresh."""
    issue(env, 2)
    provider = make_provider(refresh=True)
    env.sim.expire_token(TOKEN)
    result = await provider.poll(None)
    assert len(result.tickets) == 2
    assert result.requests == 3  # refused GET, token POST, GET
    assert env.sim.refreshes == 1
    env.clock.advance(7200)  # the refreshed token expires too; the rotated grant renews it
    assert len((await provider.poll(None)).tickets) == 2
    assert env.sim.refreshes == 2


async def test_second_401_after_refresh_is_fatal(env: Env, make_provider: MakeProvider) -> None:
    """A 401 right after a refresh is fatal: the adapter refreshes once, not in a loop."""
    issue(env, 1)
    env.sim.expires_in = 0  # every new token is dead on arrival
    env.sim.expire_token(TOKEN)
    with pytest.raises(FatalProviderError) as caught:
        await make_provider(refresh=True).poll(None)
    assert caught.value.status == 401
    assert env.sim.refreshes == 1
    assert TOKEN not in str(caught.value)


async def test_401_without_refresh_grant_is_fatal(env: Env, make_provider: MakeProvider) -> None:
    """Without a refresh grant a 401 is fatal at once, naming no token."""
    with pytest.raises(FatalProviderError) as caught:
        await make_provider(token="no-such-token").poll(None)
    assert caught.value.status == 401
    assert "no-such-token" not in str(caught.value)


async def test_token_without_organizer_scope_is_forbidden(
    env: Env, make_provider: MakeProvider
) -> None:
    """A user token lacking the organizer scope gets 403: fatal."""
    env.sim.add_organizer(ORGANIZER, "public-only", scopes=("public",))
    with pytest.raises(FatalProviderError) as caught:
        await make_provider(token="public-only").poll(None)
    assert caught.value.status == 403


async def test_token_is_never_in_a_query_string(env: Env, make_provider: MakeProvider) -> None:
    """Every request carried the token as a Bearer header, never as access_token."""
    issue(env, 12)
    provider = make_provider(refresh=True)
    env.sim.expire_token(TOKEN)
    await provider.poll(None)
    gets = ticket_gets(env)
    assert len(gets) == 4
    for seen in env.sim.seen:
        assert not seen.token_in_query
        assert "access_token" not in seen.query
        assert "refresh_token" not in seen.query
    assert all(seen.bearer for seen in gets)


async def test_failure_on_page_two_fails_the_whole_poll(
    env: Env, make_provider: MakeProvider
) -> None:
    """Page 2 failing past every retry raises; nothing partial returns, a re-poll gets all."""
    issue(env, 12)
    env.sim.faults.push(*[Fault.fail_on_page(2)] * 3)
    provider = make_provider()
    with pytest.raises(RetriableProviderError):
        await provider.poll(None)
    assert len(env.sim.faults) == 0
    assert len((await provider.poll(None)).tickets) == 12


async def test_user_scope_reads_own_tickets_newest_first(
    env: Env, make_provider: MakeProvider
) -> None:
    """scope=user reads the user endpoint newest first and stops past the watermark."""
    user = env.sim.add_organizer(ORGANIZER, "buyer-token", scopes=("public",))
    mine = issue(env, 12, user_id=user)
    issue(env, 3)  # other people's tickets are not on the user endpoint
    provider = make_provider(token="buyer-token", scope="user")
    first = await provider.poll(None)
    assert sorted(int(t.ticket_id) for t in first.tickets) == mine
    env.clock.advance(60)
    env.sim.use(mine[3])
    before = len(ticket_gets(env))
    second = await provider.poll(first.cursor)
    assert [int(t.ticket_id) for t in second.tickets] == [mine[3]]
    assert len(ticket_gets(env)) - before == 1
    assert all(seen.query["order"] == "desc" for seen in ticket_gets(env))


# --------------------------------------------------------------------------- spec


def _validator(definition: str) -> OAS30Validator:
    spec = json.loads(SWAGGER.read_text(encoding="utf-8"))
    definitions = spec["definitions"]
    ticket = definitions["PublicAPI_Entities_Ticket"]["properties"]
    # Swagger 2.0 cannot say "nullable" (OpenAPI 3.0's schema objects, validated here, can):
    # the spec documents used_at/registered_at as "null if not ...", and Grape entities
    # render every nil attribute as null.
    for name in NULLABLE:
        ticket[name] = {**ticket[name], "nullable": True}
    schema = {"$ref": "#/definitions/" + definition, "definitions": definitions}
    return OAS30Validator(schema)


NULLABLE = ("used_at", "registered_at", "revoke_note", "external_id", "phone", "email")


async def _fetch(env: Env, path: str, token: str = TOKEN) -> dict[str, Any]:
    headers = {"Authorization": "Bearer " + token}
    async with (
        aiohttp.ClientSession() as session,
        session.get(env.base_url + path, headers=headers) as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_event_tickets_response_validates_against_the_swagger(env: Env) -> None:
    """The organizer endpoint's envelope and tickets validate against the Swagger definitions."""
    ids = env.sim.seed(env.event_id, 30, rng_seed=7)
    env.sim.use(ids[0])
    body = await _fetch(env, "/organizers/4242/events/71001/tickets?per_page=100")
    assert body["count"] == body["total"] == 30
    _validator("PublicAPI_Entities_TicketsListResponse").validate(body)


async def test_user_tickets_response_validates_against_the_swagger(env: Env) -> None:
    """The user endpoint's body validates as the list envelope (the spec's 200 says one Ticket)."""
    user = env.sim.add_organizer(ORGANIZER, "buyer-token", scopes=("public",))
    issue(env, 2, user_id=user)
    body = await _fetch(env, "/organizers/4242/tickets", token="buyer-token")
    assert body["count"] == 2
    _validator("PublicAPI_Entities_TicketsListResponse").validate(body)


async def test_events_list_validates_against_the_swagger(env: Env) -> None:
    """The organizer's events list, read with an application token of an app it owns:
    each event validates as ``PublicAPI_Entities_Event``."""
    env.sim.add_client(CLIENT_ID, CLIENT_SECRET, owner=ORGANIZER)
    env.sim.add_event(
        ORGANIZER, 71002, start_at=env.clock() + timedelta(days=3), end_at=env.clock()
    )
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            env.base_url.replace("/api/public", "/oauth/token"),
            data={**form, "client_secret": CLIENT_SECRET},
        ) as response,
    ):
        app_token = (await response.json())["access_token"]
    user_token = await _fetch_status(env, "/organizers/4242/events", TOKEN)
    assert user_token == 403  # a user token is not an application token
    body = await _fetch(env, "/organizers/4242/events?order_by=end_at&order=desc", app_token)
    # 71001 (no times given) opens in a week: it ends last.
    assert [event["id"] for event in body["events"]] == [71001, 71002]
    env.sim.end_event(71001, env.clock())
    body = await _fetch(env, "/organizers/4242/events", app_token)
    validator = _validator("PublicAPI_Entities_Event")
    for event in body["events"]:
        validator.validate(event)


async def _fetch_status(env: Env, path: str, token: str) -> int:
    headers = {"Authorization": "Bearer " + token}
    async with (
        aiohttp.ClientSession() as session,
        session.get(env.base_url + path, headers=headers) as response,
    ):
        return response.status
