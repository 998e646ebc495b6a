"""Scenario 4, provider faults: 429s, 5xx bursts, timeouts, malformed JSON, a failed page in
the middle of a read, a page repeating its next link, a next link to a foreign host (read at home),
an empty 200 for a wrong token, skewed clocks. Each fault either is absorbed by the client's
retries or fails the poll loudly with the cursor left where it was; the next poll recovers,
and the committed events match the ground truth exactly (no loss, no phantom)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import structlog
from aiohttp import ClientSession, web

from notifier.dev.simulators.faults import Fault
from notifier.dev.simulators.shotgun import ShotgunSimulator
from notifier.errors import ProviderError
from notifier.providers.http import ProviderHttpClient, RequestBudget
from notifier.providers.shotgun import ShotgunProvider
from notifier.store.sqlite import SqliteStore
from tests.reliability.ground_truth import check
from tests.reliability.harness import ORGANIZER_ID, SOURCE, assert_no_secrets
from tests.reliability.rig import FAST_POLICY, TOKEN, Rig, build_poller, open_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    built = await open_rig(tmp_path)
    yield built
    await built.close()


async def _fails_cleanly(rig: Rig, changes: int = 3) -> str:
    """Make changes, poll once expecting a ProviderError; the cursor must not move."""
    for _ in range(changes):
        rig.driver.step()
    before = await rig.cursor()
    with pytest.raises(ProviderError) as failure:
        await rig.poller.poll_once()
    assert await rig.cursor() == before
    return str(failure.value)


SURVIVABLE: dict[str, Callable[[], list[Fault]]] = {
    "429 with Retry-After": lambda: [Fault.status(429, retry_after=0)],
    "one 503": lambda: [Fault.status(503)],
    "a timeout": lambda: [Fault.delay(1.0)],
    "one malformed body": lambda: [Fault.malformed_json()],
}
FATAL_FOR_ONE_POLL: dict[str, Callable[[], list[Fault]]] = {
    "a 5xx burst": lambda: [Fault.status(500) for _ in range(3)],
    "timeouts on every attempt": lambda: [Fault.delay(1.0) for _ in range(3)],
    "malformed JSON on every attempt": lambda: [Fault.malformed_json() for _ in range(3)],
    "page 2 failing (a truncated read)": lambda: [Fault.fail_on_page(2) for _ in range(3)],
    "a 401": lambda: [Fault.status(401)],
}


@pytest.mark.parametrize("name", list(SURVIVABLE))
async def test_a_transient_fault_is_retried_within_the_poll(rig: Rig, name: str) -> None:
    """429/503/timeout/garbage once: the client retries and the poll commits everything."""
    rig.sim.faults.push(*SURVIVABLE[name]())
    for _ in range(8):
        rig.driver.step()
    await rig.poller.poll_once()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)


@pytest.mark.parametrize("name", list(FATAL_FOR_ONE_POLL))
async def test_a_persistent_fault_fails_the_poll_and_the_next_recovers(
    rig: Rig, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The poll raises, nothing is committed, the cursor stays; the next poll gets it all."""
    rig.sim.faults.push(*FATAL_FOR_ONE_POLL[name]())
    message = await _fails_cleanly(rig, changes=8)
    assert message  # a clear, non-empty error
    assert await rig.outbox() == []
    rig.sim.faults.clear()
    await rig.poller.poll_once()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)
    captured = capsys.readouterr()
    assert_no_secrets([("output", captured.out + captured.err), ("error", message)], [TOKEN])


async def test_a_next_link_to_a_foreign_host_is_read_at_home_and_the_token_stays_home(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pagination.next`` on another origin: only its cursor is used, the page is read
    from the configured origin (nothing listens on the foreign one), nothing is lost."""
    rig.sim.next_origin = "http://127.0.0.2:9"
    for _ in range(8):
        rig.driver.step()
    await rig.poller.poll_once()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)
    assert all(seen.bearer and "token" not in seen.query for seen in rig.sim.seen)
    captured = capsys.readouterr()
    assert_no_secrets([("output", captured.out + captured.err)], [TOKEN])


async def test_a_page_repeating_its_next_link_fails_instead_of_looping(
    rig: Rig, tmp_path: Path
) -> None:
    """A proxy answers page 2 with page 2's own link as ``next``: the read stops, loudly."""
    repeat = {"on": True}

    async def proxy(request: web.Request) -> web.Response:
        async with (
            ClientSession() as session,
            session.get(
                rig.url + "/tickets",
                params=request.query,
                headers={"Authorization": request.headers.get("Authorization", "")},
            ) as upstream,
        ):
            body = orjson.loads(await upstream.read())
        link = body["pagination"]["next"]
        if link:  # keep the reader on the proxy's origin
            body["pagination"]["next"] = link.replace(rig.url, str(request.url.origin()))
        if repeat["on"] and "after" in request.query and link:
            body["pagination"]["next"] = str(request.url)
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/tickets", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    proxied = f"http://{host}:{port}"
    http = ProviderHttpClient(proxied, budget=RequestBudget(100_000, 60.0), policy=FAST_POLICY)
    provider = ShotgunProvider(SOURCE, ORGANIZER_ID, TOKEN, base_url=proxied, http=http)
    poller = build_poller(rig.store, provider)
    try:
        for _ in range(15):
            rig.driver.step()
        before = await rig.cursor()
        with pytest.raises(ProviderError, match="repeated a next link"):
            await poller.poll_once()
        assert await rig.cursor() == before
        repeat["on"] = False
        await poller.poll_once()
    finally:
        await http.close()
        await runner.cleanup()
    check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)


async def test_a_wrong_token_answering_an_empty_200_is_reported(tmp_path: Path) -> None:
    """Another organizer's valid token gets 200 with no tickets: a ``source_empty`` warning,
    no events, and no token in the log."""
    sim = ShotgunSimulator(page_size=5)
    rig = await open_rig(tmp_path, sim=sim)
    sim.add_organizer(999, "sg.other-organizer-token")
    http = ProviderHttpClient(rig.url, budget=RequestBudget(100_000, 60.0), policy=FAST_POLICY)
    provider = ShotgunProvider(
        "wrong", ORGANIZER_ID, "sg.other-organizer-token", base_url=rig.url, http=http
    )
    store = await SqliteStore(tmp_path / "wrong.db").open()
    try:
        with structlog.testing.capture_logs() as logs:
            report = await build_poller(store, provider).poll_once()
    finally:
        await http.close()
        await store.close()
        await rig.close()
    assert report.events == []
    assert report.records == 0
    assert any(entry["event"] == "source_empty" for entry in logs)
    assert "sg.other-organizer-token" not in repr(logs)


@pytest.mark.parametrize("skew", [timedelta(hours=6), timedelta(hours=-6)])
async def test_skewed_provider_clock_changes_nothing(tmp_path: Path, skew: timedelta) -> None:
    """Provider timestamps hours ahead of or behind ours: every change once, nothing else."""
    sim = ShotgunSimulator(page_size=5, clock=lambda: datetime.now(UTC) + skew)
    rig = await open_rig(tmp_path, sim=sim)
    try:
        for _ in range(3):
            for _ in range(6):
                rig.driver.step()
            await rig.poller.poll_once()
        await rig.poller.poll_once()
        check(rig.driver.truth, await rig.outbox(), channel="outbox", ordered_arrival=True)
    finally:
        await rig.close()
