"""Specification of the shared provider HTTP client, against a real loopback server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.providers.http import (
    ProviderHttpClient,
    RequestBudget,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
    redact_url,
)
from tests.fakes import Sleeps

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=UTC)


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # wait until the server shuts down (to trigger client timeouts)


@dataclass
class Script:
    """Replies served in order (the last one repeats) and the requests that came in."""

    replies: list[Reply] = field(default_factory=list)
    seen: list[web.Request] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@dataclass
class Server:
    """A running scripted server and its base URL."""

    script: Script
    base_url: str


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A scripted aiohttp server on 127.0.0.1."""
    script = Script(replies=[Reply()])

    async def handler(request: web.Request) -> web.Response:
        script.seen.append(request)
        reply = script.next_reply()
        if reply.hold:
            await script.released.wait()
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Server(script, "http://127.0.0.1:" + str(port))
    script.released.set()
    await runner.cleanup()


@pytest.fixture
def sleeps() -> Sleeps:
    """A recording sleep."""
    return Sleeps()


@pytest.fixture
async def make_client(sleeps: Sleeps) -> AsyncIterator[type[ProviderHttpClient]]:
    """Builds clients with the recording sleep and a fixed clock; closes them afterwards."""
    made: list[ProviderHttpClient] = []

    class Client(ProviderHttpClient):
        def __init__(self, base_url: str, *, policy: RetryPolicy | None = None) -> None:
            super().__init__(base_url, policy=policy, sleep=sleeps, now=lambda: NOW)
            made.append(self)

    yield Client
    for client in made:
        await client.close()


