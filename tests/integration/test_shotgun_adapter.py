"""The Shotgun adapter against the Shotgun simulator served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from structlog.testing import capture_logs

from notifier.dev.simulators.shotgun import Fault, ShotgunSimulator, serve
from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.model import TicketRecord, TicketStatus
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.shotgun import ShotgunProvider, decode_cursor
from tests.fakes import Sleeps

ORGANIZER = 173027
TOKEN = "org-token-5f1c"
PAGE = 5


@dataclass
class Env:
    """A running simulator, its URL and the retry sleeps of every client built on it."""

    sim: ShotgunSimulator
    base_url: str
    sleeps: Sleeps
    event_id: int


MakeProvider = Callable[..., ShotgunProvider]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    """A simulator with one organizer and one event, pages of five, served on loopback."""
    sim = ShotgunSimulator(page_size=PAGE)
    sim.add_organizer(ORGANIZER, TOKEN)
    event_id = sim.add_event(ORGANIZER, 410006)
    runner = await serve(sim, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    yield Env(sim, "http://127.0.0.1:" + str(port), Sleeps(), event_id)
    await runner.cleanup()


@pytest.fixture
async def make_provider(env: Env) -> AsyncIterator[MakeProvider]:
    """Builds providers on the simulator (three attempts, recorded sleeps); closes them all."""
    clients: list[ProviderHttpClient] = []

    def build(
        token: str = TOKEN,
        attempts: int = 3,
        *,
        event_ids: Sequence[int] = (),
        include_cohosted_events: bool = False,
        lookback: timedelta = timedelta(0),
    ) -> ShotgunProvider:
        client = ProviderHttpClient(
            env.base_url, policy=RetryPolicy(max_attempts=attempts), sleep=env.sleeps
        )
        clients.append(client)
        return ShotgunProvider(
            "shotgun-main",
            ORGANIZER,
            token,
            base_url=env.base_url,
            http=client,
            event_ids=event_ids,
            include_cohosted_events=include_cohosted_events,
            lookback=lookback,
        )

    yield build
    for client in clients:
        await client.close()


def by_id(tickets: Sequence[TicketRecord]) -> dict[str, TicketRecord]:
    """Records keyed by ticket id."""
    return {t.ticket_id: t for t in tickets}


def issue(env: Env, count: int, event_id: int | None = None) -> list[int]:
    """Create ``count`` tickets on the event."""
    target = env.event_id if event_id is None else event_id
    return [
        env.sim.create_ticket(target, first_name="Guest", last_name=str(n), email=str(n) + "@x.io")
        for n in range(count)
    ]


async def test_first_read_follows_pages_and_is_complete(
    env: Env, make_provider: MakeProvider
) -> None:
    """From scratch the adapter reads every page and returns every ticket once, marked complete."""
    ids = issue(env, 12)
    result = await make_provider().poll(None)
    assert [int(t.ticket_id) for t in result.tickets] == ids
    assert result.complete
    assert result.requests == 3
    last = env.sim.ticket(ids[-1])
    assert decode_cursor(result.cursor)["all"].text() == (
        last["ticket_updated_at"] + "_" + str(ids[-1])
    )


async def test_exactly_full_last_page_ends_on_the_empty_page(
    env: Env, make_provider: MakeProvider
) -> None:
    """A full last page carries a next link; the empty page after it ends the read."""
    issue(env, 10)
    result = await make_provider().poll(None)
    assert len(result.tickets) == 10
    assert result.requests == 3


async def test_incremental_read_returns_only_changes(env: Env, make_provider: MakeProvider) -> None:
    """After the first read, only tickets changed since the cursor come back, with their changes."""
    ids = issue(env, 8)
    provider = make_provider()
    first = await provider.poll(None)
    env.sim.scan(ids[2])
    env.sim.refund(ids[5])
    second = await provider.poll(first.cursor)
    tickets = by_id(second.tickets)
    assert sorted(tickets) == sorted([str(ids[2]), str(ids[5])])
    assert tickets[str(ids[2])].checked_in_at is not None
    assert tickets[str(ids[5])].status is TicketStatus.REFUNDED
    assert tickets[str(ids[5])].status_changed_at is not None
    assert not second.complete
    third = await provider.poll(second.cursor)
    assert list(third.tickets) == []
    assert third.cursor == second.cursor


async def test_identical_update_times_across_a_page_boundary(
    env: Env, make_provider: MakeProvider
) -> None:
    """Eight tickets updated at the same instant span two pages; the id tie-breaker loses none."""
    ids = issue(env, 8)
    provider = make_provider()
    first = await provider.poll(None)
    env.sim.touch(*ids)
    second = await provider.poll(first.cursor)
    assert [int(t.ticket_id) for t in second.tickets] == ids
    assert second.requests == 2
    assert len({t.updated_at for t in second.tickets}) == 1


async def test_one_cursor_per_configured_event(env: Env, make_provider: MakeProvider) -> None:
    """Each configured event is its own stream with its own position; others are not read."""
    other = env.sim.add_event(ORGANIZER, 410007)
    ignored = env.sim.add_event(ORGANIZER, 410008)
    issue(env, 3)
    second_event = issue(env, 2, other)
    issue(env, 2, ignored)
    provider = make_provider(event_ids=[env.event_id, other])
    first = await provider.poll(None)
    assert len(first.tickets) == 5
    assert set(decode_cursor(first.cursor)) == {"event:410006", "event:410007"}
    env.sim.scan(second_event[0])
    second = await provider.poll(first.cursor)
    assert [t.ticket_id for t in second.tickets] == [str(second_event[0])]
    assert second.requests == 2
    assert {s.query.get("event_id") for s in env.sim.seen} == {"410006", "410007"}


async def test_cohosted_events_only_when_asked(env: Env, make_provider: MakeProvider) -> None:
    """Tickets of an event we only cohost appear with include_cohosted_events."""
    env.sim.add_organizer(999, "other-org-token")
    cohosted = env.sim.add_event(999, 500001, cohost_ids=[ORGANIZER])
    issue(env, 1, cohosted)
    assert list((await make_provider().poll(None)).tickets) == []
    with_cohosted = await make_provider(include_cohosted_events=True).poll(None)
    assert [t.event_id for t in with_cohosted.tickets] == ["500001"]
    assert env.sim.seen[-1].query["include_cohosted_events"] == "1"


async def test_429_then_recovery(env: Env, make_provider: MakeProvider) -> None:
    """A 429 waits its Retry-After, then the poll completes; the retry counts as a request."""
    issue(env, 3)
    env.sim.faults.push(Fault.status(429, retry_after=2))
    result = await make_provider().poll(None)
    assert len(result.tickets) == 3
    assert env.sleeps.delays == [2.0]
    assert result.requests == 2


async def test_failure_on_page_two_fails_the_whole_poll(
    env: Env, make_provider: MakeProvider
) -> None:
    """Page 2 failing past every retry raises; nothing partial comes back, a re-poll gets all."""
    issue(env, 12)
    env.sim.faults.push(*[Fault.fail_on_page(2)] * 3)
    provider = make_provider()
    with pytest.raises(RetriableProviderError) as caught:
        await provider.poll(None)
    assert caught.value.status == 500
    assert len(env.sim.faults) == 0
    assert len((await provider.poll(None)).tickets) == 12


async def test_malformed_page_fails_the_poll(env: Env, make_provider: MakeProvider) -> None:
    """A truncated JSON page that stays truncated fails the poll as retriable."""
    issue(env, 3)
    env.sim.faults.push(Fault.malformed_json())
    with pytest.raises(RetriableProviderError, match="malformed JSON"):
        await make_provider(attempts=1).poll(None)


async def test_slow_answer_within_timeout_succeeds(env: Env, make_provider: MakeProvider) -> None:
    """A slow answer is just late when within the timeout: the poll still succeeds."""
    issue(env, 1)
    env.sim.faults.push(Fault.delay(0.05))
    assert len((await make_provider().poll(None)).tickets) == 1


async def test_wrong_organizer_token_reads_empty_and_warns(
    env: Env, make_provider: MakeProvider
) -> None:
    """Another organizer's valid token gets 200 with nothing: the adapter warns source_empty."""
    issue(env, 3)
    env.sim.add_organizer(999, "other-org-token")
    with capture_logs() as logs:
        result = await make_provider(token="other-org-token").poll(None)
    assert list(result.tickets) == []
    assert result.cursor is None
    empty = [e for e in logs if e["event"] == "source_empty"]
    assert empty
    assert empty[0]["log_level"] == "warning"
    assert empty[0]["source"] == "shotgun-main"


