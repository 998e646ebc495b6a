"""One error root, grouped by what the caller should do.

    NotifierError
    ├── ConfigError                  refuse to start; the message names file, path and fix
    ├── ProviderError                a poll failed; state and cursor stay as they were
    │   ├── RetriableProviderError   429 / 5xx / network: back off, try again (retry_after, status)
    │   └── FatalProviderError       401 / 403 / malformed data: alert, keep polling on the schedule
    ├── DeliveryError                a sink did not acknowledge; the outbox keeps the event
    │   ├── RetriableDeliveryError   follow the retry schedule (retry_after, status)
    │   │   └── AccessDeniedError    the sink refused our credentials or ACL: retry, alert
    │   └── FatalDeliveryError       e.g. 410 Gone: disable the endpoint, park its deliveries
    ├── StoreError                   the state store failed; the poll is not committed
    └── BrokerStartError             the embedded broker (demo, tests) did not come up

Library errors (aiohttp, aiokafka, sqlite3) are translated at the adapter boundary with
``raise ... from exc`` so callers only ever catch these.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(NotifierError):
    """The configuration cannot be used; the service must not start."""


class ProviderError(NotifierError):
    """Reading a provider failed; nothing of this poll is committed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetriableProviderError(ProviderError):
    """A transient provider failure: rate limited, server error or network trouble."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class FatalProviderError(ProviderError):
    """A provider failure that retrying will not fix: bad credentials, malformed data."""


class DeliveryError(NotifierError):
    """A sink did not acknowledge an event."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetriableDeliveryError(DeliveryError):
    """Try the delivery again later, no sooner than ``retry_after`` seconds if given."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AccessDeniedError(RetriableDeliveryError):
    """The sink refused our credentials or permissions (a Kafka ACL, SASL): an operator must
    act, so it is retried with back-off and surfaced, never parked."""

    def __init__(self, message: str, *, error_type: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.error_type = error_type


class FatalDeliveryError(DeliveryError):
    """The endpoint refuses for good (410 Gone): disable it and park what it had pending."""


class StoreError(NotifierError):
    """The state store could not read or commit."""
