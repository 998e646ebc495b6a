"""Figure 2's push rows: detection latency when the provider's webhook wakes the poll.

Each run is the real service (``open_runtime`` + ``run_service``) on one source polled
every 2 s (the figure's cadence, also in the live window), its inbound endpoint served by
``start_ingest_server(ingest_routes(runtime))``, the simulator sending its own signed
webhooks there (``WebhookSender``); the same run with push off is the comparison. Latency
= arrival (Kafka record read by a consumer, webhook 2xx at the verifying receiver) - the
time of the change in the simulator.

- Nuweb: check-ins at ``--rate`` per minute, each sending "Attendee check in". First with
  the account's budget raised (as the figure's Shotgun source's is), so that the rows show
  what push costs in requests rather than where a budget caps it; then both runs again
  under the documented budget (60 requests a minute per company).
- Ticket Tailor sends no check-in webhook (docs/providers.md), so its rows time *voids*
  (``ISSUED_TICKET.UPDATED``, read through the hint), at ``--tt-rate`` per minute under
  the documented budget (5,000 requests / 30 min), against the sweep alone (push off).

Requests per minute are those the simulator served while the changes were made; bursts
are the deliveries that found no wake-up pending (``Trigger.received - coalesced``), each
of which led to one poll.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from bench.arrivals import Scans, consume, create_topic, make_changes, wait_until
from bench.delivery import new_secret
from notifier.config.models import Config
from notifier.dev.receiver import Receiver
from notifier.dev.simulators import nuweb, tickettailor
from notifier.dev.simulators.webhook_sender import Scheme, WebhookSender
from notifier.providers.tickettailor import sweep_latency
from notifier.push.server import start_ingest_server
from notifier.service import Runtime, ingest_routes, open_runtime, run_service

INTERVAL = 2.0  # figure 2's poll interval
TARGET_P99 = 0.5
PUSH_SECRET = "bench-push-secret"  # noqa: S105 - a fake webhook secret
NUWEB_COMPANY, NUWEB_EVENT, NUWEB_TOKEN = 12, 5, "bench-nuweb-token"
NUWEB_BUDGET = 100_000  # requests a minute: not the cap under test (see the module doc)
TT_KEY = "sk_bench_push"
STEADY_REQUESTS = 3  # in one poll interval: the steady state, no long read under way


class PushSetup(Protocol):
    """One provider's seeded simulator and the change the rows time."""

    name: str
    scheme: Scheme
    event_type: str  # the event the change produces
    ids: list[str]

    async def serve(self) -> web.AppRunner: ...
    def source(self, base_url: str) -> dict[str, Any]: ...
    def change(self, ticket: str) -> None: ...
    def served(self) -> int: ...
    def send_webhooks(self, sender: WebhookSender | None) -> None: ...


class NuwebPush:
    """One live event of ``tickets`` entry tickets; the change is a check-in."""

    name, event_type = "nuweb", "ticket.checked_in"
    scheme: Scheme = "nuweb"

    def __init__(self, tickets: int, budget: int | None = None) -> None:
        # ``budget``: the account's requests a minute, in the simulator's limiter and in
        # the source's config; None raises it out of the way.
        self.budget = budget
        # Sold a day ago, as in a steady state (figure 1 seeds the same way): the minutely
        # order-items read then finds what changed since, not every sale of the setup.
        self._ago = timedelta(days=1)
        self.sim = nuweb.NuwebSimulator(
            rate_limit=budget or 10**9, clock=lambda: datetime.now(UTC) - self._ago
        )
        self.sim.add_company(NUWEB_COMPANY, NUWEB_TOKEN)
        now = datetime.now(UTC)
        start, end = now - timedelta(hours=1), now + timedelta(hours=11)
        self.sim.add_event(NUWEB_COMPANY, NUWEB_EVENT, start=start, end=end)
        kind = self.sim.add_ticket_type(NUWEB_EVENT, total_stock=tickets)
        self.ids = [str(self.sim.sell(kind)) for _ in range(tickets)]
        self._ago = timedelta(0)

    async def serve(self) -> web.AppRunner:
        return await nuweb.serve(self.sim, "127.0.0.1", 0)

    def source(self, base_url: str) -> dict[str, Any]:
        return {
            "provider": "nuweb",
            "token": NUWEB_TOKEN,
            "company_id": NUWEB_COMPANY,
            "event_ids": [NUWEB_EVENT],
            "base_url": base_url,
            "requests_per_minute": self.budget or NUWEB_BUDGET,
        }

    def change(self, ticket: str) -> None:
        self.sim.scan_in(int(ticket))

    def served(self) -> int:
        return self.sim.requests_served

    def send_webhooks(self, sender: WebhookSender | None) -> None:
        self.sim.webhooks = sender


