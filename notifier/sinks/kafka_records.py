"""How a batch of outbox events becomes Kafka records, and what the broker said of each.

Records are CloudEvents in binary content mode (docs/design.md §4): value = the event's JSON
``data`` bytes as committed, key = ``partition_key``, headers = ``ce_*`` attributes plus
``content-type``. ``Packer`` puts them in aiokafka record batches itself, one open batch per
partition chosen with Kafka's default partitioner (``notifier.sinks.partitioner``), and
hands each to ``producer.send_batch``: the per-record costs of ``producer.send`` (a
coroutine, a future and a metadata lookup per record, aiokafka's pure-Python murmur2) are
then paid once per record batch. ``InFlight`` waits for the acks of one handed-over batch.
aiokafka errors are translated here into the ``DeliveryError`` tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Final

import structlog
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    ClusterAuthorizationFailedError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
    UnsupportedSaslMechanismError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from notifier.envelope import DATA_CONTENT_TYPE, SPEC_VERSION, OutboxEvent, format_time
from notifier.errors import (
    AccessDeniedError,
    DeliveryError,
    FatalDeliveryError,
    RetriableDeliveryError,
)
from notifier.sinks.partitioner import partition_for

log = structlog.get_logger(__name__)

TopicRouter = Callable[[OutboxEvent], str]
Headers = list[tuple[str, bytes]]
TopicPartition = tuple[str, int]
# What each event of a batch awaits once handed over: its record batch's ack, or its error.
Slot = asyncio.Future[Any] | DeliveryError

# aiokafka's default request cap, stated here because the packer checks records against it.
MAX_REQUEST_SIZE = 1024 * 1024
_SPEC_VERSION: Final = SPEC_VERSION.encode()
_DATA_CONTENT_TYPE: Final = DATA_CONTENT_TYPE.encode()

# Errors that retrying the same record against any cluster cannot fix: the record itself is
# too large. Everything else (including aiokafka's KafkaTimeoutError, flagged non-retriable
# but typical of a dead broker) is retried: a transient error parked by mistake is worse than
# a fatal one retried.
_FATAL_ERRORS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
# Refusals an operator fixes (an ACL, a credential, a topic name): retried with back-off and
# surfaced (notifier_kafka_access_errors_total, a throttled log line) until fixed, never
# parked (docs/reliability.md): events must reach the topic, in order, once access is back.
_ACCESS_ERRORS: tuple[type[BaseException], ...] = (
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    InvalidTopicError,
)
# A retry after an access refusal waits at least this long: an ACL is not fixed in 0.5 s.
ACCESS_RETRY_AFTER = 10.0


def record_headers(event: OutboxEvent) -> Headers:
    """CloudEvents Kafka binary-mode headers: ``ce_<attr>``, with ``content-type`` for data.

    The attributes of ``OutboxEvent.attributes()``, in its order, written out rather than
    read from that dict: this runs for every record (a test keeps the two in step).
    """
    return [
        ("ce_specversion", _SPEC_VERSION),
        ("ce_id", event.id.encode()),
        ("ce_source", event.ce_source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_subject", event.subject.encode()),
        ("ce_time", format_time(event.time).encode()),
        ("content-type", _DATA_CONTENT_TYPE),
        ("ce_partitionkey", event.partition_key.encode()),
    ]


def translate_error(exc: BaseException) -> DeliveryError:
    """Map a client failure to what the dispatcher should do, keeping it as the cause."""
    error: DeliveryError
    if isinstance(exc, _FATAL_ERRORS):
        error = FatalDeliveryError(f"kafka refused the event: {type(exc).__name__}: {exc}")
    elif isinstance(exc, _ACCESS_ERRORS):
        error = AccessDeniedError(
            f"kafka refused access: {type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
            retry_after=ACCESS_RETRY_AFTER,
        )
    elif isinstance(exc, TimeoutError | asyncio.CancelledError):
        error = RetriableDeliveryError("kafka did not acknowledge the event in time")
    else:
        error = RetriableDeliveryError(f"kafka delivery failed: {type(exc).__name__}: {exc}")
    # Equivalent of ``raise error from exc`` for an error that is returned, not raised.
    error.__cause__ = exc
    return error


class InFlight:
    """A batch handed to the producer; ``outcomes()`` waits (bounded) for its acks."""

    def __init__(self, sink: str, slots: list[Slot], deadline: float) -> None:
        self._sink = sink
        self._slots = slots
        self._deadline = deadline

    async def outcomes(self) -> list[DeliveryError | None]:
        """One outcome per event, in batch order: acked, refused, or unacked at the deadline."""
        futures = {slot for slot in self._slots if isinstance(slot, asyncio.Future)}
        if futures:
            remaining = self._deadline - asyncio.get_running_loop().time()
            # asyncio.wait never raises for the futures' errors; _outcome reads each one.
            await asyncio.wait(futures, timeout=max(0.0, remaining))
        results = {future: _outcome(future) for future in futures}
        outcomes = [results[s] if isinstance(s, asyncio.Future) else s for s in self._slots]
        failed = sum(outcome is not None for outcome in outcomes)
        log.debug("kafka_batch_delivered", sink=self._sink, events=len(outcomes), failed=failed)
        return outcomes


class Packer:
    """Packs one batch into aiokafka record batches, one open batch per partition.

    Events are added in batch order and a partition's record batches are handed to the
    producer in the order they fill, so one key's events (one partition) keep their order.
    Each record batch is a unit of the protocol: its events are acked or fail together.
    """

    def __init__(self, producer: Any, topic_for: TopicRouter, size: int) -> None:
        self._producer = producer
        self._topic_for = topic_for
        self._partitions: dict[str, list[int] | DeliveryError] = {}
        self._open: dict[TopicPartition, _Open] = {}
        # A partition whose record batch the producer refused takes no more of this batch:
        # a later record batch getting through would put a key's events out of order.
        self._refused: dict[TopicPartition, DeliveryError] = {}
        # Until an event's record batch is handed over, it has not reached the producer.
        self.slots: list[Slot] = [translate_error(TimeoutError())] * size

    async def pack(self, batch: Sequence[OutboxEvent]) -> None:
        """Add every event in order, handing record batches over as they fill, then the rest.

        Only a metadata lookup or a full record batch awaits: the per-event path is plain
        calls, as it runs for every record.
        """
        for index, event in enumerate(batch):
            try:
                topic = self._topic_for(event)
            except Exception as exc:  # one event's failure must not fail the batch (Sink contract)
                self.slots[index] = translate_error(exc)
                continue
            if topic not in self._partitions:
                self._partitions[topic] = await self._look_up(topic)
            full = self._add(index, event, topic)
            if full is not None:
                await self._send(*full)
        while self._open:
            # Partly filled batches are closed: sent without lingering, as nothing can join.
            await self._send(*self._open.popitem())

    async def _look_up(self, topic: str) -> list[int] | DeliveryError:
        # Once per topic and batch; a failure answers for the topic's other events instead
        # of waiting out the metadata timeout again for each of them.
        try:
            partitions = sorted(await self._producer.partitions_for(topic))
            if not partitions:
                raise UnknownTopicOrPartitionError(topic)
        except Exception as exc:
            return translate_error(exc)
        return partitions

    def _add(
        self, index: int, event: OutboxEvent, topic: str
    ) -> tuple[TopicPartition, _Open] | None:
        """Append to the partition's open record batch; return the batch it filled, if any."""
        partitions = self._partitions[topic]
        if isinstance(partitions, DeliveryError):
            self.slots[index] = partitions
            return None
        try:
            key, headers = event.partition_key.encode(), record_headers(event)
            _check_size(key, event.data, headers)
        except Exception as exc:  # one event's failure must not fail the batch (Sink contract)
            self.slots[index] = translate_error(exc)
            return None
        target = (topic, partition_for(key, partitions))
        if target in self._refused:
            self.slots[index] = self._refused[target]
            return None
        opened = self._open.get(target)
        if opened is not None and opened.append(index, key, event.data, headers):
            return None
        # No batch open yet, or it is full: the record opens the next one.
        self._open[target] = _Open(self._producer.create_batch())
        self._open[target].append(index, key, event.data, headers)
        return None if opened is None else (target, opened)

    async def _send(self, target: TopicPartition, opened: _Open) -> None:
        opened.builder.close()
        slot: Slot | None = self._refused.get(target)
        if slot is None:
            slot = await self._hand_over(target, opened.builder)
        for index in opened.members:
            self.slots[index] = slot

    async def _hand_over(self, target: TopicPartition, builder: Any) -> Slot:
        try:
            future: asyncio.Future[Any] = await self._producer.send_batch(
                builder, target[0], partition=target[1]
            )
        except Exception as exc:  # the producer refused the batch: its events get the error
            self._refused[target] = error = translate_error(exc)
            return error
        # Read the error even if nobody awaits the acks (a cancelled dispatcher), so asyncio
        # never logs "exception was never retrieved".
        future.add_done_callback(_retrieve)
        return future


class _Open:
    """A record batch being filled, and the batch positions of the events in it."""

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.members: list[int] = []

    def append(self, index: int, key: bytes, value: bytes, headers: Headers) -> bool:
        """False if the record does not fit; an empty batch takes any (size-checked) one."""
        if self.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            return False
        self.members.append(index)
        return True


def _check_size(key: bytes, value: bytes, headers: Headers) -> None:
    """The check ``producer.send`` would make: an oversized event fails alone, fatally."""
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    if size > MAX_REQUEST_SIZE:
        raise MessageSizeTooLargeError(
            f"The message is {size} bytes when serialized which is larger than the "
            f"maximum request size of {MAX_REQUEST_SIZE}"
        )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _outcome(future: asyncio.Future[Any]) -> DeliveryError | None:
    """The result of one record batch: acked, refused, or still unacknowledged."""
    if not future.done():
        # Cancelling the ack future does not unsend the records: at-least-once, same ce_id.
        future.cancel()
        return translate_error(TimeoutError())
    if future.cancelled():
        return translate_error(asyncio.CancelledError())
    exc = future.exception()
    return None if exc is None else translate_error(exc)
