"""Wires config into pollers, sinks and the dispatcher, and runs them: once, or as a service."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

import structlog

from notifier.config.models import Config, WebhookEndpoint
from notifier.envelope import OutboxEvent
from notifier.membership import LeaseKeeper, run_leased
from notifier.model import SourceId
from notifier.observability import (
    DETECTION_LATENCY,
    EVENTS,
    LAST_SUCCESS,
    POLLS,
    RECORDS,
    Readiness,
)
from notifier.once import OnceSummary
from notifier.poller import PollReport, SourcePoller, SourceSettings
from notifier.progress import reporting
from notifier.providers.base import EventWindow, HintedReads, Provider
from notifier.providers.eventpop import GrantBook
from notifier.providers.http import BACKGROUND, configure_limits
from notifier.providers.registry import Account, account_key, build_provider, open_account
from notifier.push.pacing import WakePacer
from notifier.push.server import IngestRoute
from notifier.push.signatures import signature_check
from notifier.push.triggers import Trigger
from notifier.retention import retention_loop, retire_ended_events
from notifier.schedule import Cadence, poll_wait, reconcile_due
from notifier.sealing import STATE_KEY_ENV, Sealer
from notifier.sinks.base import Sink
from notifier.sinks.dispatcher import Dispatcher
from notifier.sinks.kafka import KafkaSink
from notifier.sinks.retry import RetrySchedule
from notifier.sinks.webhook import WebhookSink
from notifier.source_health import (
    SourceFailure,
    observe_failure,
    observe_success,
    readiness,
    watch_store,
)
from notifier.store.base import DeliveryStatus, StateStore
from notifier.store.opening import open_store
from notifier.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

KAFKA_SINK = "kafka"


def webhook_sink_name(endpoint: str) -> str:
    """Deliveries of a webhook endpoint are recorded under this sink name."""
    return f"webhook:{endpoint}"


@dataclass
class ScheduledSource:
    """A poller, its cadence, and what the schedule has learnt about it."""

    poller: SourcePoller
    provider: Provider
    cadence: Cadence
    failures: int = 0
    windows: dict[str, EventWindow] = field(default_factory=dict)
    last_reconcile: datetime | None = None
    trigger: Trigger = field(default_factory=Trigger)  # set by the provider's webhooks
    wakes: WakePacer = field(default_factory=lambda: WakePacer(gap=0.0))  # the account's
    failing: SourceFailure | None = None
    last_retention: datetime | None = None

    @property
    def sweeps(self) -> bool:
        """Whether the service schedules full reads (some adapters plan their own)."""
        return not getattr(self.provider, "reconciles_itself", False)


@dataclass
class Runtime:
    """Everything a config turns into, ready to run; ``close`` releases it all."""

    config: Config
    store: StateStore
    sources: list[ScheduledSource]
    sinks: list[Sink]
    dispatcher: Dispatcher
    accounts: list[Account] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def alive(self) -> bool:
        """False once any poll loop or sink worker has died: the pod should be restarted."""
        return not any(task.done() for task in self.tasks)

    async def readiness(self) -> Readiness:
        """What /readyz answers (``notifier.source_health.readiness``)."""
        failing = [
            scheduled.failing.detail(
                scheduled.poller.settings.source, scheduled.poller.settings.organizer
            )
            for scheduled in self.sources
            if scheduled.failing is not None
        ]
        return await readiness(self.store, self.sinks, failing)

    async def close(self) -> None:
        for scheduled in self.sources:
            await scheduled.provider.close()
        for account in self.accounts:
            await account.close()
        for sink in self.sinks:
            await sink.close()
        await self.store.close()


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def open_runtime(
    config: Config,
    *,
    clock: Callable[[], datetime] = _utc_now,
    replica: str | None = None,
    store: StateStore | None = None,
) -> Runtime:
    """Open the store and build every sink and poller the config describes.

    ``replica`` names this process among those sharing a PostgreSQL store: it then polls
    and delivers only the sources it holds a lease on (notifier/membership.py). ``store``
    replaces the configured one (a dry run on a fresh config must not create it).
    """
    configure_limits(
        max_header_wait=config.limits.max_provider_wait.total_seconds(),
        max_body_bytes=config.limits.max_response_bytes,
    )
    if store is None:
        store = await open_store(config.state, replica=replica)
    sinks = build_sinks(config)
    schedules = {
        webhook_sink_name(endpoint.name): _schedule(endpoint) for _, endpoint in config.endpoints()
    }

    def route(event: OutboxEvent) -> list[str]:
        return [sink.name for sink in sinks if sink.wants(event)]

    accounts: dict[str, Account] = {}
    sources = _build_sources(config, store=store, route=route, clock=clock, accounts=accounts)
    dispatcher = Dispatcher(store, sinks, schedules=schedules)
    return Runtime(
        config=config,
        store=store,
        sources=sources,
        sinks=sinks,
        dispatcher=dispatcher,
        accounts=list(accounts.values()),
    )


def build_sinks(config: Config) -> list[Sink]:
    sinks: list[Sink] = []
    if config.kafka is not None:
        kafka = config.kafka

        def topic_for(event: OutboxEvent) -> str:
            return config.kafka_topic_for(event.organizer, event.type)

        sinks.append(
            KafkaSink(
                KAFKA_SINK,
                bootstrap_servers=kafka.bootstrap_servers,
                topic_for=topic_for,
                security_protocol=kafka.security_protocol,
                sasl_mechanism=kafka.sasl_mechanism,
                sasl_plain_username=kafka.sasl_username,
                sasl_plain_password=(
                    kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
                ),
                ssl_cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None,
                ssl_certfile=str(kafka.ssl_certfile) if kafka.ssl_certfile else None,
                ssl_keyfile=str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None,
                enable_idempotence=kafka.enable_idempotence,
                linger_ms=kafka.linger_ms,
                client_id=kafka.client_id,
            )
        )
    sinks.extend(_webhook_sink(organizer, endpoint) for organizer, endpoint in config.endpoints())
    return sinks


def _webhook_sink(organizer: str | None, endpoint: WebhookEndpoint) -> WebhookSink:
    return WebhookSink(
        webhook_sink_name(endpoint.name),
        endpoint.url,
        secret=tuple(secret.get_secret_value() for secret in endpoint.signing_secrets),
        events=endpoint.events,
        organizer=organizer,
        timeout=endpoint.timeout.total_seconds(),
        concurrency=endpoint.concurrency,
    )


def _schedule(endpoint: WebhookEndpoint) -> RetrySchedule:
    return RetrySchedule(
        delays=tuple(delay.total_seconds() for delay in endpoint.retry_schedule),
        max_retry_after=endpoint.max_retry_after.total_seconds(),
    )


def _build_sources(
    config: Config,
    *,
    store: StateStore,
    route: Callable[[OutboxEvent], list[str]],
    clock: Callable[[], datetime],
    accounts: dict[str, Account],
) -> list[ScheduledSource]:
    """One poller per source; sources of one provider account share its client and pacing."""
    pii_key = config.defaults.pii_hash_key
    grants = _eventpop_grants(config, store)
    scheduled: list[ScheduledSource] = []
    for organizer, source in config.sources():
        settings = config.settings_for(organizer, source)
        key = account_key(source)
        if key not in accounts:
            accounts[key] = open_account(source, grants=grants)
        provider = build_provider(source, lookback=settings.lookback, account=accounts[key])
        poller = SourcePoller(
            SourceSettings(
                organizer=organizer.id,
                source=SourceId(source.id),
                provider=source.provider,
                emit_existing=settings.initial_sync == "emit_existing",
                pii=settings.pii,
                pii_key=pii_key.get_secret_value().encode() if pii_key else b"",
                inventory_settle=settings.inventory_settle,
            ),
            provider=provider,
            store=store,
            route=route,
            clock=clock,
        )
        cadence = Cadence(
            poll_interval=settings.poll_interval,
            live_poll_interval=settings.live_poll_interval,
            before_doors=settings.live_margin_before,
            after_end=settings.live_margin_after,
            reconcile_interval=settings.reconcile_interval,
        )
        scheduled.append(ScheduledSource(poller, provider, cadence, wakes=accounts[key].wakes))
    return scheduled


def _eventpop_grants(config: Config, store: StateStore) -> GrantBook:
    """Eventpop's rotating tokens, kept in the store; sealed when NOTIFIER_STATE_KEY is set."""
    sealer = Sealer.from_environment()
    refreshable = any(
        source.provider == "eventpop" and source.refresh_token is not None
        for _, source in config.sources()
    )
    if refreshable and not sealer.encrypts:
        log.warning(
            "state_secrets_unencrypted",
            detail="Eventpop tokens are kept in the state store as they are; set "
            + STATE_KEY_ENV
            + " to a Fernet key to encrypt them (docs/deploy.md)",
        )
    return GrantBook(store, sealer)


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
        now=_utc_now(),
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
    """Poll loops for exactly the sources this replica holds a lease on (docs/postgres.md)."""
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
    scheduled.last_reconcile = _utc_now()
    while not stop.is_set():
        # This poll answers every webhook delivery received so far, and reads what they named.
        hints = scheduled.trigger.take()
        if hints and isinstance(scheduled.provider, HintedReads):
            scheduled.provider.hint(hints)
        more = await _poll_step(runtime, scheduled)
        if more:
            continue  # the read stopped at its page cap: carry on from the new cursor
        wait = poll_wait(
            scheduled.cadence, scheduled.windows.values(), _utc_now(), failures=scheduled.failures
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


def ingest_routes(runtime: Runtime) -> dict[str, IngestRoute]:
    """The inbound webhook routes of this replica's sources that have ``push``."""
    secrets = {
        source.id: source.push.secret.get_secret_value().encode()
        for _, source in runtime.config.sources()
        if source.push is not None
    }
    routes: dict[str, IngestRoute] = {}
    for scheduled in runtime.sources:
        settings = scheduled.poller.settings
        if settings.source in secrets:
            check = signature_check(settings.provider, secrets[settings.source])
            route = IngestRoute(settings.provider, check, scheduled.trigger)
            if isinstance(scheduled.provider, HintedReads):
                route = replace(route, hints=scheduled.provider.webhook_hints)
            routes[settings.source] = route
    return routes


async def _poll_step(runtime: Runtime, scheduled: ScheduledSource) -> bool:
    """One scheduled poll: a reconcile sweep when due (at background priority), else an
    incremental read. True when the read stopped at its page cap and should continue."""
    now = _utc_now()
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
