"""The whole YAML of docs/design.md §7 as frozen models, with the rules that span several fields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, model_validator

from notifier.config.delivery import (
    DEFAULT_RETRY_SCHEDULE as DEFAULT_RETRY_SCHEDULE,
    DEFAULT_TOPIC as DEFAULT_TOPIC,
    Kafka as Kafka,
    OrganizerKafka as OrganizerKafka,
    WebhookEndpoint as WebhookEndpoint,
)
from notifier.config.fields import (
    ConfigProblems,
    Model,
    Slug,
)
from notifier.config.sources import InitialSync, Source
from notifier.durations import Duration, PositiveDuration
from notifier.inventory_diff import default_settle
from notifier.store.pg_url import is_postgres_url

Pii = Literal["include", "hash", "omit"]


class State(Model):
    """Where the state lives: a SQLite file (one process) or PostgreSQL (any number of
    replicas, docs/design.md §10); load_config makes a relative path absolute."""

    path: Path = Path("./notifier-state.db")
    """SQLite file of cursors, ticket state and the outbox; relative to the config file."""
    # Not a SecretStr: the field name `url` is not secret elsewhere (webhooks); a password
    # in it comes with '@', which config errors never echo (notifier/config/problems.py).
    url: str | None = None
    """PostgreSQL instead of SQLite: a libpq URI, e.g.
    postgresql://notifier:${PGPASSWORD}@db/notifier?sslmode=verify-full
    (a socket directory as ?host=/run/postgresql)."""
    lease: PositiveDuration = timedelta(seconds=15)
    """With PostgreSQL: how long a replica's claim on a source lasts unrenewed; a dead
    replica's sources move to the others after at most this."""

    @model_validator(mode="after")
    def _one_store(self) -> State:
        if self.url is None:
            return self
        if "path" in self.model_fields_set:
            raise ValueError("give state.path (SQLite) or state.url (PostgreSQL), not both")
        if not is_postgres_url(self.url):
            raise ValueError("state.url must start with postgresql:// or postgres://")
        return self


class Retention(Model):
    """How long the state store keeps what is no longer needed (docs/reliability.md)."""

    delivered: PositiveDuration = timedelta(days=7)
    """Events delivered to every sink, and their delivery rows, are deleted this long after
    their commit."""
    parked: PositiveDuration = timedelta(days=30)
    """Events with a parked delivery are kept until replayed, or at most this long."""
    ended_events: PositiveDuration = timedelta(days=30)
    """Tickets of an event that ended this long ago leave the store and the poller's memory."""
    interval: PositiveDuration = timedelta(hours=1)
    """How often retention runs."""

    @model_validator(mode="after")
    def _parked_outlives_delivered(self) -> Retention:
        if self.parked < self.delivered:
            raise ConfigProblems(
                [("parked", "must be at least retention.delivered: parked events wait for replay")]
            )
        return self


class Limits(Model):
    """Caps on what a provider's answer may cost."""

    max_response_bytes: PositiveInt = 32 * 1024 * 1024
    """A response body larger than this, counted after decompression, fails the page."""
    max_provider_wait: PositiveDuration = timedelta(minutes=15)
    """The longest wait a provider header (Retry-After, X-Available-In-Seconds,
    X-Rate-Limit-Reset) may impose; longer ones are capped, negative or infinite ignored."""


