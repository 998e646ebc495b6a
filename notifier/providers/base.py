"""The contract every provider adapter keeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from notifier.model import TicketRecord, TicketTypeRecord

EventWindow = tuple[datetime, datetime | None]


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll read, and the cursor to resume from once it is committed.

    ``complete`` is true only when the read covered every ticket of the source (a full
    sweep): only then may absence from ``tickets`` mean anything (DESIGN §6).
    ``cursor`` is opaque text owned by the adapter; ``None`` means "start from scratch".
    """

    tickets: Sequence[TicketRecord]
    cursor: str | None
    complete: bool = False
    ticket_types: Sequence[TicketTypeRecord] = field(default_factory=tuple)
    requests: int = 0
    # Events the adapter saw, by id: (start, end or None). The scheduler polls faster while
    # one of them is in its live window (doors open to end).
    event_windows: Mapping[str, EventWindow] = field(default_factory=dict)
    # The read stopped at its page cap: ``cursor`` marks where to resume, and the caller
    # should poll again at once. Commits in bounded steps keep a huge backlog (a first
    # baseline, a long outage) making progress even if the process is killed part-way.
    more: bool = False


class Provider(Protocol):
    """Reads one source of one provider account.

    ``poll`` reads every page since ``cursor`` and returns them all, or raises a
    ``ProviderError`` (nothing partial is ever returned: a page that fails midway fails
    the poll, so the cursor cannot advance past what was not read).
    """

    @property
    def name(self) -> str: ...

    async def poll(self, cursor: str | None) -> PollResult: ...

    async def close(self) -> None: ...