class TicketTailorPush:
    """One live event of ``tickets`` one-ticket orders; the change is a void."""

    name, event_type = "tickettailor", "ticket.voided"
    scheme: Scheme = "tickettailor"

    def __init__(self, tickets: int) -> None:
        self.sim = tickettailor.TicketTailorSimulator()  # the documented rate limit
        self.sim.add_box_office(TT_KEY)
        now = datetime.now(UTC)
        event = self.sim.add_event(now - timedelta(hours=1), now + timedelta(hours=4))
        self.ids = [self.sim.create_order(event)[1][0] for _ in range(tickets)]

    async def serve(self) -> web.AppRunner:
        return await tickettailor.serve(self.sim)

    def source(self, base_url: str) -> dict[str, Any]:
        # No requests_per_minute: the documented 5,000 requests / 30 min.
        return {"provider": "tickettailor", "api_key": TT_KEY, "base_url": base_url}

    def change(self, ticket: str) -> None:
        self.sim.void(ticket)

    def served(self) -> int:
        return self.sim.requests_served

    def send_webhooks(self, sender: WebhookSender | None) -> None:
        self.sim.webhooks = sender


@dataclass
class PushRun:
    """One run's arrivals and what it cost the provider while the changes were made."""

    scans: Scans
    seconds: float
    requests: int
    received: int = 0  # verified deliveries
    coalesced: int = 0  # deliveries that found a wake-up pending

    def per_minute(self, count: float) -> float:
        return count / self.seconds * 60

    @property
    def requests_per_minute(self) -> float:
        return self.per_minute(self.requests)

    @property
    def bursts_per_minute(self) -> float:
        return self.per_minute(self.received - self.coalesced)


def _config(
    state: Path, bootstrap: str, topic: str, source: dict[str, Any], webhook: str, secret: str
) -> Config:
    return Config.model_validate(
        {
            "state": {"path": str(state)},
            "kafka": {"bootstrap_servers": [bootstrap], "topic": topic},
            "webhooks": [
                {"name": "doors", "url": webhook, "allow_insecure_http": True, "secret": secret}
            ],
            "organizers": [{"id": "bench", "name": "Bench", "sources": [source]}],
        }
    )


async def measure(
    setup: PushSetup,
    bootstrap: str,
    label: str,
    *,
    push: bool,
    rate: float,
    seconds: float,
    drain: float,
) -> PushRun:
    """Make ``rate`` changes a minute for ``seconds``, then wait up to ``drain`` s for them."""
    source_id = f"{setup.name}-{label}"
    topic = f"bench.latency.{source_id}"
    scans = Scans()
    secret = new_secret()

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == setup.event_type:
            scans.arrived("webhook", str(event["subject"]))

    receiver = Receiver(secret, on_event=on_event)
    runner = await setup.serve()
    await create_topic(bootstrap, topic)
    base_url = "http://127.0.0.1:" + str(runner.addresses[0][1])
    source = setup.source(base_url) | {
        "id": source_id,
        "allow_insecure_http": True,
        "poll_interval": f"{INTERVAL:g}s",
        "live_poll_interval": f"{INTERVAL:g}s",
    }
    if push:
        source["push"] = {"secret": PUSH_SECRET}
    stop, consumer_stop = asyncio.Event(), asyncio.Event()
    ingest: web.AppRunner | None = None
    sender: WebhookSender | None = None
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        webhook = await receiver.start()
        config = _config(Path(tmp) / "state.db", bootstrap, topic, source, webhook, secret)
        runtime = await open_runtime(config)
        service = asyncio.create_task(run_service(runtime, stop))
        types = [setup.event_type]
        consumer = asyncio.create_task(consume(bootstrap, topic, scans, consumer_stop, types=types))
        try:
            (scheduled,) = runtime.sources
            await wait_until(lambda: scheduled.poller.settled, 60)
            await _steady(setup)
            if push:
                ingest, sender = await _ingest(runtime, setup, source_id)
            trigger = scheduled.trigger
            received, coalesced, served = trigger.received, trigger.coalesced, setup.served()
            started = time.monotonic()
            await make_changes(setup.change, setup.ids, scans, rate=rate, seconds=seconds)
            await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
            run = PushRun(
                scans,
                seconds,
                setup.served() - served,
                trigger.received - received,
                trigger.coalesced - coalesced,
            )
            await wait_until(lambda: scans.complete(["kafka", "webhook"]), drain)
        finally:
            stop.set()
            await service
            consumer_stop.set()
            await consumer
            setup.send_webhooks(None)
            if sender is not None:
                await sender.close()
            if ingest is not None:
                await ingest.cleanup()
            await runtime.close()
            await receiver.stop()
            await runner.cleanup()
    return run