class Server(Model):
    """The health and metrics server of ``notifier run``."""

    host: str = "0.0.0.0"  # noqa: S104 - a container must be reachable by its probes
    """Address to listen on for /healthz, /readyz and /metrics."""
    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port of the health and metrics server."""
    ingest_host: str = "0.0.0.0"  # noqa: S104 - providers reach it through an Ingress
    """Address of the inbound webhook server (POST /ingest/{source_id}); it starts only when
    a source has `push`."""
    ingest_port: int = Field(default=8081, ge=1, le=65535)
    """TCP port of the inbound webhook server, apart from health and metrics so that it
    alone can be exposed."""

    @model_validator(mode="after")
    def _ports_differ(self) -> Server:
        if self.ingest_port == self.port:
            raise ConfigProblems(
                [("ingest_port", "must differ from port — e.g. port: 8080, ingest_port: 8081")]
            )
        return self


class Defaults(Model):
    """Settings each organizer and source inherits unless it overrides them."""

    poll_interval: PositiveDuration = timedelta(seconds=60)
    """Time between polls of a source while none of its events is live."""
    live_poll_interval: PositiveDuration = timedelta(seconds=5)
    """Time between polls while an event is live (see live_margin_before and _after)."""
    initial_sync: InitialSync = "baseline"
    """First poll of a new source: 'baseline' records what exists without events,
    'emit_existing' sends an event for every existing ticket."""
    pii: Pii = "include"
    """Holder data, barcodes and person ids in events and state: 'include', 'hash' (keyed
    HMAC) or 'omit'."""
    pii_hash_key: SecretStr | None = None
    """Key of pii 'hash' and 'omit', e.g. ${PII_HASH_KEY}; required when any pii is either."""
    reconcile_interval: PositiveDuration = timedelta(hours=6)
    """Time between full reads that catch what an incremental feed missed."""
    # The live window of an event (live_poll_interval applies) opens this long before its
    # start (doors) and closes this long after its end (late scans, exits).
    live_margin_before: Duration = timedelta(hours=2)
    """How long before an event's start its live window opens (doors)."""
    live_margin_after: Duration = timedelta(hours=1)
    """How long after an event's end its live window stays open (late scans, exits)."""
    # None: each provider's own default (docs/design.md §6a: 0 Shotgun, 2 min Eventpop, Nuweb).
    lookback: Duration | None = None
    """How far back each incremental read overlaps the previous one, to catch late writes;
    unset: the provider's default (0s Shotgun, 2m Eventpop, Nuweb and Ticket Tailor)."""


class Organizer(Model):
    """One organizer: its sources, its own webhooks and optional overrides."""

    id: Slug
    """Unique id, in every event's `organizer` and CloudEvents source: lower-case, no spaces."""
    name: str
    """Display name."""
    kafka: OrganizerKafka | None = None
    """Topic overrides for this organizer's events; needs the top-level kafka section."""
    webhooks: tuple[WebhookEndpoint, ...] = ()
    """Webhook endpoints that receive only this organizer's events."""
    pii: Pii | None = None
    """PII policy of this organizer's events; unset: defaults.pii."""
    sources: tuple[Source, ...] = Field(min_length=1)
    """The provider accounts to poll; `provider` selects the kind."""


class SourceSettings(Model):
    """The settings a poller runs with after merging defaults, organizer and source."""

    poll_interval: timedelta
    live_poll_interval: timedelta
    lookback: timedelta | None
    initial_sync: InitialSync
    pii: Pii
    reconcile_interval: timedelta
    requests_per_minute: float | None
    live_margin_before: timedelta
    live_margin_after: timedelta
    inventory_settle: timedelta = timedelta(0)


