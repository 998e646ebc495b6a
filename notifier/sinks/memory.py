"""An in-memory sink: the reference implementation of the contract, used in tests and dry runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from notifier.envelope import OutboxEvent
from notifier.errors import DeliveryError


class MemorySink:
    """Keeps every acknowledged event in ``received``; ``fail_with`` scripts failures."""

    def __init__(
        self,
        name: str = "memory",
        *,
        accepts: Callable[[OutboxEvent], bool] | None = None,
    ) -> None:
        self._name = name
        self._accepts = accepts
        self.received: list[OutboxEvent] = []
        self.fail_with: DeliveryError | None = None
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    def wants(self, event: OutboxEvent) -> bool:
        return self._accepts is None or self._accepts(event)

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        if self.fail_with is not None:
            return [self.fail_with for _ in batch]
        self.received.extend(batch)
        return [None for _ in batch]

    async def close(self) -> None:
        self.closed = True
