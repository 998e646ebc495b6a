"""A running Eventpop simulator on 127.0.0.1 with a hand-moved clock, for the adapter tests
of token rotation, event discovery and bounded steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from notifier.dev.simulators.eventpop import EventpopSimulator, serve
from notifier.providers.eventpop import EventpopProvider, GrantBook
from notifier.providers.http import ProviderHttpClient, RetryPolicy
from tests.fakes import Sleeps

ORGANIZER = 4242
CLIENT_ID, CLIENT_SECRET = "ep-client", "ep-client-secret-55"


@dataclass
class ManualClock:
    """A wall clock that moves only when told to; shared by simulator and adapter."""

    now: datetime = datetime(2026, 4, 27, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    """The simulator, its API base URL and clock, and every client opened on it."""

    sim: EventpopSimulator
    clock: ManualClock
    base_url: str = ""
    runner: web.AppRunner | None = None
    clients: list[ProviderHttpClient] = field(default_factory=list)

    @classmethod
    async def start(cls, *, owner: int | None = ORGANIZER) -> Rig:
        clock = ManualClock()
        sim = EventpopSimulator(clock=clock)
        sim.add_client(CLIENT_ID, CLIENT_SECRET, owner=owner)
        rig = cls(sim, clock)
        rig.runner = await serve(sim, "127.0.0.1", 0)
        rig.base_url = "http://127.0.0.1:" + str(rig.runner.addresses[0][1]) + "/api/public"
        return rig

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        if self.runner is not None:
            await self.runner.cleanup()

    def provider(
        self,
        source: str,
        access_token: str,
        refresh_token: str | None,
        *,
        organizer: int = ORGANIZER,
        event_ids: Sequence[int] = (),
        grants: GrantBook | None = None,
        max_pages: int = 20,
        per_page: int = 5,
        lookback: timedelta = timedelta(0),
    ) -> EventpopProvider:
        http = ProviderHttpClient(self.base_url, policy=RetryPolicy(max_attempts=2), sleep=Sleeps())
        self.clients.append(http)
        refreshable = refresh_token is not None
        return EventpopProvider(
            source,
            organizer,
            access_token,
            event_ids=event_ids,
            base_url=self.base_url,
            client_id=CLIENT_ID if refreshable else None,
            client_secret=CLIENT_SECRET if refreshable else None,
            refresh_token=refresh_token,
            per_page=per_page,
            max_pages=max_pages,
            lookback=lookback,
            http=http,
            grants=grants,
            clock=self.clock,
        )
