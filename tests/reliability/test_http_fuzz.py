"""Fuzzing at the HTTP layer: hypothesis-generated status codes, headers, bodies and next
links, served by a real aiohttp server on 127.0.0.1 and read through the real client
(``notifier.providers.http``) and every adapter.

Each provider's simulator is first read once through a recording proxy: its real answers,
in request order, are the seeds. Each example then mutates a few of them (a status, rate
headers such as ``X-Available-In-Seconds: 1e14``, a subtree of the JSON replaced, a next
link replaced by ``https://host\\@evil.com/``, raw bytes, deep nesting, a lying
``Content-Encoding``) and polls a fresh adapter. Every poll must end, within a bound, in a
result or one of the project's own errors; every wait it asked for must be finite and
within the configured cap; no error message may carry the credential.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings, strategies as st
from yarl import URL

from notifier.errors import NotifierError
from notifier.providers.base import Provider
from notifier.providers.eventpop import EventpopProvider
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.nuweb import RETRY_POLICY as NUWEB_POLICY, NuwebProvider, RatePacer
from notifier.providers.shotgun import ShotgunProvider
from notifier.providers.tickettailor import TicketTailorProvider
from notifier.providers.waits import DEFAULT_MAX_HEADER_WAIT
from tests.fakes import Sleeps
from tests.providers import (
    harness_eventpop as ep,
    harness_nuweb as nw,
    harness_shotgun as sg,
    harness_tickettailor as tt,
)

EXAMPLES = 200
# Recorded bodies name the simulator's origin (absolute next links); they are stored with
# this placeholder and served with the serving server's own origin.
ORIGIN = b"@@ORIGIN@@"
POLL_BOUND = 15.0  # seconds one fuzzed poll may take, retries and all
KEPT_HEADERS = (
    "Content-Type",
    "X-Remaining-Requests",
    "X-Available-In-Seconds",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
    "X-Rate-Limit-Limit",
)
RATE_HEADERS = (
    "Retry-After",
    "X-Available-In-Seconds",
    "X-Remaining-Requests",
    "X-Rate-Limit-Reset",
    "X-Rate-Limit-Remaining",
    "Content-Type",
    "Location",
    "Content-Encoding",
)
HEADER_VALUES = st.sampled_from(
    [
        "1e14",
        "1e9",
        "1e400",
        "-5",
        "-1e14",
        "nan",
        "inf",
        "-inf",
        "0",
        "3",
        "",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "gzip",
        "deflate",
        "br",
        "application/json",
        "text/html",
        "https://evil.example/",
    ]
) | st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
LINKS = st.sampled_from(
    [
        "https://host\\@evil.com/",
        "http://[::1",
        "//evil.com/steal",
        "/relative?page=2",
        "http://127.0.0.1:1/x",
        "http://127.0.0.1:99999/x",
        "https://evil.com/tickets?page=2",
        "javascript:alert(1)",
        "http://user:pw@127.0.0.1/",
        "%",
        "?page=99999999999999999999",
        "",
        "\x00",
        "http://127.0.0.1:1/" + "a" * 5000,
    ]
) | st.text(max_size=30)
STATUSES = st.sampled_from(
    [200, 201, 202, 301, 302, 307, 400, 401, 403, 404, 408, 409, 410, 418, 422, 429, 500, 502, 503]
) | st.integers(200, 599).filter(lambda s: s not in (204, 304))
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | LINKS
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class FuzzServer:
    """Answers request k with ``script[k]`` if scripted, else the k-th recorded answer,
    else 404: a poll always ends, however the fuzzed links send it round."""

    recorded: list[Answer]
    script: dict[int, Answer] = field(default_factory=dict)
    served: int = 0
    origin: bytes = b""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        index = self.served
        self.served += 1
        answer = self.script.get(index)
        if answer is None:
            if index >= len(self.recorded):
                return web.json_response({"error": "not found"}, status=404)
            answer = self.recorded[index]
        body = answer.body.replace(ORIGIN, self.origin)
        response = web.Response(status=answer.status, body=body)
        for name, value in answer.headers.items():
            response.headers[name] = value
        return response


@dataclass(frozen=True, slots=True)
class ProviderCase:
    name: str
    harness: Callable[[], Any]
    prefix: str  # the path the adapter's base URL carries
    token: str
    build: Callable[[str, ProviderHttpClient, Sleeps], Provider]
    policy: RetryPolicy


def _fast(policy: RetryPolicy | None = None) -> RetryPolicy:
    headers = policy.retry_after_headers if policy else ("Retry-After",)
    return RetryPolicy(max_attempts=2, timeout=2.0, retry_after_headers=headers)


CASES = {
    "shotgun": ProviderCase(
        "shotgun",
        sg.ShotgunHarness,
        "",
        sg.TOKEN,
        lambda url, http, _sleeps: ShotgunProvider(
            "fuzz", sg.ORGANIZER, sg.TOKEN, base_url=url, http=http
        ),
        _fast(),
    ),
    "eventpop": ProviderCase(
        "eventpop",
        ep.EventpopHarness,
        "/api/public",
        ep.TOKEN,
        lambda url, http, _sleeps: EventpopProvider(
            "fuzz",
            ep.ORGANIZER,
            ep.TOKEN,
            event_ids=[ep.EVENT],
            base_url=url,
            per_page=5,
            http=http,
        ),
        _fast(),
    ),
    "nuweb": ProviderCase(
        "nuweb",
        nw.NuwebHarness,
        "",
        nw.TOKEN,
        lambda url, http, sleeps: NuwebProvider(
            "fuzz",
            nw.TOKEN,
            nw.COMPANY,
            event_ids=[nw.EVENT],
            base_url=url,
            http=http,
            sleep=sleeps,
            pacer=RatePacer(clock=_utc_now, sleep=sleeps),
        ),
        _fast(NUWEB_POLICY),
    ),
    "tickettailor": ProviderCase(
        "tickettailor",
        tt.TicketTailorHarness,
        "",
        tt.API_KEY,
        lambda url, http, sleeps: TicketTailorProvider(
            "fuzz", tt.API_KEY, base_url=url, http=http, sleep=sleeps, page_limit=tt.PAGE_SIZE
        ),
        _fast(),
    ),
}


def _utc_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _origin(runner: web.AppRunner) -> str:
    return "http://127.0.0.1:" + str(runner.addresses[0][1])


async def _record(case: ProviderCase, harness: Any) -> list[Answer]:
    """One real poll of the simulator, through a proxy that keeps each answer in order."""
    upstream = harness._base_url[: len(harness._base_url) - len(case.prefix) or None]
    upstream_origin = str(URL(upstream).origin()).encode()
    recorded: list[Answer] = []

    async def proxy(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession(auto_decompress=True) as session,
            session.request(
                request.method,
                upstream + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as answer,
        ):
            body = (await answer.read()).replace(upstream_origin, ORIGIN)
            kept = {name: answer.headers[name] for name in KEPT_HEADERS if name in answer.headers}
            recorded.append(Answer(answer.status, kept, body))
            here = _origin(runner).encode()
            return web.Response(status=answer.status, body=body.replace(ORIGIN, here), headers=kept)

    runner = await _serve(proxy)
    try:
        async with aiohttp.ClientSession() as session:
            http = ProviderHttpClient(
                _origin(runner) + case.prefix, session=session, policy=case.policy
            )
            provider = case.build(_origin(runner) + case.prefix, http, Sleeps())
            result = await provider.poll(None)
            await provider.close()
    finally:
        await runner.cleanup()
    assert result.tickets or result.ticket_types, "the recorded poll read nothing to fuzz"
    return recorded


def _paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            paths += _paths(child, (*prefix, index))
    return paths


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], tuple(rest), new)
    return copy


@st.composite
def _mutated_json(draw: st.DrawFn, body: bytes) -> bytes:
    try:
        tree = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    paths = _paths(tree)
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
        with_link = bool(path) and "next" in str(path[-1]).lower()
        new = draw(LINKS if with_link and draw(st.booleans()) else JSON_VALUES)
        try:
            tree = _replace(tree, path, new)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    return _dumps(tree)


def _dumps(value: object) -> bytes:
    """The standard library's encoder: orjson refuses integers beyond 64 bits, which a
    provider may well send (they are among the generated values)."""
    return json.dumps(value).encode()


def _deep(depth: int) -> bytes:
    return b'{"data":' + b"[" * depth + b"]" * depth + b"}"


@st.composite
def _answer(draw: st.DrawFn, base: Answer) -> Answer:
    status = draw(st.just(base.status) | STATUSES)
    headers = dict(base.headers)
    headers.update(draw(st.dictionaries(st.sampled_from(RATE_HEADERS), HEADER_VALUES, max_size=3)))
    body = draw(
        _mutated_json(base.body)
        | st.just(base.body)
        | st.binary(max_size=200)
        | st.integers(100, 100_000).map(_deep)
        | JSON_VALUES.map(_dumps)
        | st.just(b"1e400")
        | st.just(b"[" + b"1," * 50_000 + b"1]")
    )
    return Answer(status, headers, body)


@st.composite
def _script(draw: st.DrawFn, recorded: list[Answer]) -> dict[int, Answer]:
    indexes = draw(st.sets(st.integers(0, len(recorded)), min_size=1, max_size=3))
    return {i: draw(_answer(recorded[min(i, len(recorded) - 1)])) for i in sorted(indexes)}


@dataclass
class Tally:
    polls: int = 0
    succeeded: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    slowest: float = 0.0
    longest_wait: float = 0.0


TALLIES: dict[str, Tally] = {}


async def _poll_once(
    case: ProviderCase, server: FuzzServer, base: str, session: aiohttp.ClientSession, tally: Tally
) -> None:
    sleeps = Sleeps()
    http = ProviderHttpClient(base, session=session, policy=case.policy, sleep=sleeps)
    provider = case.build(base, http, sleeps)
    started = time.monotonic()
    message = ""
    try:
        async with asyncio.timeout(POLL_BOUND):
            await provider.poll(None)
        tally.succeeded += 1
    except NotifierError as exc:  # ours: fine; anything else fails the example
        message = str(exc)
        tally.errors[type(exc).__name__] = tally.errors.get(type(exc).__name__, 0) + 1
    finally:
        await provider.close()
    assert case.token not in message
    elapsed = time.monotonic() - started
    tally.polls += 1
    tally.slowest = max(tally.slowest, elapsed)
    for delay in sleeps.delays:
        assert math.isfinite(delay), delay
        assert 0 <= delay <= DEFAULT_MAX_HEADER_WAIT, delay
        tally.longest_wait = max(tally.longest_wait, delay)


@pytest.mark.parametrize("name", list(CASES))
def test_every_fuzzed_answer_ends_in_a_result_or_our_own_error(name: str) -> None:
    case = CASES[name]
    loop = asyncio.new_event_loop()
    harness = case.harness()
    tally = TALLIES.setdefault(name, Tally())

    async def setup() -> tuple[list[Answer], FuzzServer, web.AppRunner, aiohttp.ClientSession]:
        await harness.start()
        recorded = await _record(case, harness)
        server = FuzzServer(recorded)
        runner = await _serve(server.handle)
        server.origin = _origin(runner).encode()
        return recorded, server, runner, aiohttp.ClientSession()

    recorded, server, runner, session = loop.run_until_complete(setup())
    base = _origin(runner) + case.prefix
    try:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(script=_script(recorded))
        def one(script: dict[int, Answer]) -> None:
            server.script = script
            server.served = 0
            loop.run_until_complete(_poll_once(case, server, base, session, tally))

        one()
    finally:

        async def teardown() -> None:
            await session.close()
            await runner.cleanup()
            await harness.stop()

        loop.run_until_complete(teardown())
        loop.close()
    assert tally.polls >= EXAMPLES
    print(f"\nfuzz {name}: {json.dumps(tally.__dict__)}")  # the figures docs/reliability.md cites
