"""Health tells the truth. The store is made genuinely full (``PRAGMA max_page_count`` at its
current size: SQLite itself answers SQLITE_FULL, as on a full volume): after repeated failed
commits ``/readyz`` answers 503, and 200 again once commits succeed. A source whose token is
refused (a revoked token, 401) is listed in ``/readyz``'s detail and in the metrics, and the
pod stays ready: one organizer's bad token must not take every organizer offline."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from notifier.config.models import Config
from notifier.dev.broker import free_port
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.model import SourceId
from notifier.observability import health_app
from notifier.service import Runtime, open_runtime, run_service
from notifier.source_health import STORE_FAILURES_UNREADY
from notifier.store.sqlite import SqliteStore
from tests.reliability.harness import Driver, until

GOOD, REVOKED = 2001, 2002


@dataclass
class Served:
    runtime: Runtime
    store: SqliteStore
    port: int
    driver: Driver
    good_token: str
    revoked_token: str


async def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=5)
        ) as response,
    ):
        return response.status, json.loads(await response.text())


async def _metrics(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=5)
        ) as response,
    ):
        return await response.text()


async def _pragma(store: SqliteStore, sql: str) -> None:
    def run() -> None:
        store._conn.execute(sql)

    await store._run(run)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    sim = ShotgunSimulator(page_size=50)
    good_token = "sg." + secrets.token_urlsafe(24)
    revoked_token = "sg." + secrets.token_urlsafe(24)  # never known to the provider: 401
    tickets = sim.seed(GOOD, good_token, 20, rng_seed=8)
    sim_runner = await serve(sim)
    url = "http://127.0.0.1:" + str(sim_runner.addresses[0][1])
    config = Config.model_validate(
        {
            "state": {"path": str(tmp_path / "state.db")},
            "defaults": {"poll_interval": "100ms"},
            "organizers": [
                {
                    "id": name,
                    "name": name,
                    "sources": [
                        {
                            "id": name + "-sg",
                            "provider": "shotgun",
                            "organizer_id": organizer,
                            "token": token,
                            "base_url": url,
                            "requests_per_minute": 100000,
                            "allow_insecure_http": True,
                        }
                    ],
                }
                for name, organizer, token in (
                    ("good", GOOD, good_token),
                    ("revoked", REVOKED, revoked_token),
                )
            ],
        }
    )
    runtime = await open_runtime(config)
    assert isinstance(runtime.store, SqliteStore)
    port = free_port()
    health = web.AppRunner(health_app(alive=runtime.alive, ready=runtime.readiness))
    await health.setup()
    await web.TCPSite(health, "127.0.0.1", port).start()
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(runtime, stop))
    driver = Driver(sim, tickets, rng=random.Random(9))
    try:
        yield Served(runtime, runtime.store, port, driver, good_token, revoked_token)
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
        await health.cleanup()
        await runtime.close()
        await sim_runner.cleanup()


async def test_readiness_fails_on_a_full_store_and_recovers(served: Served) -> None:
    async def ready_with_baseline() -> bool:
        status, _ = await _readyz(served.port)
        return status == 200 and (await served.store.load(_good())).settled

    await until(ready_with_baseline, within=30)
    # Full: no page may be added beyond those the file has now.
    pages = await served.store._run(
        lambda: served.store._conn.execute("PRAGMA page_count").fetchone()[0]
    )
    await _pragma(served.store, f"PRAGMA max_page_count = {pages}")

    async def unready() -> bool:
        for _ in range(30):  # enough new tickets that a commit needs new pages
            served.driver.step()
        status, body = await _readyz(served.port)
        return status == 503 and body["checks"] == {"config": True, "store": False}

    await until(unready, within=60, step=0.3)
    assert served.store.consecutive_write_failures >= STORE_FAILURES_UNREADY
    assert "notifier_store_consecutive_write_failures" in await _metrics(served.port)
    assert served.runtime.alive()  # unready, not dead: the volume may be freed

    await _pragma(served.store, "PRAGMA max_page_count = 1073741823")  # space is back

    async def ready_again() -> bool:
        status, body = await _readyz(served.port)
        return status == 200 and body["store_write_failures"] == 0

    await until(ready_again, within=60, step=0.2)
    assert served.runtime.alive()


async def test_a_revoked_token_is_reported_without_making_the_pod_unready(
    served: Served,
) -> None:
    async def revoked_reported() -> bool:
        status, body = await _readyz(served.port)
        failing = body.get("failing_sources")
        return status == 200 and isinstance(failing, list) and len(failing) == 1

    await until(revoked_reported, within=30)
    status, body = await _readyz(served.port)
    assert status == 200
    assert body["ok"] is True
    failing = body["failing_sources"]
    assert isinstance(failing, list)
    [entry] = failing
    assert isinstance(entry, dict)
    assert entry["source"] == "revoked-sg"
    assert entry["organizer"] == "revoked"
    assert entry["credentials_refused"] is True
    assert entry["status"] == 401
    text = json.dumps(body)
    assert served.revoked_token not in text
    assert served.good_token not in text
    metrics = await _metrics(served.port)
    assert 'notifier_source_credentials_refused{source="revoked-sg"} 1.0' in metrics
    assert 'notifier_source_credentials_refused{source="good-sg"}' not in metrics or (
        'notifier_source_credentials_refused{source="good-sg"} 0.0' in metrics
    )


def _good() -> SourceId:
    return SourceId("good-sg")
