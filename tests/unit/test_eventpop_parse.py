"""Specification of Eventpop page parsing and cursor text (pure, no I/O)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from structlog.testing import capture_logs

from notifier.errors import FatalProviderError, NotifierError
from notifier.model import Holder, SourceId, TicketStatus, TicketType
from notifier.providers.eventpop import (
    Position,
    decode_cursor,
    encode_cursor,
    parse_events,
    parse_page,
    parse_ticket,
)

SOURCE = SourceId("ep")


def spec_ticket(**overrides: Any) -> dict[str, Any]:
    """A ticket with every ``PublicAPI_Entities_Ticket`` field, typed as the Swagger says."""
    ticket: dict[str, Any] = {
        "id": 8800123,
        "order_id": 4400123,
        "event_id": 71001,
        "status": "active",
        "firstname": "Somchai",
        "lastname": "Jaidee",
        "phone": "0812345678",
        "email": "somchai@example.co.th",
        "reference_code": "ABC123",
        "kind": "normal",
        "external_id": None,
        "revoke_note": None,
        "ticket_type": {
            "id": "4521",
            "name": "General Admission",
            "price": "฿1,500.00",
            "price_satangs": "150000",
            "kind": "paid",
        },
        "price_label": "฿1,500.00",
        "forms": [],
        "created_at": "2026-04-27T10:00:00.000+07:00",
        "updated_at": "2026-04-27T10:05:00.250+07:00",
        "used_at": None,
        "registered_at": None,
    }
    ticket.update(overrides)
    return ticket


def envelope(*tickets: dict[str, Any]) -> dict[str, Any]:
    """The documented list envelope around ``tickets``."""
    return {
        "success": True,
        "tickets": list(tickets),
        "count": len(tickets),
        "total": len(tickets),
        "page": 1,
        "per_page": 10,
    }


def test_spec_ticket_parses_to_the_expected_record() -> None:
    """Every field of a Swagger-typed ticket lands where docs/design.md §3 puts it."""
    [record] = parse_page(envelope(spec_ticket()), source=SOURCE, event_id=71001)
    assert record.provider == "eventpop"
    assert record.source == SOURCE
    assert record.ticket_id == "8800123"
    assert record.event_id == "71001"
    assert record.order_id == "4400123"
    assert record.ticket_type == TicketType("4521", "General Admission", 150000, "THB")
    assert record.holder == Holder("Somchai", "Jaidee", "somchai@example.co.th", "0812345678")
    assert record.status is TicketStatus.VALID
    assert record.status_raw == "active"
    assert record.checked_in_at is None
    assert record.updated_at == datetime(2026, 4, 27, 3, 5, 0, 250000, tzinfo=UTC)
    assert record.raw == {
        "reference_code": "ABC123",
        "revoke_note": None,
        "kind": "normal",
        "registered_at": None,
        "external_id": None,
    }


def test_seed_client_types_parse_like_the_spec_types() -> None:
    """A real client's numeric ticket_type id and price_satangs parse like the spec's strings."""
    numeric = {"id": 4521, "name": "Free", "price": "฿0.00", "price_satangs": 0, "kind": "free"}
    [record] = parse_page(envelope(spec_ticket(ticket_type=numeric)), source=SOURCE)
    assert record.ticket_type == TicketType("4521", "Free", 0, "THB")


@pytest.mark.parametrize(
    ("status", "used_at", "expected_status", "checked_in"),
    [
        ("active", None, TicketStatus.VALID, None),
        (
            "used",
            "2026-04-27T19:30:00.000+07:00",
            TicketStatus.VALID,
            datetime(2026, 4, 27, 12, 30, tzinfo=UTC),
        ),
        ("used", None, TicketStatus.VALID, datetime(2026, 4, 27, 3, 5, 0, 250000, tzinfo=UTC)),
        ("revoked", None, TicketStatus.VOID, None),
    ],
)
def test_documented_statuses_map(
    status: str, used_at: str | None, expected_status: TicketStatus, checked_in: datetime | None
) -> None:
    """active/used/revoked map to valid/valid+checked in/void; used without used_at → updated_at."""
    record = parse_ticket(spec_ticket(status=status, used_at=used_at), source=SOURCE)
    assert record.status is expected_status
    assert record.checked_in_at == checked_in


def test_revoke_note_is_kept_in_raw() -> None:
    """A revoked ticket carries its revoke_note into the payload's raw fields."""
    record = parse_ticket(spec_ticket(status="revoked", revoke_note="refunded"), source=SOURCE)
    assert record.raw["revoke_note"] == "refunded"


