"""The last read of each ticket of the followed events, kept small (no I/O).

A check-in record names only its ticket, so reporting it needs the rest of the ticket
(holder, type, order) as last read. Keeping whole records would cost about 1.2 KB a
ticket; this keeps only the wire fields a record is parsed from, as compact JSON bytes
(about 430 B a ticket), grouped by event so an event's tickets are dropped together after
its close-out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

# What ``parse.parse_issued_ticket`` reads; the URLs and custom questions are left out.
CACHED_FIELDS = (
    "id",
    "event_id",
    "order_id",
    "ticket_type_id",
    "status",
    "checked_in",
    "voided_at",
    "updated_at",
    "created_at",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "barcode",
    "reference",
    "reservation",
    "description",
    "price",
    "currency",
)


class WireCache:
    """Ticket id -> its last wire item (the cached fields), per event."""

    def __init__(self) -> None:
        self._events: dict[str, dict[str, bytes]] = {}

    def __len__(self) -> int:
        return sum(len(tickets) for tickets in self._events.values())

    def keep(self, items: Iterable[object]) -> None:
        """Remember items already parsed without error (so ids are there and text)."""
        for item in items:
            if not isinstance(item, dict):
                continue
            small = {name: item[name] for name in CACHED_FIELDS if name in item}
            event = self._events.setdefault(str(item["event_id"]), {})
            # A copy of exact size: orjson's own result keeps its larger write buffer.
            event[str(item["id"])] = bytes(memoryview(orjson.dumps(small)))

    def get(self, ticket_id: str, event_id: str | None = None) -> dict[str, Any] | None:
        """The ticket's last wire item, or None if it was not read since the start."""
        events = [event_id] if event_id is not None else list(self._events)
        for event in events:
            blob = self._events.get(event, {}).get(ticket_id)
            if blob is not None:
                loaded: dict[str, Any] = orjson.loads(blob)
                return loaded
        return None

    def drop(self, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            self._events.pop(event_id, None)
