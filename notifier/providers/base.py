"""The contract every provider adapter keeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, overload, runtime_checkable

from notifier.model import TicketId, TicketRecord, TicketTypeRecord

EventWindow = tuple[datetime, datetime | None]


class CredentialStore(Protocol):
    """Secrets a provider must keep across restarts (Eventpop's rotated refresh token).

    Values are opaque text, sealed by the caller (``notifier.sealing``); the store neither
    reads nor logs them. Saving replaces what was stored under the key. Declared here, by
    the side that needs it: every ``notifier.store`` state store is one.
    """

    async def load_credentials(self, key: str) -> str | None: ...

    async def save_credentials(self, key: str, value: str) -> None: ...


class WireTickets(Sequence[TicketRecord]):
    """The tickets of one read as the provider sent them, each parsed only when needed.

    An adapter whose reads can be large returns this as ``PollResult.tickets``: next to
    each raw item it gives the ticket's id and a ``wire_fingerprint`` of exactly the wire
    fields its tracked fields are normalized from. The poller parses only the items whose
    digest differs from the one it remembers, so an unchanged ticket costs a hash, not a
    ``TicketRecord``. Indexing or iterating parses (the generic path, and tests).

    ``parse`` raises ``FatalProviderError`` for a malformed item, wherever it is called:
    the poll then fails before anything is committed, as an eager parse would.
    """

    __slots__ = ("_digests", "_ids", "_items", "_parse")

    def __init__(
        self,
        ids: Sequence[TicketId],
        digests: Sequence[int],
        items: Sequence[object],
        parse: Callable[[object], TicketRecord],
    ) -> None:
        # A ticket updated while the pages were read shows up again later: its last read
        # is the freshest; it keeps the place of its first.
        last_read = {ticket: index for index, ticket in enumerate(ids)}
        if len(last_read) != len(ids):
            kept = list(last_read.values())
            ids = list(last_read)
            digests = [digests[index] for index in kept]
            items = [items[index] for index in kept]
        self._ids, self._digests, self._items, self._parse = ids, digests, items, parse

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> TicketRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TicketRecord]: ...

    def __getitem__(self, index: int | slice) -> TicketRecord | Sequence[TicketRecord]:
        if isinstance(index, slice):
            return [self._parse(item) for item in self._items[index]]
        return self._parse(self._items[index])

    def unparsed(self) -> Iterator[tuple[TicketId, int, object]]:
        """(ticket id, wire digest, raw item) of each ticket, in read order."""
        return zip(self._ids, self._digests, self._items, strict=True)

    def parse(self, item: object) -> TicketRecord:
        return self._parse(item)


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll read, and the cursor to resume from once it is committed.

    ``complete`` is true only when the read covered every ticket of the source (a full
    sweep): only then may absence from ``tickets`` mean anything (docs/design.md §6).
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


@dataclass(frozen=True, slots=True)
class ReadHint:
    """An object a verified provider webhook named as changed: only *what* to read.

    ``kind`` is the provider's own word for the object (Ticket Tailor: ``issued_ticket``,
    ``order``); ``object_id`` its id, already checked to be a plain id. A hint never carries
    data: the adapter reads the object from the API and the poller diffs it as usual, so a
    forged hint costs at most the read of an object then found unchanged.
    """

    kind: str
    object_id: str


@runtime_checkable
class HintedReads(Protocol):
    """A provider that can read an object its webhook names alone, cheaply (issue 14).

    ``webhook_hints`` turns a verified delivery's raw body into hints and never raises (a
    payload it cannot read gives none: the delivery still wakes the poll). ``hint`` hands
    the poll loop's pending hints to the adapter, which reads them on its next ``poll``
    within its own bounds. Providers without this capability are only woken.
    """

    def webhook_hints(self, body: bytes) -> Sequence[ReadHint]: ...

    def hint(self, hints: Sequence[ReadHint]) -> None: ...