def test_unknown_status_is_unknown_and_warned_once() -> None:
    """An undocumented status becomes UNKNOWN with its raw value and one warning."""
    raw = "suspended-" + uuid.uuid4().hex[:8]
    with capture_logs() as logs:
        first = parse_ticket(spec_ticket(status=raw), source=SOURCE)
        parse_ticket(spec_ticket(status=raw), source=SOURCE)
    assert first.status is TicketStatus.UNKNOWN
    assert first.status_raw == raw
    warnings = [e for e in logs if e["event"] == "unknown_ticket_status"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["status_raw"] == raw


def test_offset_less_time_is_utc() -> None:
    """No documented zone and no evidence of Bangkok: an offset-less time is UTC."""
    record = parse_ticket(spec_ticket(updated_at="2026-04-27T10:05:00"), source=SOURCE)
    assert record.updated_at == datetime(2026, 4, 27, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"firstname": "Suda Srisuk", "lastname": None}, ("Suda", "Srisuk")),
        (
            {"firstname": None, "lastname": None, "full_name": "Niran Wongsawat"},
            ("Niran", "Wongsawat"),
        ),
        ({"firstname": "Ploy", "lastname": ""}, ("Ploy", None)),
        ({"firstname": None, "lastname": None}, (None, None)),
    ],
)
def test_holder_names_split_sensibly(
    fields: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    """A full name in one field is split into given and family name."""
    holder = parse_ticket(spec_ticket(**fields), source=SOURCE).holder
    assert (holder.first_name, holder.last_name) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("150000", 150000), (150000, 150000), ("150000.00", 150000), (1500.0, 1500), ("฿15", None)],
)
def test_price_satangs_is_read_leniently(value: object, expected: int | None) -> None:
    """price_satangs as int or numeric text is minor units; unreadable text is no price."""
    ticket_type = {"id": "1", "name": "GA", "price_satangs": value}
    record = parse_ticket(spec_ticket(ticket_type=ticket_type), source=SOURCE)
    assert record.ticket_type.price_minor == expected


def test_missing_event_id_falls_back_to_the_requested_event() -> None:
    """A ticket without event_id belongs to the event its page was requested for."""
    ticket = spec_ticket()
    del ticket["event_id"]
    [record] = parse_page(envelope(ticket), source=SOURCE, event_id="71002")
    assert record.event_id == "71002"


@pytest.mark.parametrize(
    "payload",
    [
        {"success": False, "error": "boom"},
        {"success": True, "count": 0},
        {"success": True, "tickets": {"id": 1}},
        [],
        {"success": True, "tickets": [spec_ticket(id=None)]},
    ],
)
def test_malformed_envelopes_are_fatal(payload: object) -> None:
    """success:false, a missing tickets list or a ticket without an id fail the page fatally."""
    with pytest.raises(FatalProviderError):
        parse_page(payload, source=SOURCE)


def test_error_message_never_holds_personal_data() -> None:
    """A malformed ticket's error names the problem, not the holder's values."""
    with pytest.raises(FatalProviderError) as caught:
        parse_page(envelope(spec_ticket(email=["a@b.c"])), source=SOURCE)
    assert "a@b.c" not in str(caught.value)


def test_cursor_round_trips() -> None:
    """Positions survive encoding as opaque text, keyed by stream."""
    when = datetime(2026, 4, 27, 3, 5, 0, 250000, tzinfo=UTC)
    positions = {"event:71001": Position(when, 8800123), "event:71002": Position(when, 1)}
    text = encode_cursor(positions)
    assert text is not None
    assert decode_cursor(text) == positions
    assert '"2026-04-27T03:05:00.250000Z"' in text


@pytest.mark.parametrize("text", ["{", "[]", '{"event:1": "x"}', '{"event:1": ["", 1]}'])
def test_corrupt_cursor_is_fatal(text: str) -> None:
    """A cursor that is not ours fails loudly rather than restarting silently."""
    with pytest.raises(FatalProviderError):
        decode_cursor(text)


def test_position_orders_by_time_then_id() -> None:
    """Positions compare by updated_at, then ticket id."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert Position(when, 2) > Position(when, 1)
    assert Position(when + timedelta(microseconds=1), 1) > Position(when, 2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
ticket_like = st.fixed_dictionaries(
    {},
    optional={
        name: json_values
        for name in ("id", "status", "event_id", "order_id", "ticket_type", "updated_at", "used_at")
    }
    | {"firstname": json_values, "email": json_values, "lastname": json_values},
)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"success": json_values, "tickets": st.lists(ticket_like, max_size=3)}
        ),
    )
)
def test_parse_page_only_raises_notifier_errors(payload: object) -> None:
    """Whatever JSON arrives, parse_page returns records or raises a NotifierError."""
    with contextlib.suppress(NotifierError):
        parse_page(payload, source=SOURCE, event_id="1")


# -- the events list ----------------------------------------------------------------------


def test_events_are_read_from_the_list_envelope() -> None:
    page = {
        "success": True,
        "events": [
            {
                "id": 71001,
                "status": "active",
                "start_at": "2026-05-01T19:00:00.000+07:00",
                "end_at": "2026-05-01T23:00:00.000+07:00",
                "title": "Night",
            },
            {"id": 71002, "status": "draft", "end_at": None},
        ],
        "count": 2,
    }
    first, second = parse_events(page)
    assert first.event_id == "71001"
    assert first.end_at == datetime(2026, 5, 1, 16, 0, tzinfo=UTC)
    assert (second.event_id, second.status, second.start_at, second.end_at) == (
        "71002",
        "draft",
        None,
        None,
    )


def test_a_bare_list_of_events_is_read_too() -> None:
    assert [e.event_id for e in parse_events([{"id": 5}])] == ["5"]


@pytest.mark.parametrize(
    "payload",
    [{"success": False, "events": []}, {"events": {}}, {"events": [{"title": "no id"}]}, "x"],
)
def test_a_malformed_events_page_is_fatal(payload: object) -> None:
    with pytest.raises(FatalProviderError):
        parse_events(payload)