async def _steady(setup: PushSetup, within: float = 90) -> None:
    """Until the baseline's long reads are done: at most ``STEADY_REQUESTS`` in an interval.

    ``settled`` says the first read is committed, but its companions (Nuweb's order items,
    100 pages at 10,000 tickets) may still run; changes made meanwhile would time them.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = setup.served()
        await asyncio.sleep(INTERVAL)
        if setup.served() - before <= STEADY_REQUESTS:
            return


async def _ingest(
    runtime: Runtime, setup: PushSetup, source_id: str
) -> tuple[web.AppRunner, WebhookSender]:
    """Serve the inbound endpoint and have the simulator send its webhooks to it."""
    ingest = await start_ingest_server(ingest_routes(runtime), host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{ingest.addresses[0][1]}/ingest/{source_id}"
    sender = WebhookSender(url, scheme=setup.scheme, secret=PUSH_SECRET.encode())
    setup.send_webhooks(sender)
    return ingest, sender


@dataclass(frozen=True, slots=True)
class Comparison:
    """One provider's run with push, the same with push off, and what each cost."""

    provider: str
    change: str  # what is timed: "scan", "void"
    push: PushRun
    off: PushRun


async def nuweb_runs(
    bootstrap: str, tickets: int, rate: float, seconds: float, *, budget: int, smoke: bool
) -> tuple[Comparison, Comparison]:
    """Push and push off with the budget raised, then both again under ``budget``.

    The budgeted runs follow as many tickets as they scan: their baseline read must fit
    the budget too (100 tickets a request).
    """
    scans = max(int(seconds * rate / 60), 1)
    timing = _timing(rate, seconds)
    runs = [
        measure(NuwebPush(tickets), bootstrap, "push", push=True, **timing),
        measure(NuwebPush(tickets), bootstrap, "poll", push=False, **timing),
        measure(NuwebPush(scans, budget), bootstrap, "budget-push", push=True, **timing),
        measure(NuwebPush(scans, budget), bootstrap, "budget-poll", push=False, **timing),
    ]
    push, off, budget_push, budget_off = await _run(runs, concurrently=smoke)
    return (
        Comparison("nuweb", "scan", push, off),
        Comparison(f"nuweb ({budget}/min budget)", "scan", budget_push, budget_off),
    )


async def tickettailor_runs(
    bootstrap: str, tickets: int, rate: float, seconds: float, *, smoke: bool
) -> Comparison:
    # Push off, a void waits for the next sweep, whose cadence the budget sets.
    drain = sweep_latency(tickets, poll_interval=timedelta(seconds=INTERVAL)).total_seconds()
    runs = [
        measure(TicketTailorPush(tickets), bootstrap, "push", push=True, **_timing(rate, seconds)),
        measure(
            TicketTailorPush(tickets),
            bootstrap,
            "sweep",
            push=False,
            **_timing(rate, seconds, drain + 10),
        ),
    ]
    push, off = await _run(runs, concurrently=smoke)
    return Comparison("tickettailor", "void", push, off)


async def all_runs(
    bootstrap: str,
    nuweb_size: tuple[int, float],
    tt_size: tuple[int, float],
    seconds: float,
    *,
    budget: int,
    smoke: bool,
) -> tuple[tuple[Comparison, Comparison], Comparison]:
    """Nuweb's runs, then Ticket Tailor's (``(tickets, rate)`` each); at once in a smoke run."""
    (tickets, rate), (tt_tickets, tt_rate) = nuweb_size, tt_size
    nuweb_all = nuweb_runs(bootstrap, tickets, rate, seconds, budget=budget, smoke=smoke)
    tt = tickettailor_runs(bootstrap, tt_tickets, tt_rate, seconds, smoke=smoke)
    if smoke:
        return await asyncio.gather(nuweb_all, tt)
    return await nuweb_all, await tt


def _timing(rate: float, seconds: float, drain: float = 15) -> dict[str, float]:
    return {"rate": rate, "seconds": seconds, "drain": drain}


async def _run(runs: list[Coroutine[Any, Any, PushRun]], *, concurrently: bool) -> list[PushRun]:
    """One after the other (measuring), or all at once (a smoke run only proves they work)."""
    if concurrently:
        return list(await asyncio.gather(*runs))
    return [await run for run in runs]