async def test_unknown_token_is_fatal(env: Env, make_provider: MakeProvider) -> None:
    """An unknown token is a 401: fatal, and the token is not in the message."""
    with pytest.raises(FatalProviderError) as caught:
        await make_provider(token="no-such-token").poll(None)
    assert caught.value.status == 401
    assert "no-such-token" not in str(caught.value)


async def test_bearer_token_never_in_query(env: Env, make_provider: MakeProvider) -> None:
    """Every request carried the token as a Bearer header and never in its query string."""
    issue(env, 12)
    await make_provider().poll(None)
    assert len(env.sim.seen) == 3
    for seen in env.sim.seen:
        assert seen.bearer
        assert "token" not in seen.query
        assert TOKEN not in seen.path_qs


async def test_resell_yields_resold_original_and_new_ticket(
    env: Env, make_provider: MakeProvider
) -> None:
    """A resale marks the original resold and issues a new ticket to the new holder."""
    [original] = issue(env, 1)
    provider = make_provider()
    first = await provider.poll(None)
    new_id = env.sim.resell(original, first_name="Zoé", last_name="Petit", email="zoe@x.io")
    result = await provider.poll(first.cursor)
    tickets = by_id(result.tickets)
    assert tickets[str(original)].status is TicketStatus.RESOLD
    assert tickets[str(new_id)].status is TicketStatus.VALID
    assert tickets[str(new_id)].holder.email == "zoe@x.io"


