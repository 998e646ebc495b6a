"""An in-process poller over a served Shotgun simulator and a real SQLite store, with a
fast retry policy, for the provider-fault and store-fault scenarios."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.model import SourceId
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.http import ProviderHttpClient, RequestBudget, RetryPolicy
from notifier.providers.shotgun import ShotgunProvider
from notifier.store.sqlite import SqliteStore
from tests.reliability.ground_truth import Delivered
from tests.reliability.harness import ORGANIZER_ID, SOURCE, Driver

FAST_POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, timeout=0.5)
TOKEN = "sg.rig-token-0123456789abcdef"


@dataclass
class Rig:
    sim: ShotgunSimulator
    runner: web.AppRunner
    url: str
    store: SqliteStore
    poller: SourcePoller
    provider: ShotgunProvider
    http: ProviderHttpClient
    driver: Driver

    async def close(self) -> None:
        await self.provider.close()
        await self.http.close()
        await self.store.close()
        await self.runner.cleanup()

    async def cursor(self) -> str | None:
        return (await self.store.load(SourceId(SOURCE))).cursor

    async def outbox(self) -> list[Delivered]:
        """Every committed event, as the checker reads deliveries."""
        import orjson

        rows = await self.store.deliveries(sink="kafka")
        return [
            Delivered(
                id=row.event.id,
                type=row.event.type,
                subject=row.event.subject,
                sequence=int(orjson.loads(row.event.data)["sequence"]),
                data=orjson.loads(row.event.data),
            )
            for row in rows
        ]


def build_poller(store: SqliteStore, provider: ShotgunProvider) -> SourcePoller:
    return SourcePoller(
        SourceSettings(organizer="fabric", source=SourceId(SOURCE), provider="shotgun"),
        provider=provider,
        store=store,
        route=lambda event: ["kafka"],
        clock=lambda: datetime.now(UTC),
    )


async def open_rig(
    tmp_path: Path, *, sim: ShotgunSimulator | None = None, base_url: str | None = None
) -> Rig:
    sim = sim or ShotgunSimulator(page_size=5)
    tickets = sim.seed(ORGANIZER_ID, TOKEN, 12, rng_seed=5)
    runner = await serve(sim)
    host, port = runner.addresses[0][:2]
    url = base_url or f"http://{host}:{port}"
    http = ProviderHttpClient(url, budget=RequestBudget(100_000, 60.0), policy=FAST_POLICY)
    provider = ShotgunProvider(SOURCE, ORGANIZER_ID, TOKEN, base_url=url, http=http)
    store = await SqliteStore(tmp_path / "state.db").open()
    poller = build_poller(store, provider)
    await poller.poll_once()  # the baseline
    driver = Driver(sim, tickets, rng=random.Random(9))
    return Rig(sim, runner, f"http://{host}:{port}", store, poller, provider, http, driver)
