"""Small test doubles shared across the suite."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sleeps:
    """An injected sleep that records the requested waits instead of waiting."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def no_wait(_: float) -> None:
    """Retries in the suite do not wait: the backoff schedule is tested on its own."""
