"""One example payload per event type, produced by the real differs from sample records.

Used for the catalogue of docs/events.md; a test checks that document still matches this
output, so the documented payloads are what the code emits.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from notifier.diff import DiffContext, diff_tickets
from notifier.envelope import to_outbox_event
from notifier.events import EVENT_TYPES
from notifier.inventory_diff import diff_ticket_types
from notifier.model import (
    Holder,
    SourceId,
    TicketId,
    TicketRecord,
    TicketStatus,
    TicketType,
    TicketTypeId,
    TicketTypeRecord,
)
from notifier.state import TicketState, TicketTypeState

DOORS = datetime(2025, 6, 7, 21, 4, 11, tzinfo=UTC)
CONTEXT = DiffContext(
    provider="shotgun",
    organizer="fabric",
    source=SourceId("shotgun-main"),
    detected_at=DOORS + timedelta(seconds=2),
)
ALEX = Holder(first_name="Alex", last_name="Martin", email="alex@example.com", phone=None)


def _ticket(**changes: Any) -> TicketRecord:
    record = TicketRecord(
        provider="shotgun",
        source=SourceId("shotgun-main"),
        ticket_id=TicketId("69246804"),
        event_id="410006",
        order_id="51000004",
        ticket_type=TicketType(id="12345678", name="Early Bird", price_minor=3999, currency="EUR"),
        holder=ALEX,
        status=TicketStatus.VALID,
        checked_in_at=None,
        updated_at=DOORS,
        raw={"ticket_scan_code": "42564997260325"},
    )
    return replace(record, **changes)


def _inventory(**changes: Any) -> TicketTypeRecord:
    record = TicketTypeRecord(
        provider="nuweb",
        source=SourceId("nuweb-main"),
        ticket_type_id=TicketTypeId("301"),
        event_id="5",
        name="VIP",
        price_minor=6000,
        currency="GBP",
        total_stock=200,
        sold=198,
        reserved=0,
        current_stock=2,
        on_sale=True,
        deleted_at=None,
        updated_at=DOORS,
    )
    return replace(record, **changes)


_SCANNED = DOORS - timedelta(minutes=3)
_TICKET_CASES: dict[str, tuple[TicketState | None, TicketRecord]] = {
    "ticket.issued": (None, _ticket()),
    "ticket.checked_in": (TicketState.of(_ticket()), _ticket(checked_in_at=DOORS)),
    "ticket.check_in_reverted": (
        TicketState.of(_ticket(checked_in_at=_SCANNED), 1),
        _ticket(),
    ),
    "ticket.checked_out": (
        TicketState.of(_ticket(checked_in_at=_SCANNED), 1),
        _ticket(checked_in_at=_SCANNED, checked_out_at=DOORS),
    ),
    "ticket.voided": (
        TicketState.of(_ticket()),
        _ticket(status=TicketStatus.VOID, status_changed_at=DOORS),
    ),
    "ticket.refunded": (TicketState.of(_ticket()), _ticket(status=TicketStatus.REFUNDED)),
    "ticket.canceled": (
        TicketState.of(_ticket()),
        _ticket(status=TicketStatus.CANCELED, status_changed_at=DOORS),
    ),
    "ticket.resold": (TicketState.of(_ticket()), _ticket(status=TicketStatus.RESOLD)),
    "ticket.reinstated": (
        TicketState.of(_ticket(status=TicketStatus.VOID), 1),
        _ticket(),
    ),
    "ticket.status_changed": (
        TicketState.of(_ticket(status=TicketStatus.PENDING)),
        _ticket(),
    ),
    "ticket.holder_changed": (
        TicketState.of(_ticket()),
        _ticket(holder=Holder(first_name="Sam", last_name="Rivera", email="sam@example.com")),
    ),
    "ticket.type_changed": (
        TicketState.of(_ticket()),
        _ticket(
            ticket_type=TicketType(id="12345680", name="VIP", price_minor=8999, currency="EUR")
        ),
    ),
}
_TYPE_CASES: dict[str, tuple[TicketTypeState, TicketTypeRecord]] = {
    "ticket_type.sold_changed": (
        TicketTypeState.of(_inventory(sold=197, current_stock=3)),
        _inventory(),
    ),
    "ticket_type.sold_out": (
        TicketTypeState.of(_inventory(), 1),
        _inventory(current_stock=0),
    ),
    "ticket_type.back_in_stock": (
        TicketTypeState.of(_inventory(current_stock=0), 2),
        _inventory(current_stock=1),
    ),
    "ticket_type.sale_state_changed": (
        TicketTypeState.of(_inventory()),
        _inventory(on_sale=False),
    ),
    "ticket_type.price_changed": (
        TicketTypeState.of(_inventory(price_minor=5500)),
        _inventory(),
    ),
    "ticket_type.removed": (TicketTypeState.of(_inventory()), _inventory(deleted_at=DOORS)),
}


def example_payloads() -> dict[str, dict[str, Any]]:
    """The ``data`` of one event of every type, as Kafka and webhooks carry it."""
    examples: dict[str, dict[str, Any]] = {}
    for event_type, (state, record) in _TICKET_CASES.items():
        previous = {} if state is None else {record.ticket_id: state}
        change = diff_tickets(previous, [record], context=CONTEXT)
        examples[event_type] = _data_of(change.events, event_type)
    inventory_context = replace(CONTEXT, provider="nuweb", source=SourceId("nuweb-main"))
    for event_type, (type_state, type_record) in _TYPE_CASES.items():
        changes = diff_ticket_types(
            {type_record.ticket_type_id: type_state}, [type_record], context=inventory_context
        )
        examples[event_type] = _data_of(changes.events, event_type)
    assert set(examples) == set(EVENT_TYPES)
    return examples


def _data_of(events: Any, event_type: str) -> dict[str, Any]:
    (event,) = [e for e in events if e.type == event_type]
    data: dict[str, Any] = orjson.loads(to_outbox_event(event).data)
    return data


def catalogue_markdown() -> str:
    """The example section of docs/events.md: a collapsible JSON payload per type."""
    parts = []
    for event_type, data in example_payloads().items():
        body = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
        parts.append(
            f"<details><summary><code>{event_type}</code></summary>\n\n```json\n{body}\n```\n"
            "</details>\n"
        )
    return "\n".join(parts)


if __name__ == "__main__":
    print(catalogue_markdown())