async def test_approval_transfer_and_unscan_are_read(env: Env, make_provider: MakeProvider) -> None:
    """Pending→valid, a transfer to a new holder and a reverted scan all show up incrementally."""
    pending = env.sim.create_ticket(env.event_id, status="pending_approval")
    [moved, scanned] = issue(env, 2)
    env.sim.scan(scanned)
    provider = make_provider()
    first = await provider.poll(None)
    assert {t.status for t in first.tickets} == {TicketStatus.PENDING, TicketStatus.VALID}
    env.sim.approve(pending)
    env.sim.transfer(moved, "Nina", "Roy", "nina@x.io", "+33600000000")
    env.sim.unscan(scanned)
    tickets = by_id((await provider.poll(first.cursor)).tickets)
    assert tickets[str(pending)].status is TicketStatus.VALID
    assert tickets[str(moved)].holder.first_name == "Nina"
    assert tickets[str(scanned)].checked_in_at is None


async def test_lookback_rereads_a_window_before_the_cursor(
    env: Env, make_provider: MakeProvider
) -> None:
    """A lookback re-reads a window before the cursor, and the cursor never moves back."""
    ids = issue(env, 3)
    provider = make_provider(lookback=timedelta(hours=1))
    first = await provider.poll(None)
    again = await provider.poll(first.cursor)
    assert [int(t.ticket_id) for t in again.tickets] == ids
    assert again.cursor == first.cursor


async def _get(url: str, params: dict[str, str]) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        body: dict[str, object] = await response.json()
        return response.status, body


async def test_simulator_requires_organizer_id(env: Env) -> None:
    """The simulator answers 400 without organizer_id, like the real API's required parameter."""
    status, body = await _get(env.base_url + "/tickets", params={"token": TOKEN})
    assert status == 400
    assert "organizer_id" in str(body["error"])


async def test_simulator_query_token_is_carried_in_next_link(env: Env) -> None:
    """A query token (as in Shotgun's /tickets documentation) is carried in the next link
    along with the filters."""
    issue(env, 5)
    params = {"token": TOKEN, "organizer_id": str(ORGANIZER), "event_id": str(env.event_id)}
    status, body = await _get(env.base_url + "/tickets", params=params)
    assert status == 200
    assert body["params"] == {
        "organizer_id": ORGANIZER,
        "event_id": env.event_id,
        "include_cohosted_events": False,
    }
    pagination = body["pagination"]
    assert isinstance(pagination, dict)
    next_link = str(pagination["next"])
    assert next_link.startswith(env.base_url + "/tickets?")
    assert "token=" + TOKEN in next_link
    assert "after=" in next_link
