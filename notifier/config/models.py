"""The whole YAML of docs/design.md §7 as frozen models, with the rules that span several fields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, PositiveInt, SecretStr, model_validator

from notifier.config.fields import (
    ConfigProblems,
    EventPattern,
    EventType,
    HttpUrl,
    Model,
    Slug,
    TopicName,
    WebhookSecret,
    plain_http_problems,
)
from notifier.config.sources import InitialSync, Source
from notifier.durations import Duration, PositiveDuration
from notifier.inventory_diff import default_settle

Pii = Literal["include", "hash", "omit"]
DEFAULT_TOPIC: Final = "ticket-events"
# docs/design.md §4: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (like Svix).
DEFAULT_RETRY_SCHEDULE: Final[tuple[timedelta, ...]] = tuple(
    timedelta(seconds=s) for s in (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
)


class State(Model):
    """Where the SQLite state lives; load_config makes a relative path absolute."""

    path: Path = Path("./notifier-state.db")
    """SQLite file of cursors, ticket state and the outbox; relative to the config file."""


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


class Kafka(Model):
    """The Kafka sink; without this section there is none."""

    bootstrap_servers: tuple[str, ...] = Field(min_length=1)
    """Brokers to connect to first, as host:port, e.g. [kafka-0.kafka:9092]."""
    topic: TopicName = DEFAULT_TOPIC
    """Topic of every event unless an override below or in an organizer says otherwise."""
    topics: dict[EventType, TopicName] = Field(default_factory=dict)
    """Topic per event type, e.g. {ticket.checked_in: door-scans}; wins over `topic`."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How to reach the brokers; the SASL_ ones need sasl_mechanism, username and password."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism; required with a SASL_ security_protocol."""
    sasl_username: str | None = None
    """SASL user name; required with a SASL_ security_protocol."""
    sasl_password: SecretStr | None = None
    """SASL password, e.g. ${KAFKA_PASSWORD}; required with a SASL_ security_protocol."""
    ssl_cafile: Path | None = None
    """PEM file of the CA that signed the brokers' certificates; none: the system's CAs."""
    ssl_certfile: Path | None = None
    """PEM client certificate, for brokers that require mutual TLS."""
    ssl_keyfile: Path | None = None
    """PEM private key of ssl_certfile."""
    # Off by default: the embedded Tansu broker of `notifier demo` does not support aiokafka's
    # idempotent producer. Turn it on against a real Kafka cluster.
    enable_idempotence: bool = False
    """Idempotent producer (no duplicates from producer retries); turn on for a real cluster."""
    # The sink packs and sends each dispatched batch at once, so a linger rarely delays.
    linger_ms: int = Field(default=0, ge=0)
    """Milliseconds the producer may wait to fill a batch."""
    client_id: str = "checkin-notifier"
    """Client id the brokers see in their logs and quotas."""

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Kafka:
        if not self.security_protocol.startswith("SASL_"):
            return self
        needed = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
        }
        missing = [name for name, value in needed.items() if value is None]
        if missing:
            raise ConfigProblems(
                [
                    (name, f"required with security_protocol {self.security_protocol}")
                    for name in missing
                ]
            )
        return self


class OrganizerKafka(Model):
    """Per-organizer topic overrides."""

    topic: TopicName | None = None
    """Topic of this organizer's events; wins over kafka.topic and kafka.topics."""
    topics: dict[EventType, TopicName] = Field(default_factory=dict)
    """Topic per event type for this organizer; wins over every other topic setting."""


class WebhookEndpoint(Model):
    """One signed webhook receiver (Standard Webhooks)."""

    name: Slug
    """Unique name of the endpoint, used by `deliveries --endpoint` and `replay`."""
    url: HttpUrl
    """Where events are POSTed: an https:// URL (http:// only with allow_insecure_http)."""
    secret: WebhookSecret | None = None
    """Signing secret, 'whsec_' + base64, e.g. ${WEBHOOK_SECRET}; the receiver checks with it.
    Give this or `secrets`."""
    # Instead of `secret` while one is rotated: every delivery carries one signature per
    # secret, so receivers can switch from the old key to the new one without a gap.
    secrets: tuple[WebhookSecret, ...] = ()
    """Instead of `secret` while rotating: the old and the new key; each delivery carries one
    signature per key, so the receiver can switch keys without a gap."""
    allow_insecure_http: bool = False
    """Accept a plain http:// url (a local receiver, tests); https:// is required otherwise."""
    # Empty: every event (docs/design.md §6a).
    events: tuple[EventPattern, ...] = ()
    """Event types to send: names, 'ticket.*', 'ticket_type.*' or '*'; empty: every event."""
    timeout: PositiveDuration = timedelta(seconds=15)
    """How long one delivery attempt may take before it counts as failed."""
    retry_schedule: tuple[Duration, ...] = Field(default=DEFAULT_RETRY_SCHEDULE, min_length=1)
    """Wait before each attempt: the first entry before the first attempt, the n-th after n-1
    failures; after the last, the delivery is parked for `replay`."""
    max_retry_after: Duration = timedelta(hours=1)
    """Longest wait honoured from the endpoint's Retry-After header."""
    concurrency: PositiveInt = 8
    """Deliveries in flight to this endpoint at once."""

    @model_validator(mode="after")
    def _https_unless_allowed(self) -> WebhookEndpoint:
        problems = plain_http_problems(self.url, "url", allowed=self.allow_insecure_http)
        if problems:
            raise ConfigProblems(problems)
        return self

    @model_validator(mode="after")
    def _one_way_to_give_secrets(self) -> WebhookEndpoint:
        if (self.secret is None) == (not self.secrets):
            raise ConfigProblems(
                [
                    (
                        "secret",
                        "set either secret (one whsec_ key) or secrets (a list, while "
                        "rotating: the old key and the new one), not both and not neither",
                    )
                ]
            )
        return self

    @property
    def signing_secrets(self) -> tuple[SecretStr, ...]:
        """Every secret this endpoint's deliveries are signed with."""
        return (self.secret,) if self.secret is not None else self.secrets

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint's filter lets an event of this type through."""
        if not self.events:
            return True
        family = event_type.split(".", 1)[0] + ".*"
        return any(pattern in ("*", event_type, family) for pattern in self.events)


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
