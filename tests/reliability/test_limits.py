"""Bounded by construction: waits a provider's headers impose are capped and absurd ones
ignored; response bodies are capped after decompression (a gzip bomb is refused); a deeply
nested page and an unparseable next link are page errors; and an exception that is not ours
(an adapter's bug) stays with its source. Every answer comes from a real aiohttp server on
127.0.0.1 read through the real client."""

from __future__ import annotations

import asyncio
import gzip
import math
import resource
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from notifier.config.models import Config
from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.providers.base import PollResult
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from notifier.providers.nuweb import RatePacer
from notifier.providers.tickettailor import rate_limit_pause
from notifier.providers.waits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_WAIT,
    configure_limits,
    parse_retry_after,
)
from notifier.service import open_runtime, run_service
from notifier.store.memory import MemoryStore
from tests.fakes import Sleeps
from tests.reliability.harness import until

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def default_limits() -> Iterator[None]:
    yield
    configure_limits(max_header_wait=DEFAULT_MAX_HEADER_WAIT, max_body_bytes=DEFAULT_MAX_BODY_BYTES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e14", DEFAULT_MAX_HEADER_WAIT),  # OverflowError in a timedelta before
        ("1e9", DEFAULT_MAX_HEADER_WAIT),  # 31 years before
        ("1e400", None),  # inf
        ("inf", None),
        ("-inf", None),
        ("nan", None),
        ("-5", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", DEFAULT_MAX_HEADER_WAIT),
        ("120", 120.0),
    ],
)
def test_a_stated_wait_is_capped_and_absurd_ones_are_ignored(
    value: str, expected: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_the_cap_is_configurable() -> None:
    configure_limits(max_header_wait=60.0)
    assert parse_retry_after("1e9", now=NOW) == 60.0
    assert rate_limit_pause(
        {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "1e9"}, now=NOW
    ) == pytest.approx(60.0)


@pytest.mark.parametrize("value", ["1e14", "1e9", "1e400", "nan", "-3"])
async def test_nuweb_pacing_never_overflows_nor_waits_years(value: str) -> None:
    """``X-Available-In-Seconds: 1e14`` raised OverflowError; 1e9 waited 31 years."""
    sleeps = Sleeps()
    pacer = RatePacer(clock=lambda: NOW, sleep=sleeps)
    pacer.observe({"X-Remaining-Requests": "0", "X-Available-In-Seconds": value})
    await pacer.wait_turn()
    assert all(math.isfinite(delay) for delay in sleeps.delays)
    assert max(sleeps.delays, default=0.0) <= DEFAULT_MAX_HEADER_WAIT


@pytest.mark.parametrize("header", ["Retry-After", "X-Available-In-Seconds"])
async def test_a_429_stating_years_waits_at_most_the_cap(header: str) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response({}, status=429, headers={header: "1e9"})

    async with _served(handler) as url:
        sleeps = Sleeps()
        policy = RetryPolicy(
            max_attempts=2, max_retry_after=10_000, retry_after_headers=("Retry-After", header)
        )
        client = ProviderHttpClient(url, policy=policy, sleep=sleeps)
        try:
            with pytest.raises(RetriableProviderError):
                await client.fetch_json("/x")
        finally:
            await client.close()
    assert sleeps.delays == [DEFAULT_MAX_HEADER_WAIT]


async def test_a_gzip_bomb_is_refused_at_the_cap_without_inflating_it() -> None:
    """64 MiB of zeros gzip to 64 KiB; with a 1 MiB cap the read stops at the cap."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024

    async def handler(_: web.Request) -> web.Response:
        return web.Response(
            body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    configure_limits(max_body_bytes=1024 * 1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with _served(handler) as url:
        client = ProviderHttpClient(url, policy=RetryPolicy(max_attempts=1))
        try:
            with pytest.raises(FatalProviderError, match="limit"):
                await client.fetch_json("/tickets")
        finally:
            await client.close()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 32 * 1024  # never held the 64 MiB it inflates to


async def test_a_body_over_the_cap_is_refused_and_one_under_it_is_read() -> None:
    big = b'{"data": "' + b"x" * 4096 + b'"}'

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=big, content_type="application/json")

    async with _served(handler) as url:
        client = ProviderHttpClient(url, policy=RetryPolicy(max_attempts=1))
        try:
            configure_limits(max_body_bytes=4096)
            with pytest.raises(FatalProviderError, match="4096-byte limit"):
                await client.fetch_json("/x")
            configure_limits(max_body_bytes=8192)
            assert (await client.fetch_json("/x")).payload == {"data": "x" * 4096}
        finally:
            await client.close()


async def test_a_page_nested_too_deeply_for_the_decoder_is_a_page_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000

    def recursive(body: bytes) -> object:  # an adapter's decoder that walks the structure
        def depth(value: object) -> int:
            return 1 + max((depth(v) for v in value), default=0) if isinstance(value, list) else 0

        import json

        return depth(json.loads(body))

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=deep, content_type="application/json")

    async with _served(handler) as url:
        client = ProviderHttpClient(url, policy=RetryPolicy(max_attempts=1))
        try:
            with pytest.raises(FatalProviderError, match="nested too deeply"):
                await client.fetch_json("/x", decode=recursive)
        finally:
            await client.close()


@pytest.mark.parametrize(
    "link", ["https://host\\@evil.com/", "http://[::1", "http://127.0.0.1:99999/x"]
)
def test_an_unparseable_next_link_is_a_page_error(link: str) -> None:
    client = ProviderHttpClient("https://api.example.com/v1")
    with pytest.raises(FatalProviderError, match="not a valid URL"):
        client.resolve(link)


class BuggyProvider:
    """A provider adapter with a bug: an exception nobody translated (not a NotifierError)."""

    reconciles_itself = True
    name = "buggy"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, cursor: str | None) -> PollResult:
        self.polls += 1
        raise ZeroDivisionError("a bug in an adapter")

    async def close(self) -> None:
        pass


class SteadyProvider:
    reconciles_itself = True
    name = "steady"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, cursor: str | None) -> PollResult:
        self.polls += 1
        return PollResult(tickets=[], cursor=str(self.polls))

    async def close(self) -> None:
        pass


async def test_an_exception_that_is_not_ours_stays_with_its_source(tmp_path: Path) -> None:
    """The buggy source backs off (capped exponential); the other polls on; no task dies."""
    config = Config.model_validate(
        {
            "defaults": {"poll_interval": "50ms"},
            "organizers": [
                {
                    "id": org,
                    "name": org,
                    "sources": [
                        {
                            "id": org + "-src",
                            "provider": "shotgun",
                            "organizer_id": 1,
                            "token": "t0ken-" + org,
                            "base_url": "http://127.0.0.1:9",
                            "allow_insecure_http": True,
                        }
                    ],
                }
                for org in ("buggy", "steady")
            ],
        }
    )
    runtime = await open_runtime(config, store=MemoryStore())
    buggy, steady = BuggyProvider(), SteadyProvider()
    runtime.sources[0].provider = buggy
    runtime.sources[0].poller._provider = buggy
    runtime.sources[1].provider = steady
    runtime.sources[1].poller._provider = steady
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(runtime, stop))
    try:
        await until(lambda: _at_least(steady, 20), within=30)
        assert runtime.alive()
        failing = runtime.sources[0]
        assert failing.failures >= 2
        assert failing.failing is not None
        assert failing.failing.error == "ZeroDivisionError"
        # Backed off: 50 ms doubling per failure, so far fewer polls than the steady one.
        assert buggy.polls < steady.polls / 2
        readiness = await runtime.readiness()
        assert readiness.ok
        failing_sources = readiness.detail["failing_sources"]
        assert isinstance(failing_sources, list)
        assert [entry["source"] for entry in failing_sources] == ["buggy-src"]
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
        await runtime.close()


async def _at_least(provider: SteadyProvider, polls: int) -> bool:
    return provider.polls >= polls


class _served:
    """An aiohttp server on 127.0.0.1 answering every GET with ``handler``."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
        self._handler = handler
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return "http://127.0.0.1:" + str(self._runner.addresses[0][1])

    async def __aexit__(self, *_exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
