"""Wiring: a config turned into what runs — the store, sinks, provider accounts and pollers,
and the inbound webhook routes (docs/design.md §1). Nothing here runs a loop; that is
``notifier.service``'s job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import structlog

from notifier.config.models import Config, WebhookEndpoint
from notifier.envelope import OutboxEvent
from notifier.model import SourceId
from notifier.observability import (
    Readiness,
)
from notifier.poller import SourcePoller, SourceSettings
from notifier.providers.base import EventWindow, HintedReads, Provider
from notifier.providers.eventpop import GrantBook
from notifier.providers.http import configure_limits
from notifier.push.pacing import WakePacer
from notifier.push.relay import WakeRelay
from notifier.push.server import IngestRoute
from notifier.push.signatures import signature_check
from notifier.push.triggers import Trigger
from notifier.schedule import Cadence
from notifier.sealing import STATE_KEY_ENV, Sealer
from notifier.sinks.base import Sink
from notifier.sinks.dispatcher import Dispatcher
from notifier.sinks.kafka import KafkaSink
from notifier.sinks.retry import RetrySchedule
from notifier.sinks.webhook import WebhookSink
from notifier.source_health import (
    SourceFailure,
    readiness,
)
from notifier.store.base import StateStore
from notifier.store.opening import open_store
from notifier.store.postgres import PostgresStore
from notifier.wiring.registry import Account, account_key, build_provider, open_account

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
    # What else the runtime started and must stop (the webhook relay between replicas).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

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
        for closer in self.closers:
            await closer()
        for scheduled in self.sources:
            await scheduled.provider.close()
        for account in self.accounts:
            await account.close()
        for sink in self.sinks:
            await sink.close()
        await self.store.close()


def utc_now() -> datetime:
    return datetime.now(UTC)


async def open_runtime(
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
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


def ingest_routes(runtime: Runtime, relay: WakeRelay | None = None) -> dict[str, IngestRoute]:
    """The inbound webhook routes of the sources that have ``push``; with a ``relay`` (shared
    PostgreSQL state), a delivery for a source another replica holds is relayed to it."""
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
            wake = relay.trigger_for(settings.source) if relay is not None else scheduled.trigger
            route = IngestRoute(settings.provider, check, wake)
            if isinstance(scheduled.provider, HintedReads):
                route = replace(route, hints=scheduled.provider.webhook_hints)
            routes[settings.source] = route
    return routes


def wake_relay(runtime: Runtime) -> WakeRelay | None:
    """The relay of webhooks between replicas, when replicas share PostgreSQL state."""
    store = runtime.store
    if not isinstance(store, PostgresStore) or store.replica is None:
        return None
    triggers: dict[str, Trigger] = {
        scheduled.poller.settings.source: scheduled.trigger for scheduled in runtime.sources
    }
    assert runtime.config.state.url is not None
    return WakeRelay(runtime.config.state.url, triggers, held=lambda: store.held)
