"""What one read of an Eventpop stream gathers, and the pure helpers of keyset paging."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from notifier.errors import FatalProviderError
from notifier.model import TicketRecord
from notifier.providers.eventpop.cursor import Position, position_of

MAX_PAGES = 10_000  # a runaway guard per read, far above any page budget


@dataclass(slots=True)
class Read:
    """What one stream's read has gathered: records by id (newest wins) and requests."""

    records: dict[str, TicketRecord] = field(default_factory=dict)
    requests: int = 0
    pages: int = 0

    def add(self, page: Iterable[TicketRecord]) -> None:
        for record in page:
            known = self.records.get(record.ticket_id)
            if known is None or _newer_or_same(record, known):
                self.records[record.ticket_id] = record

    def count_page(self, attempts: int) -> None:
        self.requests += attempts
        self.pages += 1
        if self.pages > MAX_PAGES:
            # Only a server ignoring our filters gets here: the step's page budget stops
            # time reads long before, and a sweep covers three seconds of updates.
            raise FatalProviderError("Eventpop read exceeded " + str(MAX_PAGES) + " pages")


def _newer_or_same(record: TicketRecord, known: TicketRecord) -> bool:
    if record.updated_at is None or known.updated_at is None:
        return True
    return record.updated_at >= known.updated_at


@dataclass(frozen=True, slots=True)
class Page:
    records: list[TicketRecord]
    full: bool  # as many tickets as the server's per_page: there may be more


def served_per_page(payload: object, requested: int) -> int:
    # The server may cap per_page: a page of its own size is full even if short of ours.
    echoed = payload.get("per_page") if isinstance(payload, dict) else None
    if type(echoed) is int and 0 < echoed < requested:
        return echoed
    return requested


def time_of(record: TicketRecord) -> datetime:
    if record.updated_at is None:
        raise FatalProviderError("Eventpop ticket without updated_at: cannot page by it")
    return record.updated_at


def last_time(records: list[TicketRecord]) -> datetime:
    return max(time_of(record) for record in records)


def max_id(records: list[TicketRecord]) -> int:
    if not all(record.ticket_id.isdigit() for record in records):
        raise FatalProviderError("Eventpop ticket id is not numeric: cannot page by min_id")
    return max(int(record.ticket_id) for record in records)


def reaches_before(records: list[TicketRecord], lower: datetime) -> bool:
    return any(record.updated_at is not None and record.updated_at < lower for record in records)


def drop_before(read: Read, lower: datetime | None) -> Read:
    # The last page runs past the watermark window; what is older was read last poll.
    if lower is not None:
        read.records = {
            key: record
            for key, record in read.records.items()
            if record.updated_at is None or record.updated_at >= lower
        }
    return read


def advance(start: Position | None, records: list[TicketRecord]) -> Position | None:
    """The newest position read, never behind where the read began."""
    positions = [p for p in map(position_of, records) if p is not None]
    if start is not None:
        positions.append(start)
    return max(positions, default=None)
