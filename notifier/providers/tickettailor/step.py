"""What one step of a Ticket Tailor poll has read so far, and its page allowance."""

from __future__ import annotations

from dataclasses import dataclass, field

from notifier.model import TicketRecord
from notifier.providers.tickettailor import parse as p


@dataclass(slots=True)
class Step:
    """What one step has read so far, and its page allowance."""

    cap: int
    pages: int = 0
    more: bool = False
    tickets: dict[str, TicketRecord] = field(default_factory=dict)
    orders: dict[str | None, p.OrderState | None] = field(default_factory=dict)

    @property
    def spent(self) -> bool:
        return self.pages >= self.cap