async def test_retries_server_errors_then_succeeds(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """Two 500s then a 200: the payload comes back after three attempts and two backoffs."""
    server.script.replies = [Reply(500), Reply(502), Reply(200, b'{"data": [1]}')]
    client = make_client(server.base_url)
    result = await client.fetch_json("/tickets", params={"organizer_id": "1"})
    assert result.payload == {"data": [1]}
    assert result.attempts == 3
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.5
    assert 0.5 <= sleeps.delays[1] <= 1.0
    assert server.script.seen[0].query["organizer_id"] == "1"


async def test_429_honours_retry_after_seconds(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """A 429 with ``Retry-After: 7`` waits exactly 7 seconds before the retry."""
    server.script.replies = [Reply(429, b"{}", {"Retry-After": "7"}), Reply()]
    result = await make_client(server.base_url).fetch_json("/tickets")
    assert result.payload == {"ok": True}
    assert sleeps.delays == [7.0]


async def test_429_honours_retry_after_http_date(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """A ``Retry-After`` HTTP date is turned into seconds from the injected clock."""
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    server.script.replies = [Reply(429, b"{}", {"Retry-After": when}), Reply()]
    await make_client(server.base_url).fetch_json("/tickets")
    assert sleeps.delays == [30.0]


async def test_retry_after_is_capped(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """A huge ``Retry-After`` is capped by the policy."""
    server.script.replies = [Reply(429, b"{}", {"Retry-After": "86400"}), Reply()]
    policy = RetryPolicy(max_retry_after=60.0)
    await make_client(server.base_url, policy=policy).fetch_json("/tickets")
    assert sleeps.delays == [60.0]


async def test_exhausted_retries_raise_retriable_with_status(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """After the last attempt the error carries the status and the server's Retry-After."""
    server.script.replies = [Reply(503, b"{}", {"Retry-After": "12"})]
    client = make_client(server.base_url, policy=RetryPolicy(max_attempts=3))
    with pytest.raises(RetriableProviderError) as caught:
        await client.fetch_json("/tickets")
    assert caught.value.status == 503
    assert caught.value.retry_after == 12.0
    assert len(server.script.seen) == 3
    assert client.requests == 3


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_fatal_without_retry(
    server: Server, make_client: type[ProviderHttpClient], status: int
) -> None:
    """401/403 fail at once: retrying will not fix a bad token."""
    server.script.replies = [Reply(status, b'{"error": "nope"}')]
    headers = {"Authorization": "Bearer top-secret-token"}
    with pytest.raises(FatalProviderError) as caught:
        await make_client(server.base_url).fetch_json("/tickets", headers=headers)
    assert caught.value.status == status
    assert "top-secret-token" not in str(caught.value)
    assert len(server.script.seen) == 1


async def test_other_client_errors_are_fatal(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """A 400 is our request's fault: fatal, not retried."""
    server.script.replies = [Reply(400, b'{"error": "organizer_id is required"}')]
    with pytest.raises(FatalProviderError, match="HTTP 400"):
        await make_client(server.base_url).fetch_json("/tickets")
    assert len(server.script.seen) == 1


async def test_malformed_json_is_retriable(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """A truncated body is retried, and raises Retriable once attempts run out."""
    server.script.replies = [Reply(200, b'{"data": [')]
    client = make_client(server.base_url, policy=RetryPolicy(max_attempts=2))
    with pytest.raises(RetriableProviderError, match="malformed JSON"):
        await client.fetch_json("/tickets")
    assert len(sleeps.delays) == 1


async def test_a_requests_own_decoder_shapes_the_payload_and_fails_by_its_rules(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """``decode`` gives the payload; its FatalProviderError (a page of the wrong shape) is
    not retried, its ValueError (a body that is no JSON) is retried like a truncated one."""

    def decode(body: bytes) -> object:
        if body == b"wrong shape":
            raise FatalProviderError("malformed page: data is not a list")
        if body == b"no json":
            raise ValueError("not JSON")
        return ("decoded", body)

    server.script.replies = [Reply(200, b"page")]
    client = make_client(server.base_url, policy=RetryPolicy(max_attempts=2))
    assert (await client.fetch_json("/t", decode=decode)).payload == ("decoded", b"page")
    server.script.replies = [Reply(200, b"wrong shape")]
    with pytest.raises(FatalProviderError, match="data is not a list"):
        await client.fetch_json("/t", decode=decode)
    assert sleeps.delays == []
    server.script.replies = [Reply(200, b"no json")]
    with pytest.raises(RetriableProviderError, match="malformed JSON"):
        await client.fetch_json("/t", decode=decode)
    assert len(sleeps.delays) == 1


async def test_redirects_are_not_followed(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """A redirect could carry the credential elsewhere: it fails the request instead."""
    server.script.replies = [Reply(302, b"", {"Location": "http://evil.example/steal"})]
    with pytest.raises(FatalProviderError, match="HTTP 302"):
        await make_client(server.base_url).fetch_json("/tickets")


async def test_timeout_is_retriable(server: Server, make_client: type[ProviderHttpClient]) -> None:
    """A response slower than the per-request timeout fails as a retriable network error."""
    server.script.replies = [Reply(hold=True)]
    client = make_client(server.base_url, policy=RetryPolicy(max_attempts=1, timeout=0.2))
    with pytest.raises(RetriableProviderError, match="network error"):
        await client.fetch_json("/tickets")


async def test_connection_refused_is_retriable(make_client: type[ProviderHttpClient]) -> None:
    """Nobody listening is a network error, retried then raised as Retriable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client("http://127.0.0.1:" + str(port), policy=RetryPolicy(max_attempts=2))
    with pytest.raises(RetriableProviderError, match="network error"):
        await client.fetch_json("/tickets?token=abc123")


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/tickets?token=leaked-token&after=x",
        "http://localhost:{port}/tickets?token=leaked-token",
        "http://127.0.0.1:1/tickets?token=leaked-token",
        "https://127.0.0.1:{port}/tickets?token=leaked-token",
    ],
)
async def test_foreign_origin_links_are_refused(
    server: Server, make_client: type[ProviderHttpClient], link: str
) -> None:
    """A next link on another scheme, host or port is never requested, and its token is redacted."""
    port = server.base_url.rsplit(":", 1)[1]
    with pytest.raises(FatalProviderError, match="another origin") as caught:
        await make_client(server.base_url).fetch_json(link.format(port=port))
    assert "leaked-token" not in str(caught.value)
    assert server.script.seen == []


async def test_same_origin_absolute_link_is_followed(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """An absolute link on the configured origin is followed with its query intact."""
    link = server.base_url + "/tickets?organizer_id=1&after=2025-05-20+12%3A47%3A26.622033_69246828"
    await make_client(server.base_url).fetch_json(link)
    assert server.script.seen[0].query["after"] == "2025-05-20 12:47:26.622033_69246828"


async def test_paths_join_the_base_path(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """A relative path is appended to the base URL's path (a simulator may sit under a prefix)."""
    await make_client(server.base_url + "/shotgun/").fetch_json("/tickets")
    assert server.script.seen[0].path == "/shotgun/tickets"


async def test_error_messages_redact_query_credentials(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """Errors name the URL with every credential query value replaced by ***."""
    server.script.replies = [Reply(500)]
    client = make_client(server.base_url, policy=RetryPolicy(max_attempts=1))
    with pytest.raises(RetriableProviderError) as caught:
        await client.fetch_json("/tickets?token=tok-1&key=key-2&organizer_id=9")
    message = str(caught.value)
    assert "tok-1" not in message
    assert "key-2" not in message
    assert "token=***" in message
    assert "organizer_id=9" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/t?token=abc&organizer_id=1", "https://h/t?token=***&organizer_id=1"),
        (
            "https://h/t?api_key=a&apikey=b&access_token=c",
            "https://h/t?api_key=***&apikey=***&access_token=***",
        ),
        (
            "https://h/t?refresh_token=a&client_secret=b",
            "https://h/t?refresh_token=***&client_secret=***",
        ),
        ("https://h/t?secret=a&password=b&Key=c", "https://h/t?secret=***&password=***&Key=***"),
        ("https://user:pw@h/t", "https://***@h/t"),
        (
            "https://h/t?after=2025-05-20+12:47:26.622033_1",
            "https://h/t?after=2025-05-20+12:47:26.622033_1",
        ),
        ("https://h/t", "https://h/t"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    """Credential query values and userinfo are masked; everything else is kept."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("1.5", 1.5),
        ("-3", None),  # a negative wait is no answer (docs/reliability.md)
        (" ", None),
        (None, None),
        ("soon", None),
        (format_datetime(NOW + timedelta(minutes=2), usegmt=True), 120.0),
        (format_datetime(NOW - timedelta(minutes=2), usegmt=True), 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Delta-seconds and HTTP dates become non-negative seconds; junk means no hint."""
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (1, 0.0, 0.25),
        (1, 1.0, 0.5),
        (2, 0.5, 0.75),
        (3, 0.0, 1.0),
        (10, 0.0, 15.0),
        (10, 1.0, 30.0),
    ],
)
def test_backoff_delay_is_capped_exponential_with_jitter(
    attempt: int, jitter: float, expected: float
) -> None:
    """Delays double per attempt up to the cap; jitter spreads the upper half."""
    assert backoff_delay(attempt, base=0.5, cap=30.0, jitter=jitter) == pytest.approx(expected)


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the fake sleep is awaited."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_budget_paces_requests_beyond_the_burst() -> None:
    """2 requests per second: a burst of two goes at once, the next ones wait half a second each."""
    time = FakeTime()
    budget = RequestBudget(2, 1.0, clock=time.clock, sleep=time.sleep)
    waits = [await budget.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, pytest.approx(0.5), pytest.approx(0.5)]
    assert time.now == pytest.approx(1.0)


async def test_budget_refills_while_idle() -> None:
    """After a quiet period the bucket is full again (but never above its capacity)."""
    time = FakeTime()
    budget = RequestBudget(100, 60.0, burst=1, clock=time.clock, sleep=time.sleep)
    assert await budget.acquire() == 0.0
    time.now += 3600
    assert await budget.acquire() == 0.0
    assert await budget.acquire() == pytest.approx(0.6)


async def test_budget_is_shared_by_concurrent_users() -> None:
    """Several sources sharing one budget are paced together, not each on its own."""
    time = FakeTime()
    budget = RequestBudget(1, 1.0, clock=time.clock, sleep=time.sleep)
    await asyncio.gather(*(budget.acquire() for _ in range(3)))
    assert time.now == pytest.approx(2.0)


async def test_client_spends_the_budget_per_attempt(server: Server, sleeps: Sleeps) -> None:
    """Every HTTP attempt, retries included, takes a slot of the shared budget."""
    time = FakeTime()
    budget = RequestBudget(1, 10.0, clock=time.clock, sleep=time.sleep)
    server.script.replies = [Reply(500), Reply()]
    client = ProviderHttpClient(server.base_url, budget=budget, sleep=sleeps)
    try:
        await client.fetch_json("/tickets")
    finally:
        await client.close()
    assert time.slept == [pytest.approx(10.0)]


async def test_response_headers_are_returned_case_insensitively(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """Rate-limit headers reach the adapter, whatever their case on the wire."""
    server.script.replies = [Reply(headers={"X-Remaining-Requests": "7"})]
    result = await make_client(server.base_url).fetch_json("/items")
    assert result.headers["x-remaining-requests"] == "7"


async def test_post_form_sends_an_encoded_form(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """A token grant is POSTed form-encoded and its JSON answer decoded."""
    server.script.replies = [Reply(body=b'{"access_token": "new"}')]
    result = await make_client(server.base_url).post_form(
        "/oauth/token", {"grant_type": "refresh_token", "refresh_token": "r1"}
    )
    (request,) = server.script.seen
    assert request.method == "POST"
    assert request.content_type == "application/x-www-form-urlencoded"
    assert result.payload == {"access_token": "new"}


async def test_post_form_to_another_origin_is_refused(
    server: Server, make_client: type[ProviderHttpClient]
) -> None:
    """A credential-carrying POST never leaves the configured origin."""
    client = make_client(server.base_url)
    with pytest.raises(FatalProviderError):
        await client.post_form("https://evil.example/oauth/token", {"refresh_token": "r1"})
    assert server.script.seen == []


async def test_a_provider_specific_wait_header_paces_a_429(
    server: Server, make_client: type[ProviderHttpClient], sleeps: Sleeps
) -> None:
    """A 429 without Retry-After waits for the header the policy names instead."""
    server.script.replies = [
        Reply(status=429, headers={"X-Available-In-Seconds": "12"}),
        Reply(),
    ]
    policy = RetryPolicy(retry_after_headers=("Retry-After", "X-Available-In-Seconds"))
    await make_client(server.base_url, policy=policy).fetch_json("/items")
    assert sleeps.delays == [12.0]


async def test_background_requests_leave_headroom_for_live_polls() -> None:
    """A sweep waits until half the burst is free; a live poll then goes straight through."""
    now = [0.0]
    slept: list[float] = []

    async def advance(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = RequestBudget(10, 10.0, clock=lambda: now[0], sleep=advance)
    for _ in range(6):  # a sweep drains the burst down to its headroom
        await budget.acquire(background=True)
    background_wait = await budget.acquire(background=True)
    assert background_wait > 0
    assert await budget.acquire() == 0.0  # the live poll finds a token waiting


async def test_every_answer_status_is_reported(server: Server, sleeps: Sleeps) -> None:
    """Each attempt's status reaches the metrics hook, retries included."""
    server.script.replies = [Reply(status=500), Reply()]
    statuses: list[str] = []
    client = ProviderHttpClient(
        server.base_url, sleep=sleeps, now=lambda: NOW, on_response=statuses.append
    )
    try:
        await client.fetch_json("/items")
    finally:
        await client.close()
    assert statuses == ["500", "200"]


async def test_a_network_failure_is_reported_as_error(sleeps: Sleeps) -> None:
    """No answer at all is counted as 'error'."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    statuses: list[str] = []
    client = ProviderHttpClient(
        f"http://127.0.0.1:{port}",
        policy=RetryPolicy(max_attempts=2),
        sleep=sleeps,
        on_response=statuses.append,
    )
    try:
        with pytest.raises(RetriableProviderError):
            await client.fetch_json("/items")
    finally:
        await client.close()
    assert statuses == ["error", "error"]