class Config(Model):
    """The whole configuration file."""

    state: State = State()
    """Where the state database lives."""
    server: Server = Server()
    """The health and metrics server of `notifier run`."""
    retention: Retention = Retention()
    """How long delivered events, parked ones and tickets of ended events are kept."""
    limits: Limits = Limits()
    """Caps on provider answers: body size and the waits their headers may impose."""
    kafka: Kafka | None = None
    """The Kafka sink; leave it out to publish to webhooks only."""
    webhooks: tuple[WebhookEndpoint, ...] = ()
    """Webhook endpoints that receive the events of every organizer."""
    defaults: Defaults = Defaults()
    """Poll, PII and live-window settings every organizer and source inherits."""
    organizers: tuple[Organizer, ...] = Field(min_length=1)
    """The organizers to watch, each with its sources."""

    def sources(self) -> Iterator[tuple[Organizer, Source]]:
        """Every (organizer, source) pair, in file order."""
        for organizer in self.organizers:
            for source in organizer.sources:
                yield organizer, source

    def endpoints(self) -> Iterator[tuple[str | None, WebhookEndpoint]]:
        """Every webhook endpoint with its organizer id, None for the global ones."""
        for endpoint in self.webhooks:
            yield None, endpoint
        for organizer in self.organizers:
            for endpoint in organizer.webhooks:
                yield organizer.id, endpoint

    def organizer(self, organizer_id: str) -> Organizer:
        """The organizer with this id; KeyError if there is none."""
        for organizer in self.organizers:
            if organizer.id == organizer_id:
                return organizer
        raise KeyError(organizer_id)

    def settings_for(self, organizer: Organizer, source: Source) -> SourceSettings:
        """A source's effective poll settings: source beats organizer beats defaults."""
        defaults = self.defaults
        return SourceSettings(
            poll_interval=source.poll_interval or defaults.poll_interval,
            live_poll_interval=source.live_poll_interval or defaults.live_poll_interval,
            lookback=source.lookback if source.lookback is not None else defaults.lookback,
            initial_sync=source.initial_sync or defaults.initial_sync,
            pii=organizer.pii or defaults.pii,
            reconcile_interval=defaults.reconcile_interval,
            requests_per_minute=source.requests_per_minute,
            live_margin_before=defaults.live_margin_before,
            live_margin_after=defaults.live_margin_after,
            inventory_settle=(
                source.inventory_settle
                if source.inventory_settle is not None
                else default_settle(source.provider)
            ),
        )

    def kafka_topic_for(self, organizer_id: str, event_type: str) -> str:
        """An event's topic: organizer per-type > organizer > global per-type > global."""
        override = self.organizer(organizer_id).kafka or OrganizerKafka()
        kafka_topics = self.kafka.topics if self.kafka else {}
        return (
            override.topics.get(event_type)
            or override.topic
            or kafka_topics.get(event_type)
            or (self.kafka.topic if self.kafka else DEFAULT_TOPIC)
        )

    @model_validator(mode="after")
    def _whole_file_rules(self) -> Config:
        problems = [
            *self._duplicates(
                "organizers", [(f"organizers[{i}].id", o.id) for i, o in enumerate(self.organizers)]
            ),
            *self._duplicates("sources", self._source_ids()),
            *self._duplicates("webhook endpoints", self._endpoint_names()),
            *self._pii_key_problems(),
            *self._orphan_kafka_overrides(),
        ]
        if problems:
            raise ConfigProblems(problems)
        return self

    def _source_ids(self) -> list[tuple[str, str]]:
        return [
            (f"organizers[{i}].sources[{j}].id", source.id)
            for i, organizer in enumerate(self.organizers)
            for j, source in enumerate(organizer.sources)
        ]

    def _endpoint_names(self) -> list[tuple[str, str]]:
        named = [(f"webhooks[{i}].name", e.name) for i, e in enumerate(self.webhooks)]
        for i, organizer in enumerate(self.organizers):
            named += [
                (f"organizers[{i}].webhooks[{j}].name", e.name)
                for j, e in enumerate(organizer.webhooks)
            ]
        return named

    @staticmethod
    def _duplicates(what: str, named: list[tuple[str, str]]) -> list[tuple[str, str]]:
        # Ids name state, cursors and event sources across the whole file (docs/design.md §6a).
        counts = Counter(name for _, name in named)
        first = {name: path for path, name in reversed(named)}
        return [
            (path, f"'{name}' is already used at {first[name]} — {what} need unique names")
            for path, name in named
            if counts[name] > 1 and first[name] != path
        ]

    def _pii_key_problems(self) -> list[tuple[str, str]]:
        # 'omit' needs the key too: the state keeps keyed digests of the holders, so a
        # transfer is still detected while nothing guessable is stored (docs/operations.md).
        if self.defaults.pii_hash_key is not None:
            return []
        used: list[tuple[str, str | None]] = [("defaults.pii", self.defaults.pii)]
        used += [(f"organizers[{i}].pii", o.pii) for i, o in enumerate(self.organizers)]
        users = [(path, pii) for path, pii in used if pii in ("hash", "omit")]
        if not users:
            return []
        policies = " or ".join(sorted({f"'{pii}'" for _, pii in users}))
        return [
            (
                "defaults.pii_hash_key",
                f"required because pii is {policies} at {', '.join(p for p, _ in users)} — set "
                "it from the environment, e.g. pii_hash_key: ${PII_HASH_KEY}",
            )
        ]

    def _orphan_kafka_overrides(self) -> list[tuple[str, str]]:
        if self.kafka is not None:
            return []
        return [
            (
                f"organizers[{i}].kafka",
                "there is no top-level kafka section to override — add "
                "kafka.bootstrap_servers or remove this",
            )
            for i, organizer in enumerate(self.organizers)
            if organizer.kafka is not None
        ]
