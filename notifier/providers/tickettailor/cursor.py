"""The Ticket Tailor cursor: opaque JSON text the adapter resumes from (pure).

It holds where each feed stands (the newest issued ticket and check-in read, by object
id), the sweep in progress and when the last one finished, and two memories the API
cannot give back: the check-in time first learnt per ticket (the issued ticket has none)
and what each void was found to mean (its order's refund or cancellation). Both are kept
per event and dropped with the event after its close-out window. A cursor of an older
version decodes: keys it lacks start empty, keys it no longer uses are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from notifier.errors import FatalProviderError
from notifier.model import TicketRecord, TicketStatus
from notifier.providers.wire import optional_int as _opt_int


@dataclass(slots=True)
class CursorState:
    """Feed positions, sweep progress and the per-event memories."""

    # scope ("*" or an event id) -> newest issued ticket id read by the new-ticket feed
    ticket_anchors: dict[str, str] = field(default_factory=dict)
    check_in_anchor: str | None = None
    swept_at: int | None = None  # unix time the last full sweep ended
    sweep_cost: int | None = None  # pages that sweep took
    sweep_queue: list[str] = field(default_factory=list)  # events left in this sweep
    sweep_after: str | None = None  # position in the first of them
    sweep_pages: int = 0  # pages read so far in this sweep
    # event id -> ticket id -> check-in time (unix) first learnt
    check_ins: dict[str, dict[str, int]] = field(default_factory=dict)
    # event id -> ticket id -> status its void was found to mean
    voids: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def sweeping(self) -> bool:
        return bool(self.sweep_queue)


def decode_cursor(cursor: str | None) -> CursorState:
    """The state an opaque cursor holds; ``FatalProviderError`` if it is corrupt."""
    if cursor is None:
        return CursorState()
    try:
        loaded = orjson.loads(cursor)
        if not isinstance(loaded, dict):
            raise TypeError("cursor is not an object")
        return CursorState(
            ticket_anchors=_texts(loaded.get("ticket_anchors", {})),
            check_in_anchor=_text(loaded.get("check_in_anchor")),
            swept_at=_opt_int(loaded.get("swept_at")),
            sweep_cost=_opt_int(loaded.get("sweep_cost")),
            sweep_queue=_text_list(loaded.get("sweep_queue", [])),
            sweep_after=_text(loaded.get("sweep_after")),
            sweep_pages=_opt_int(loaded.get("sweep_pages")) or 0,
            check_ins=_check_ins(loaded.get("check_ins", {})),
            voids=_voids(loaded.get("voids", {})),
        )
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise FatalProviderError("corrupt Ticket Tailor cursor: " + type(exc).__name__) from exc


def encode_cursor(state: CursorState) -> str:
    """Opaque cursor text (JSON, sorted keys so equal states give equal text)."""
    body = {
        "ticket_anchors": state.ticket_anchors,
        "check_in_anchor": state.check_in_anchor,
        "swept_at": state.swept_at,
        "sweep_cost": state.sweep_cost,
        "sweep_queue": state.sweep_queue,
        "sweep_after": state.sweep_after,
        "sweep_pages": state.sweep_pages,
        "check_ins": state.check_ins,
        "voids": state.voids,
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def forget_events(state: CursorState, dropped: set[str]) -> None:
    """Drop the memories of the events no longer followed, and empty ones."""
    for memory in (state.check_ins, state.voids):
        for event_id in [e for e in memory if e in dropped or not memory[e]]:
            del memory[event_id]


def stable_check_in(record: TicketRecord, state: CursorState) -> TicketRecord:
    """The check-in time first learnt for the ticket, so later edits do not move it.

    The feed's ``check_in_at`` is learnt first as a rule; a ticket checked in before the
    feed was first read has only ``updated_at`` to stand in, kept from then on.
    """
    memory = state.check_ins.setdefault(record.event_id, {})
    if record.checked_in_at is None:
        memory.pop(record.ticket_id, None)
        return record
    known = memory.get(record.ticket_id)
    if known is None:
        memory[record.ticket_id] = int(record.checked_in_at.timestamp())
        return record
    return replace(record, checked_in_at=datetime.fromtimestamp(known, UTC))


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("cursor field is not text")
    return value


def _texts(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("ticket_anchors is not an object")
    return {str(k): str(_text(v)) for k, v in value.items() if v is not None}


def _text_list(value: object) -> list[str]:
    if not isinstance(value, list):
        raise TypeError("sweep_queue is not a list")
    return [str(_text(item)) for item in value if item is not None]


def _check_ins(value: object) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        raise TypeError("check_ins is not an object")
    result: dict[str, dict[str, int]] = {}
    for event_id, tickets in value.items():
        if not isinstance(tickets, dict):
            raise TypeError("check_ins entry is not an object")
        result[str(event_id)] = {str(k): int(_opt_int(v) or 0) for k, v in tickets.items()}
    return result


def _voids(value: object) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise TypeError("voids is not an object")
    result: dict[str, dict[str, Any]] = {}
    for event_id, tickets in value.items():
        if not isinstance(tickets, dict):
            raise TypeError("voids entry is not an object")
        # TicketStatus(...) raises ValueError on anything that is not a status.
        result[str(event_id)] = {str(k): TicketStatus(v).value for k, v in tickets.items()}
    return result


def newer_than(anchor: str | None) -> dict[str, str]:
    """The query for objects newer than ``anchor`` (the ``limit`` just after it), or for
    the newest page when there is no anchor yet."""
    return {"ending_before": anchor} if anchor else {}
