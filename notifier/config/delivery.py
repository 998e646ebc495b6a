"""Where events go: the Kafka sink and the signed webhook endpoints (docs/configuration.md)."""

from __future__ import annotations

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
from notifier.durations import Duration, PositiveDuration

DEFAULT_TOPIC: Final = "ticket-events"
# docs/design.md §4: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (like Svix).
DEFAULT_RETRY_SCHEDULE: Final[tuple[timedelta, ...]] = tuple(
    timedelta(seconds=s) for s in (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
)


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
