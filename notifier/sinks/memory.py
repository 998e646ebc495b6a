"""An in-memory sink: the reference implementation of the contract, used in tests and dry runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from notifier.envelope import OutboxEvent
from notifier.errors import DeliveryError


class MemorySink:
    """Keeps every acknowledged event in ``received``.

    ``fail_with`` fails every event; ``fail_for`` fails the events with those ids only, so a
    test can check that each outcome lands on its own event.
    """

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
        self.fail_for: dict[str, DeliveryError] = {}
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    def wants(self, event: OutboxEvent) -> bool:
        return self._accepts is None or self._accepts(event)

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        if self.fail_with is not None:
            return [self.fail_with for _ in batch]
        outcomes = [self.fail_for.get(event.id) for event in batch]
        self.received.extend(
            e for e, outcome in zip(batch, outcomes, strict=True) if outcome is None
        )
        return outcomes

    async def close(self) -> None:
        self.closed = True
