"""Scheduling: the poll loops (one per source, or per leased source on PostgreSQL), the
dispatcher, retention and store gauges as tasks until stopped; and ``once``. What they run
is built by ``notifier.wiring``."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TYPE_CHECKING

import structlog

from notifier.config.models import Config
from notifier.errors import ConfigError
from notifier.membership import LeaseKeeper, run_leased
from notifier.observability import (
    DETECTION_LATENCY,
    EVENTS,
    LAST_SUCCESS,
    POLLS,
    RECORDS,
    health_app,
)
from notifier.once import OnceSummary
from notifier.poller import PollReport
from notifier.progress import reporting
from notifier.providers.base import HintedReads
from notifier.providers.http import BACKGROUND
from notifier.push.server import start_ingest_server
from notifier.retention import retention_loop, retire_ended_events
from notifier.schedule import poll_wait, reconcile_due
from notifier.source_health import (
    observe_failure,
    observe_success,
    watch_store,
)
from notifier.store.base import DeliveryStatus
from notifier.store.postgres import PostgresStore
from notifier.wiring import (
    KAFKA_SINK as KAFKA_SINK,
    Runtime as Runtime,
    ScheduledSource as ScheduledSource,
    build_sinks as build_sinks,
    ingest_routes as ingest_routes,
    open_runtime as open_runtime,
    utc_now,
    wake_relay,
    webhook_sink_name as webhook_sink_name,
)

if TYPE_CHECKING:  # aiohttp is imported when the servers start
    from aiohttp import web

log = structlog.get_logger(__name__)


async def poll_and_observe(
    scheduled: ScheduledSource, *, dry_run: bool = False, full: bool = False
) -> PollReport:
    """One poll with its metrics and logs bound to the source; errors propagate."""
    settings = scheduled.poller.settings
    with structlog.contextvars.bound_contextvars(
        source=settings.source, organizer=settings.organizer, provider=settings.provider
    ):
        try:
            report = await scheduled.poller.poll_once(dry_run=dry_run, full=full)
        except Exception as exc:
            _observe_failure(scheduled, exc)
            raise
    observe_success(settings.source)
    scheduled.failing = None
    scheduled.windows.update(report.event_windows)
    POLLS.labels(settings.source, "ok").inc()
    RECORDS.labels(settings.source).inc(report.records)
    LAST_SUCCESS.labels(settings.source).set(time.time())
    for event in report.events:
        EVENTS.labels(event.type).inc()
    if not report.baseline:  # a baseline's "changes" are history, not detections
        committed = DETECTION_LATENCY.labels("committed", "")
        for seconds in report.latencies:
            committed.observe(seconds)
    return report


def _observe_failure(scheduled: ScheduledSource, exc: Exception) -> None:
    scheduled.failing = observe_failure(
        exc,
        source=scheduled.poller.settings.source,
        failures=scheduled.failures,
        previous=scheduled.failing,
        now=utc_now(),
    )


async def run_once(runtime: Runtime) -> int:
    """Poll every source once and deliver what is due: the exit code of docs/design.md §6a."""
    return (await once_summary(runtime)).exit_code


async def once_summary(runtime: Runtime) -> OnceSummary:
    """Poll every source once (to the end of a capped read), deliver what is due, count."""
    failed = committed = 0
    for scheduled in runtime.sources:
        try:
            while True:
                report = await poll_and_observe(scheduled)
                committed += len(report.events)
                if not report.more:
                    break
        except Exception:  # logged and counted by poll_and_observe; the others still run
            failed += 1
    await runtime.dispatcher.drain()
    return await _owed(runtime, committed=committed, failed=failed)


async def _owed(runtime: Runtime, *, committed: int, failed: int) -> OnceSummary:
    # Every configured sink is listed, owing nothing or not, then any other sink still owed
    # (an endpoint removed from the config keeps its deliveries in the outbox).
    names = [sink.name for sink in runtime.sinks]
    counts: dict[DeliveryStatus, dict[str, int]] = {}
    for status in (DeliveryStatus.PENDING, DeliveryStatus.PARKED):
        counts[status] = dict.fromkeys(names, 0)
        for delivery in await runtime.store.deliveries(status=status):
            counts[status][delivery.sink] = counts[status].get(delivery.sink, 0) + 1
    pending, parked = counts[DeliveryStatus.PENDING], counts[DeliveryStatus.PARKED]
    for sink in [*pending, *parked]:
        pending.setdefault(sink, 0)
        parked.setdefault(sink, 0)
    return OnceSummary(committed=committed, failed_sources=failed, pending=pending, parked=parked)


async def run_service(runtime: Runtime, stop: asyncio.Event) -> None:
    """Poll loops and the dispatcher until ``stop``; in-flight polls and commits finish."""
    if isinstance(runtime.store, PostgresStore) and runtime.store.replica is not None:
        runtime.tasks = [asyncio.create_task(_leased_polls(runtime, stop), name="leases")]
    else:  # SQLite: one process, which owns every source
        runtime.tasks = [
            asyncio.create_task(_poll_loop(runtime, scheduled, stop), name=f"poll:{index}")
            for index, scheduled in enumerate(runtime.sources)
        ]
    runtime.tasks.append(asyncio.create_task(runtime.dispatcher.run(stop), name="dispatcher"))
    runtime.tasks.append(
        asyncio.create_task(watch_store(runtime.store, stop, _stopped_within), name="store-gauges")
    )
    runtime.tasks.append(
        asyncio.create_task(
            retention_loop(runtime.store, runtime.config.retention, stop, _stopped_within),
            name="retention",
        )
    )
    try:
        await asyncio.gather(*runtime.tasks)
    finally:
        runtime.tasks = []


async def _leased_polls(runtime: Runtime, stop: asyncio.Event) -> None:
    """Poll loops for exactly the sources this replica holds a lease on (docs/design.md §10)."""
    assert isinstance(runtime.store, PostgresStore)
    by_id = {scheduled.poller.settings.source: scheduled for scheduled in runtime.sources}
    keeper = LeaseKeeper(runtime.store, list(by_id), ttl=runtime.config.state.lease.total_seconds())
    loops = {source: partial(_poll_loop, runtime, scheduled) for source, scheduled in by_id.items()}
    await run_leased(keeper, loops, lambda source: by_id[source].poller.unload(), stop)


async def _poll_loop(runtime: Runtime, scheduled: ScheduledSource, stop: asyncio.Event) -> None:
    # Start-up jitter spreads hundreds of sources over the first interval.
    jitter = random.uniform(0, min(scheduled.cadence.poll_interval.total_seconds(), 5.0))  # noqa: S311
    if await _stopped_within(stop, jitter):
        return
    scheduled.last_reconcile = utc_now()
    while not stop.is_set():
        # This poll answers every webhook delivery received so far, and reads what they named.
        hints = scheduled.trigger.take()
        if hints and isinstance(scheduled.provider, HintedReads):
            scheduled.provider.hint(hints)
        more = await _poll_step(runtime, scheduled)
        if more:
            continue  # the read stopped at its page cap: carry on from the new cursor
        wait = poll_wait(
            scheduled.cadence, scheduled.windows.values(), utc_now(), failures=scheduled.failures
        )
        if await _wait_for_turn(scheduled, stop, wait.total_seconds()):
            return


async def _wait_for_turn(scheduled: ScheduledSource, stop: asyncio.Event, seconds: float) -> bool:
    """Until the next poll is due, or a webhook wakes the source; True once ``stop`` is set.

    A failing source ignores webhooks: its backoff protects the provider, and a flood of
    deliveries during an outage must not turn into a flood of failing requests.
    """
    if scheduled.failures:
        return await _stopped_within(stop, seconds)
    due = time.monotonic() + seconds
    if await scheduled.trigger.wait(stop, seconds):
        return True
    now = time.monotonic()
    if not scheduled.trigger.pending or now >= due:
        return False  # the scheduled turn
    # Woken: within the account's share of its budget (push/pacing.py); deliveries that
    # arrive meanwhile join this poll.
    delay = scheduled.wakes.delay(now)
    if delay >= due - now:
        return await _stopped_within(stop, due - now)  # the scheduled poll comes first
    scheduled.wakes.book(now + delay)
    return await _stopped_within(stop, delay) if delay else False


async def _poll_step(runtime: Runtime, scheduled: ScheduledSource) -> bool:
    """One scheduled poll: a reconcile sweep when due (at background priority), else an
    incremental read. True when the read stopped at its page cap and should continue."""
    now = utc_now()
    assert scheduled.last_reconcile is not None
    full = scheduled.sweeps and reconcile_due(scheduled.cadence, scheduled.last_reconcile, now)
    token = BACKGROUND.set(full)
    try:
        try:
            await scheduled.poller.load()
            await retire_ended_events(runtime.config.retention, scheduled, now)
        except Exception as exc:  # before poll_and_observe, which counts its own failures
            _observe_failure(scheduled, exc)
            raise
        with _long_read(scheduled, full=full):
            report = await poll_and_observe(scheduled, full=full)
    except Exception:
        # Any failure stays with this source (docs/reliability.md): it waits a capped
        # exponential back-off (``poll_wait``) and the other sources never notice.
        scheduled.failures += 1
        return False
    finally:
        BACKGROUND.reset(token)
    scheduled.failures = 0
    if full:
        scheduled.last_reconcile = now
        log.info(
            "reconcile_swept",
            source=scheduled.poller.settings.source,
            records=report.records,
            events=len(report.events),
        )
    if report.events:
        runtime.dispatcher.notify()
    return report.more


def _long_read(scheduled: ScheduledSource, *, full: bool) -> AbstractContextManager[object]:
    """Progress for the reads that can take minutes: a first baseline and a sweep."""
    source = scheduled.poller.settings.source
    if full:
        return reporting(f"{source}: reconcile sweep")
    if not scheduled.poller.settled:
        return reporting(f"{source}: first read (baseline)")
    return nullcontext()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True as soon as ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def serve(config: Config) -> None:
    """``notifier run``: the runtime, its health and metrics server, the inbound webhook
    server when a source pushes, and every loop, until SIGTERM or SIGINT; then a drain."""
    from aiohttp import web

    from notifier.membership import replica_name

    runtime = await open_runtime(config, replica=replica_name())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = health_app(alive=runtime.alive, ready=runtime.readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.server.host, config.server.port).start()
    except OSError as exc:
        await runner.cleanup()
        await runtime.close()
        raise ConfigError(
            f"server: cannot listen on {config.server.host}:{config.server.port}: "
            f"{exc.strerror or exc}"
        ) from None
    ingest: web.AppRunner | None = None
    try:
        ingest = await _start_ingest(runtime, config)
        log.info(
            "service_started",
            sources=len(runtime.sources),
            sinks=len(runtime.sinks),
            port=config.server.port,
        )
        await run_service(runtime, stop)
    finally:
        if ingest is not None:
            await ingest.cleanup()
        await runner.cleanup()
        await runtime.close()
        log.info("service_stopped")


async def _start_ingest(runtime: Runtime, config: Config) -> web.AppRunner | None:
    """The inbound webhook server, when a source has ``push``; its own port. On shared
    PostgreSQL state a delivery for a source another replica holds is relayed to it."""
    relay = wake_relay(runtime)
    routes = ingest_routes(runtime, relay)
    if not routes:
        return None
    server = config.server
    try:
        if relay is not None:
            await relay.start()
            runtime.closers.append(relay.close)
        return await start_ingest_server(routes, host=server.ingest_host, port=server.ingest_port)
    except OSError as exc:
        raise ConfigError(
            f"server: cannot listen on {server.ingest_host}:{server.ingest_port} "
            f"(ingest_port): {exc.strerror or exc}"
        ) from None
