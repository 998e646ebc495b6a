"""The contract every sink keeps, so the dispatcher can drive any of them the same way.

``Sink`` is what every sink is; ``Paced`` and ``Pipelined`` are capabilities a sink may add,
which the dispatcher detects at run time (docs/design.md §2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from notifier.envelope import OutboxEvent
from notifier.errors import DeliveryError


class Sink(Protocol):
    """A destination for committed events.

    ``deliver`` makes one attempt per event and reports one outcome per event, in order:
    ``None`` when the destination acknowledged it (Kafka acks=all, webhook 2xx), else the
    ``DeliveryError`` that says whether and when to try again. It never raises for a
    single event's failure, so one bad event cannot hold back the rest of the batch.
    An empty batch does no I/O; an event delivered again carries the same id (subscribers
    deduplicate on it); ``close`` may be called more than once. The suite that holds every
    sink to this is tests/contract/test_sink_contract.py.
    """

    @property
    def name(self) -> str: ...

    def wants(self, event: OutboxEvent) -> bool: ...

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]: ...

    async def close(self) -> None: ...


@runtime_checkable
class Paced(Protocol):
    """A sink that asks to be called more slowly (a webhook endpoint that answered 429/503)."""

    def batch_limit(self) -> int: ...

    def not_before(self) -> float: ...


class Acks(Protocol):
    """A batch handed to a ``Pipelined`` sink, whose outcomes are still to come."""

    async def outcomes(self) -> list[DeliveryError | None]: ...


@runtime_checkable
class Pipelined(Sink, Protocol):
    """A sink that takes a batch in two steps, so the next can follow before the acks.

    ``submit`` hands the batch over, in order, and returns without waiting for the acks;
    its ``Acks`` yield what ``deliver`` would have answered. A batch submitted after
    another is delivered after it (Kafka: on each partition).
    """

    async def submit(self, batch: Sequence[OutboxEvent]) -> Acks: ...
