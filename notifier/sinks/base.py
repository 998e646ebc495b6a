"""The contract every sink keeps, so the dispatcher can drive any of them the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from notifier.envelope import OutboxEvent
from notifier.errors import DeliveryError


class Sink(Protocol):
    """A destination for committed events.

    ``deliver`` makes one attempt per event and reports one outcome per event, in order:
    ``None`` when the destination acknowledged it (Kafka acks=all, webhook 2xx), else the
    ``DeliveryError`` that says whether and when to try again. It never raises for a
    single event's failure, so one bad event cannot hold back the rest of the batch.
    """

    @property
    def name(self) -> str: ...

    def wants(self, event: OutboxEvent) -> bool: ...

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]: ...

    async def close(self) -> None: ...
