"""The CloudEvents envelope: deterministic ids, source, key, time and data (docs/design.md §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifier.diff import diff_tickets
from notifier.envelope import SPEC_VERSION, event_id, format_time, to_outbox_event
from notifier.events import CHANGE_EVENT_ADAPTER, TicketEvent
from notifier.model import TicketId
from tests.strategies import CONTEXT, DETECTED_AT, record, state_of

SCAN = datetime(2025, 6, 1, 21, 0, 0, 250000, tzinfo=UTC)
BASE = ("shotgun-main", "T1", "ticket.checked_in", 3)


def checked_in(*, occurred: datetime | None = SCAN) -> TicketEvent:
    previous = {TicketId("T1"): state_of(record(), sequence=2)}
    (event,) = diff_tickets(previous, [record(checked_in_at=SCAN)], context=CONTEXT).events
    return event.model_copy(update={"occurred_at": occurred})


def test_event_id_is_deterministic() -> None:
    """The same (source, subject, type, sequence) always gives the same id."""
    assert event_id(*BASE) == event_id(*BASE)


@pytest.mark.parametrize(
    "changed",
    [
        ("other-source", "T1", "ticket.checked_in", 3),
        ("shotgun-main", "T2", "ticket.checked_in", 3),
        ("shotgun-main", "T1", "ticket.voided", 3),
        ("shotgun-main", "T1", "ticket.checked_in", 4),
    ],
    ids=["source", "subject", "type", "sequence"],
)
def test_event_id_changes_with_each_input(changed: tuple[str, str, str, int]) -> None:
    """Changing any one of source, subject, type or sequence changes the id."""
    assert event_id(*changed) != event_id(*BASE)


def test_event_id_fields_cannot_run_together() -> None:
    """Moving characters between adjacent fields gives another id."""
    assert event_id("ab", "c", "t", 1) != event_id("a", "bc", "t", 1)


def test_outbox_id_hashes_source_subject_type_and_sequence() -> None:
    """The outbox event's id is event_id of its source, ticket id, type and sequence."""
    outbox = to_outbox_event(checked_in())
    assert outbox.id == event_id("shotgun-main", "T1", "ticket.checked_in", 3)


def test_outbox_id_ignores_detection_time() -> None:
    """The same change detected at another moment keeps its id (crash re-detection)."""
    later = checked_in().model_copy(update={"detected_at": DETECTED_AT + timedelta(hours=1)})
    assert to_outbox_event(later).id == to_outbox_event(checked_in()).id


def test_ce_source_is_provider_organizer_source() -> None:
    """``source`` is ``/{provider}/{organizer}/{source}``."""
    assert to_outbox_event(checked_in()).ce_source == "/shotgun/fabric/shotgun-main"


def test_partition_key_is_provider_source_ticket() -> None:
    """The Kafka key is ``{provider}:{source}:{ticket_id}``."""
    assert to_outbox_event(checked_in()).partition_key == "shotgun:shotgun-main:T1"


def test_subject_type_organizer_and_source_id() -> None:
    """subject is the ticket id; type, organizer and source id come from the event."""
    outbox = to_outbox_event(checked_in())
    assert (outbox.subject, outbox.type) == ("T1", "ticket.checked_in")
    assert (outbox.organizer, outbox.source_id) == ("fabric", "shotgun-main")


def test_time_is_occurred_at_when_known() -> None:
    """``time`` is the provider's time of the change when it gives one."""
    assert to_outbox_event(checked_in()).time == SCAN


def test_time_falls_back_to_detected_at() -> None:
    """``time`` is detected_at when occurred_at is null."""
    assert to_outbox_event(checked_in(occurred=None)).time == DETECTED_AT


def test_data_round_trips_through_the_change_event_schema() -> None:
    """``data`` is the event's JSON and validates back into the same event."""
    event = checked_in()
    assert CHANGE_EVENT_ADAPTER.validate_json(to_outbox_event(event).data) == event


def test_attributes_are_the_cloudevents_context() -> None:
    """attributes() holds every CloudEvents context attribute as text."""
    outbox = to_outbox_event(checked_in())
    assert outbox.attributes() == {
        "specversion": SPEC_VERSION,
        "id": outbox.id,
        "source": "/shotgun/fabric/shotgun-main",
        "type": "ticket.checked_in",
        "subject": "T1",
        "time": "2025-06-01T21:00:00.250000Z",
        "datacontenttype": "application/json",
        "partitionkey": "shotgun:shotgun-main:T1",
    }
    assert SPEC_VERSION == "1.0"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 6, 1, 21, 0, tzinfo=UTC), "2025-06-01T21:00:00Z"),
        (datetime(2025, 6, 1, 21, 0, 0, 7, tzinfo=UTC), "2025-06-01T21:00:00.000007Z"),
        (
            datetime(2025, 6, 1, 23, 0, tzinfo=timezone(timedelta(hours=2))),
            "2025-06-01T21:00:00Z",
        ),
        (datetime(2025, 6, 1, 21, 0), "2025-06-01T21:00:00Z"),  # naive: taken as UTC
    ],
    ids=["utc", "microseconds", "other-offset", "naive"],
)
def test_format_time_is_utc_with_z(moment: datetime, expected: str) -> None:
    """format_time writes RFC 3339 in UTC ending with ``Z``."""
    assert format_time(moment) == expected
