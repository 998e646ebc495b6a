"""The Kafka sink: CloudEvents in binary content mode, one record per event (DESIGN §4).

value = the event's JSON ``data`` bytes as committed, key = ``partition_key`` (so one
ticket's events stay in order on one partition), headers = ``ce_*`` attributes plus
``content-type``. aiokafka errors are translated here into the ``DeliveryError`` tree; every
wait is bounded so a dead broker yields retriable errors instead of a hung dispatcher.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Literal

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    ClusterAuthorizationFailedError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from notifier.envelope import OutboxEvent
from notifier.errors import (
    ConfigError,
    DeliveryError,
    FatalDeliveryError,
    RetriableDeliveryError,
)

log = structlog.get_logger(__name__)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TopicRouter = Callable[[OutboxEvent], str]
Headers = list[tuple[str, bytes]]

# Errors that retrying the same record against the same cluster cannot fix. Everything else
# (including aiokafka's KafkaTimeoutError, flagged non-retriable but typical of a dead broker)
# is retried: a transient error parked by mistake is worse than a fatal one retried.
_FATAL_ERRORS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)


def record_headers(event: OutboxEvent) -> Headers:
    """CloudEvents Kafka binary-mode headers: ``ce_<attr>``, with ``content-type`` for data."""
    headers: Headers = []
    for attribute, value in event.attributes().items():
        name = "content-type" if attribute == "datacontenttype" else f"ce_{attribute}"
        headers.append((name, value.encode()))
    return headers


def translate_error(exc: BaseException) -> DeliveryError:
    """Map a client failure to what the dispatcher should do, keeping it as the cause."""
    error: DeliveryError
    if isinstance(exc, _FATAL_ERRORS):
        error = FatalDeliveryError(f"kafka refused the event: {type(exc).__name__}: {exc}")
    elif isinstance(exc, TimeoutError | asyncio.CancelledError):
        error = RetriableDeliveryError("kafka did not acknowledge the event in time")
    else:
        error = RetriableDeliveryError(f"kafka delivery failed: {type(exc).__name__}: {exc}")
    # Equivalent of ``raise error from exc`` for an error that is returned, not raised.
    error.__cause__ = exc
    return error


class KafkaSink:
    """Publishes every event to the topic ``topic_for(event)`` with acks=all.

    The producer starts on the first ``deliver`` (or ``ping``); if the broker is down then,
    that batch gets retriable errors and the next call tries again. ``delivery_timeout``
    bounds one ``deliver`` call; ``request_timeout`` is aiokafka's per-request timeout and
    how long an unsent batch may wait before it expires.
    """

    def __init__(
        self,
        name: str = "kafka",
        *,
        bootstrap_servers: Sequence[str],
        topic_for: TopicRouter,
        security_protocol: SecurityProtocol = "PLAINTEXT",
        sasl_mechanism: SaslMechanism | None = None,
        sasl_plain_username: str | None = None,
        sasl_plain_password: str | None = None,
        ssl_cafile: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        enable_idempotence: bool = False,
        linger_ms: int = 5,
        client_id: str = "checkin-notifier",
        request_timeout: float = 10.0,
        delivery_timeout: float = 15.0,
        close_timeout: float = 10.0,
    ) -> None:
        self._name = name
        self._topic_for = topic_for
        self._delivery_timeout = delivery_timeout
        self._request_timeout = request_timeout
        self._close_timeout = close_timeout
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": list(bootstrap_servers),
            "client_id": client_id,
            "acks": "all",
            # Off against Tansu (aiokafka's InitProducerId v0 is refused), on for real Kafka.
            "enable_idempotence": enable_idempotence,
            "linger_ms": linger_ms,
            "request_timeout_ms": round(request_timeout * 1000),
            "security_protocol": security_protocol,
            "ssl_context": _ssl_context(security_protocol, ssl_cafile, ssl_certfile, ssl_keyfile),
            **_sasl_config(
                security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password
            ),
        }
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    def wants(self, event: OutboxEvent) -> bool:
        """The Kafka sink takes every event; routing is ``topic_for``'s job."""
        return True

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        """Send the batch; one outcome per event, in order, within ``delivery_timeout``."""
        if not batch:
            return []
        try:
            producer = await self._started_producer()
        except DeliveryError as error:
            return [error for _ in batch]
        outcomes = await self._produce(producer, batch)
        failed = sum(outcome is not None for outcome in outcomes)
        log.debug("kafka_batch_delivered", sink=self._name, events=len(batch), failed=failed)
        return outcomes

    async def ping(self) -> bool:
        """True if the cluster answers a metadata request within ``request_timeout``.

        Starts the producer if it is not running yet, so a later ``deliver`` finds it warm.
        """
        try:
            producer = await self._started_producer()
            async with asyncio.timeout(self._request_timeout):
                await producer.client.fetch_all_metadata()
        except Exception as exc:  # any failure means "not ready"; /readyz wants a bool
            log.info("kafka_ping_failed", sink=self._name, error=type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        """Flush what is in flight and stop the producer, each bounded. Idempotent."""
        self._closed = True
        async with self._start_lock:
            producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            async with asyncio.timeout(self._close_timeout):
                await producer.flush()
        except TimeoutError:
            log.warning("kafka_close_flush_timeout", sink=self._name)
        await self._stop(producer)
        log.info("kafka_producer_stopped", sink=self._name)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        """Stop with a bound: with the broker gone, stop() can wait for batches to expire."""
        try:
            async with asyncio.timeout(self._close_timeout):
                await producer.stop()
        except TimeoutError:
            log.warning("kafka_producer_stop_timeout", sink=self._name)

    async def _started_producer(self) -> AIOKafkaProducer:
        """The running producer, started now if needed; raises a ``DeliveryError``."""
        async with self._start_lock:
            # Checked under the lock: a start racing close() must not leave a live producer.
            if self._closed:
                raise RetriableDeliveryError(f"the {self._name} sink is closed")
            if self._producer is None:
                self._producer = await self._start_producer()
            return self._producer

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._producer_config)
        try:
            async with asyncio.timeout(self._request_timeout):
                await producer.start()
        except Exception as exc:
            # Stop it even though start failed: it holds connections and a ResourceWarning.
            await self._stop(producer)
            error = translate_error(exc)
            log.warning("kafka_producer_start_failed", sink=self._name, error=str(error))
            raise error from exc
        log.info("kafka_producer_started", sink=self._name)
        return producer

    async def _produce(
        self, producer: AIOKafkaProducer, batch: Sequence[OutboxEvent]
    ) -> list[DeliveryError | None]:
        """Enqueue in batch order (keeps per-key order), then await every ack together."""
        deadline = asyncio.get_running_loop().time() + self._delivery_timeout
        pending = [await self._enqueue(producer, event, deadline) for event in batch]
        acks = [item for item in pending if isinstance(item, asyncio.Future)]
        if acks:
            # asyncio.wait never raises for the futures' errors; they are read one by one.
            await asyncio.wait(acks, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        return [_outcome(item) for item in pending]

    async def _enqueue(
        self, producer: AIOKafkaProducer, event: OutboxEvent, deadline: float
    ) -> asyncio.Future[Any] | DeliveryError:
        """Hand one record to the producer; its future resolves when the broker acks it."""
        try:
            async with asyncio.timeout_at(deadline):
                future: asyncio.Future[Any] = await producer.send(
                    self._topic_for(event),
                    value=event.data,
                    key=event.partition_key.encode(),
                    headers=record_headers(event),
                )
        except Exception as exc:  # one event's failure must not fail the batch (Sink contract)
            return translate_error(exc)
        return future


def _outcome(item: asyncio.Future[Any] | DeliveryError) -> DeliveryError | None:
    """The result of one record: acked, refused, or still unacknowledged at the deadline."""
    if isinstance(item, DeliveryError):
        return item
    if not item.done():
        # Cancelling the ack future does not unsend the record: at-least-once, same ce_id.
        item.cancel()
        return translate_error(TimeoutError())
    if item.cancelled():
        return translate_error(asyncio.CancelledError())
    exc = item.exception()
    return None if exc is None else translate_error(exc)


def _sasl_config(
    protocol: SecurityProtocol,
    mechanism: SaslMechanism | None,
    username: str | None,
    password: str | None,
) -> dict[str, str]:
    """aiokafka's SASL settings; refuse half a configuration here rather than at connect."""
    if not protocol.startswith("SASL_"):
        if mechanism is not None or username is not None:
            raise ConfigError(
                f"kafka SASL settings need a SASL_* security_protocol, not {protocol}"
            )
        return {}
    if username is None or password is None:
        raise ConfigError(f"kafka security_protocol {protocol} needs a username and a password")
    return {
        "sasl_mechanism": mechanism or "PLAIN",
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


def _ssl_context(
    protocol: SecurityProtocol,
    cafile: str | None,
    certfile: str | None,
    keyfile: str | None,
) -> ssl.SSLContext | None:
    """An SSL context for the SSL protocols (system CAs unless ``cafile``), else None."""
    if protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=cafile, certfile=certfile, keyfile=keyfile
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka TLS settings cannot be loaded: {exc}") from exc
    return context
