"""The inbound webhook server over real HTTP on 127.0.0.1: verify, wake, answer fast."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from notifier.push.server import IngestRoute, ingest_app
from notifier.push.signatures import (
    NUWEB_HEADER,
    TICKETTAILOR_HEADER,
    nuweb_header,
    signature_check,
    tickettailor_header,
)
from notifier.push.triggers import Trigger

SECRET = b"push-secret-for-tests"
BODY = b'{"attendee_check_in": {"scans": [{"item": {"id": 31}}]}}'


class Endpoint:
    def __init__(self, base: str, triggers: dict[str, Trigger]) -> None:
        self.base = base
        self.triggers = triggers

    async def post(
        self, source: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.base}/ingest/{source}", data=body, headers=headers) as response,
        ):
            return response.status, await response.read()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    triggers = {"nuweb-main": Trigger(), "tt-main": Trigger()}
    routes = {
        "nuweb-main": IngestRoute(
            "nuweb", signature_check("nuweb", SECRET), triggers["nuweb-main"]
        ),
        "tt-main": IngestRoute(
            "tickettailor", signature_check("tickettailor", SECRET), triggers["tt-main"]
        ),
    }
    runner = web.AppRunner(ingest_app(routes, max_body=4096), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", triggers)
    finally:
        await runner.cleanup()


async def test_a_signed_nuweb_delivery_wakes_its_source(endpoint: Endpoint) -> None:
    status, _ = await endpoint.post("nuweb-main", BODY, {NUWEB_HEADER: nuweb_header(SECRET, BODY)})
    assert status == 202
    assert endpoint.triggers["nuweb-main"].pending
    assert not endpoint.triggers["tt-main"].pending


async def test_a_signed_tickettailor_delivery_wakes_its_source(endpoint: Endpoint) -> None:
    header = tickettailor_header(SECRET, BODY, at=int(time.time()))
    status, _ = await endpoint.post("tt-main", BODY, {TICKETTAILOR_HEADER: header})
    assert status == 202
    assert endpoint.triggers["tt-main"].received == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {NUWEB_HEADER: "0" * 64},
        {NUWEB_HEADER: nuweb_header(b"another-secret", BODY)},
        {NUWEB_HEADER: nuweb_header(SECRET, BODY + b" ")},
    ],
    ids=["missing", "zeros", "other-secret", "other-body"],
)
async def test_a_bad_signature_is_401_without_a_reason(
    endpoint: Endpoint, headers: dict[str, str]
) -> None:
    status, body = await endpoint.post("nuweb-main", BODY, headers)
    assert (status, body) == (401, b"")
    assert endpoint.triggers["nuweb-main"].received == 0


async def test_an_expired_tickettailor_signature_is_refused(endpoint: Endpoint) -> None:
    header = tickettailor_header(SECRET, BODY, at=int(time.time()) - 301)
    status, _ = await endpoint.post("tt-main", BODY, {TICKETTAILOR_HEADER: header})
    assert status == 401
    assert not endpoint.triggers["tt-main"].pending


async def test_a_signature_for_one_source_does_not_open_another(endpoint: Endpoint) -> None:
    """Nuweb's scheme on the Ticket Tailor route: refused (each route checks its own)."""
    status, _ = await endpoint.post("tt-main", BODY, {NUWEB_HEADER: nuweb_header(SECRET, BODY)})
    assert status == 401


async def test_an_oversized_body_is_refused_declared_or_streamed(endpoint: Endpoint) -> None:
    big = b"x" * 5000
    status, _ = await endpoint.post("nuweb-main", big, {NUWEB_HEADER: nuweb_header(SECRET, big)})
    assert status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b"y" * 1000

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{endpoint.base}/ingest/nuweb-main", data=chunks()) as response,
    ):
        assert response.status == 413
    assert endpoint.triggers["nuweb-main"].received == 0


async def test_an_unknown_source_is_404_and_not_logged(endpoint: Endpoint) -> None:
    with capture_logs() as logs:
        status, body = await endpoint.post("nope", BODY, {NUWEB_HEADER: nuweb_header(SECRET, BODY)})
    assert (status, body) == (404, b"")
    assert logs == []


async def test_a_flood_of_valid_deliveries_is_one_pending_wake_up(endpoint: Endpoint) -> None:
    """200 deliveries at once: every one answered 2xx, all coalesced into one wake-up."""
    headers = {NUWEB_HEADER: nuweb_header(SECRET, BODY)}
    statuses = await asyncio.gather(
        *(endpoint.post("nuweb-main", BODY, headers) for _ in range(200))
    )
    assert {status for status, _ in statuses} == {202}
    trigger = endpoint.triggers["nuweb-main"]
    assert (trigger.received, trigger.coalesced) == (200, 199)
    assert trigger.pending
    assert trigger.take() == ()  # Nuweb's deliveries name nothing to read
    assert not trigger.pending


async def test_only_post_is_served(endpoint: Endpoint) -> None:
    """Nuweb can send GET with the payload unsigned in the query: never accepted."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{endpoint.base}/ingest/nuweb-main?payload=x") as response,
    ):
        assert response.status == 405
