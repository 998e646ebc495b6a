"""Specification of Shotgun page parsing and cursor text (pure, no I/O)."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from structlog.testing import capture_logs

from notifier.errors import FatalProviderError, NotifierError
from notifier.model import Holder, SourceId, TicketStatus, TicketType
from notifier.providers.shotgun import (
    TRACKED_WIRE_FIELDS,
    Position,
    decode_cursor,
    decode_state,
    encode_cursor,
    parse_page,
    parse_ticket,
    ticket_parser,
    wire_page,
)
from notifier.providers.shotgun.events import (
    CLOSE_OUT,
    PROBE_INTERVAL,
    EventWatch,
    SeenEvent,
    due_probes,
    observe,
)
from notifier.state import record_fingerprint

SOURCE = SourceId("shotgun-main")


def seed_ticket(**overrides: Any) -> dict[str, Any]:
    """A ticket carrying the example value of Shotgun's /tickets documentation for every field."""
    ticket: dict[str, Any] = {
        "ticket_id": 123456,
        "ticket_scan_code": "42564997260325",
        "ticket_scanned_at": "2025-02-21 17:29:52.462881",
        "ticket_updated_at": "2025-02-21 17:29:52.462881",
        "ticket_canceled_at": None,
        "ticket_status": "valid",
        "ticket_seating": None,
        "user_id": 46824,
        "deal_id": 12345678,
        "deal_sub_category": "Friday",
        "deal_title": "Early Bird",
        "deal_channel": "online",
        "deal_visibilities": ["public"],
        "deal_price": 3999,
        "deal_service_fee": 99,
        "deal_user_service_fee": 0,
        "deal_producer_cost": 0,
        "deal_vat_rate": 0.055,
        "order_id": 123456,
        "currency": "eur",
        "payment_method": "card",
        "utm_source": "shotgun",
        "utm_medium": "app",
        "ordered_at": "2025-02-20 17:29:52.462881",
        "event_id": 123456,
        "event_start_time": "2025-06-07 18:00:00",
        "event_end_time": "2025-06-09 16:00:00",
        "event_created_at": "2025-02-10 17:29:52.462881",
        "event_published_at": "2025-02-11 17:29:52.462881",
        "event_launched_at": "2025-02-15 17:29:52.462881",
        "event_canceled_at": None,
        "contact_id": 123456789,
        "contact_email": "a@shotgun.live",
        "contact_phone": None,
        "contact_first_name": "Antoine",
        "contact_last_name": "Rousseau",
        "contact_gender": None,
        "contact_company_name": "Shotgun",
        "contact_birthday": "1985-01-01",
        "contact_newsletter_optin": None,
        "contact_country": "France",
        "contact_postal_code": "31000",
        "contact_locality": "Toulouse",
    }
    ticket.update(overrides)
    return ticket


def page(*tickets: dict[str, Any], next_link: str | None = None) -> dict[str, Any]:
    """The documented envelope around ``tickets``."""
    return {
        "params": {"organizer_id": 173027, "event_id": 410006, "include_cohosted_events": True},
        "pagination": {"next": next_link},
        "data": list(tickets),
    }


def test_seed_example_ticket_normalizes_every_field() -> None:
    """The documented example ticket maps onto every TicketRecord field."""
    [record], next_link = parse_page(page(seed_ticket()), source=SOURCE)
    assert next_link is None
    assert (record.provider, record.source) == ("shotgun", SOURCE)
    assert (record.ticket_id, record.order_id, record.event_id) == ("123456", "123456", "123456")
    assert record.ticket_type == TicketType(
        id="12345678", name="Early Bird", price_minor=3999, currency="EUR"
    )
    assert record.holder == Holder("Antoine", "Rousseau", "a@shotgun.live", None)
    assert record.status is TicketStatus.VALID
    assert record.status_raw == "valid"
    stamp = datetime(2025, 2, 21, 17, 29, 52, 462881, tzinfo=UTC)
    assert record.checked_in_at == stamp
    assert record.updated_at == stamp
    assert record.status_changed_at is None
    assert record.raw["ticket_scan_code"] == "42564997260325"
    assert record.raw["deal_sub_category"] == "Friday"
    assert record.raw["event_start_time"] == "2025-06-07 18:00:00"
    assert set(record.raw) >= {"user_id", "contact_id", "deal_channel", "ordered_at"}


def test_next_link_is_returned_as_given() -> None:
    """``pagination.next`` comes back untouched for the client to check and follow."""
    link = "https://api.shotgun.live/tickets?organizer_id=173027&after=2025-05-20+12%3A47%3A26.622033_69246828"
    _, next_link = parse_page(page(seed_ticket(), next_link=link), source=SOURCE)
    assert next_link == link


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("valid", TicketStatus.VALID),
        ("resold", TicketStatus.RESOLD),
        ("refunded", TicketStatus.REFUNDED),
        ("canceled", TicketStatus.CANCELED),
        ("payment_plan_pending", TicketStatus.PENDING),
        ("pending_approval", TicketStatus.PENDING),
        ("pending_organizer_approval", TicketStatus.PENDING),
        ("rejected", TicketStatus.REJECTED),
    ],
)
def test_every_documented_status_maps(raw: str, status: TicketStatus) -> None:
    """Each documented status (and Smartboard's pending approval) has a canonical one."""
    [record], _ = parse_page(page(seed_ticket(ticket_status=raw)), source=SOURCE)
    assert record.status is status
    assert record.status_raw == raw


def test_unknown_status_is_kept_and_warned_once() -> None:
    """An unknown status becomes UNKNOWN with its raw value, and is logged once, not per ticket."""
    raw = "mystery_" + uuid.uuid4().hex
    tickets = [seed_ticket(ticket_id=n, ticket_status=raw) for n in (1, 2)]
    with capture_logs() as logs:
        records, _ = parse_page(page(*tickets), source=SOURCE)
    assert [r.status for r in records] == [TicketStatus.UNKNOWN, TicketStatus.UNKNOWN]
    assert records[0].status_raw == raw
    warnings = [e for e in logs if e["event"] == "unknown_ticket_status"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["status_raw"] == raw


def test_cancel_time_becomes_status_changed_at() -> None:
    """``ticket_canceled_at`` is the provider's time of a cancel or refund."""
    ticket = seed_ticket(ticket_status="canceled", ticket_canceled_at="2025-03-01 10:00:00.000001")
    [record], _ = parse_page(page(ticket), source=SOURCE)
    assert record.status_changed_at == datetime(2025, 3, 1, 10, 0, 0, 1, tzinfo=UTC)


def test_unscanned_and_sparse_ticket_parses() -> None:
    """Nullable fields may be null or absent: only identity, status and update time are required."""
    minimal = {
        "ticket_id": 7,
        "ticket_updated_at": "2025-02-21 17:29:52",
        "ticket_status": "valid",
        "deal_id": 1,
        "event_id": 2,
    }
    [record], _ = parse_page({"data": [minimal]}, source=SOURCE)
    assert record.checked_in_at is None
    assert record.order_id is None
    assert record.holder == Holder()
    assert record.ticket_type == TicketType(id="1")


def test_empty_data_parses_to_no_records() -> None:
    """A page with no tickets is valid and has no next link."""
    assert parse_page({"params": {}, "pagination": {"next": None}, "data": []}, source=SOURCE) == (
        [],
        None,
    )


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "data",
        {},
        {"data": None},
        {"data": {"ticket_id": 1}},
        {"data": ["ticket"]},
        {"data": [], "pagination": "next"},
        {"data": [], "pagination": {"next": 5}},
        page({k: v for k, v in seed_ticket().items() if k != "ticket_id"}),
        page({k: v for k, v in seed_ticket().items() if k != "ticket_updated_at"}),
        page(seed_ticket(ticket_id=None)),
        page(seed_ticket(ticket_id=True)),
        page(seed_ticket(ticket_id=1.5)),
        page(seed_ticket(ticket_status=3)),
        page(seed_ticket(ticket_updated_at="soon")),
        page(seed_ticket(ticket_scanned_at=["2025"])),
        page(seed_ticket(deal_price="39.99")),
        page(seed_ticket(contact_email={"a": 1})),
    ],
)
def test_malformed_payloads_raise_fatal(payload: object) -> None:
    """Anything off the documented shape fails the page with FatalProviderError."""
    with pytest.raises(FatalProviderError, match="malformed Shotgun page"):
        parse_page(payload, source=SOURCE)


def test_error_messages_do_not_echo_holder_data() -> None:
    """A malformed ticket's error names the problem, not the holder's personal data."""
    ticket = seed_ticket(contact_email=["secret.person@example.com"])
    with pytest.raises(FatalProviderError) as caught:
        parse_page(page(ticket), source=SOURCE)
    assert "secret.person" not in str(caught.value)
    for bad in (ticket, seed_ticket(ticket_id="", contact_email="secret.person@example.com")):
        with pytest.raises(FatalProviderError) as unparsed:
            wire_page(json.dumps(page(bad)).encode())
        assert "secret.person" not in str(unparsed.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from(sorted(seed_ticket()))
TICKETISH = st.builds(
    lambda base, extra: {**base, **extra},
    st.just(seed_ticket()),
    st.dictionaries(FIELD_NAMES, JSON, max_size=5),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_never_raises_outside_the_error_tree(payload: object) -> None:
    """Whatever JSON arrives, parse_page returns or raises a NotifierError, never anything else."""
    with contextlib.suppress(NotifierError):
        parse_page(payload, source=SOURCE)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TICKETISH | st.dictionaries(FIELD_NAMES, JSON), max_size=3), JSON)
def test_ticket_like_pages_never_raise_outside_the_error_tree(
    tickets: list[dict[str, Any]], pagination: object
) -> None:
    """Tickets with some fields replaced by arbitrary JSON still only raise NotifierError."""
    with contextlib.suppress(NotifierError):
        parse_page({"data": tickets, "pagination": pagination}, source=SOURCE)


def test_cursor_round_trips_in_shotgun_format() -> None:
    """The cursor is JSON of per-stream ``<updated_at>_<ticket_id>`` in Shotgun's own format."""
    stamp = datetime(2025, 5, 20, 12, 47, 26, 622033, tzinfo=UTC)
    positions = {"all": Position(stamp, 69246828)}
    cursor = encode_cursor(positions)
    assert cursor == '{"all":"2025-05-20 12:47:26.622033_69246828"}'
    assert decode_cursor(cursor) == positions
    assert decode_cursor(None) == {}
    assert encode_cursor({}) is None


def test_cursor_keeps_the_watched_events() -> None:
    """Watched events ride in the cursor under ``~events``; a cursor without them (written
    before they existed) decodes to none."""
    stamp = datetime(2025, 5, 20, 12, 47, 26, 622033, tzinfo=UTC)
    positions = {"all": Position(stamp, 69246828)}
    watches = {"410006": EventWatch(stamp, stamp, "sweeping")}
    assert decode_state(encode_cursor(positions, watches)) == (positions, watches)
    assert decode_state('{"all":"2025-05-20 12:47:26.622033_69246828"}') == (positions, {})


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not json",
        "[]",
        '{"all": 5}',
        '{"all": "x_y"}',
        '{"~events": []}',
        '{"~events": {"1": [null, null, "done"]}}',
        '{"~events": {"1": [null, null]}}',
    ],
)
def test_corrupt_cursor_is_fatal(cursor: str) -> None:
    """A cursor we cannot read fails loudly instead of silently re-reading from scratch."""
    with pytest.raises(FatalProviderError, match="corrupt Shotgun cursor"):
        decode_cursor(cursor)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TICKETISH | st.dictionaries(FIELD_NAMES, JSON), max_size=3), JSON)
def test_unparsed_pages_never_raise_outside_the_error_tree(
    tickets: list[dict[str, Any]], pagination: object
) -> None:
    """The lazy path fails like the eager one: reading a page, then parsing each ticket."""
    parse = ticket_parser(SOURCE)
    body = json.dumps({"data": tickets, "pagination": pagination}, allow_nan=True).encode()
    try:
        for item in wire_page(body).items:
            parse(item)
    except NotifierError:
        pass
    except ValueError:  # "not JSON": the HTTP client retries it; only non-finite numbers
        assert "NaN" in body.decode() or "Infinity" in body.decode()  # are not JSON here


def wire(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def test_unparsed_page_gives_ids_digests_and_the_next_link() -> None:
    """Ids are checked up front; equal tracked wire fields give equal digests."""
    scanned = seed_ticket(ticket_id=2, ticket_updated_at="2025-02-22 10:00:00")
    read = wire_page(wire(page(seed_ticket(ticket_id=1), scanned, next_link="https://x/next")))
    assert (read.ids, read.next_link) == (["1", "2"], "https://x/next")
    assert read.digests[0] == read.digests[1]
    unscanned = wire_page(wire(page(seed_ticket(ticket_scanned_at=None))))
    assert unscanned.digests[0] != read.digests[0]
    with pytest.raises(FatalProviderError, match="malformed Shotgun page"):
        wire_page(wire(page(seed_ticket(ticket_id=None))))
    with pytest.raises(ValueError, match="not JSON"):
        wire_page(b'{"data": [{"ticket_id": 1}')  # a truncated answer: retried


# Built valid, never filtered: a filter that rejects most draws fails Hypothesis's health
# check on a slow machine (the required ticket_updated_at is a _TIME, never None).
_TIME = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda moment: moment.isoformat(sep=" ", timespec="microseconds")
)
_TIMES = st.none() | _TIME
_NAMES = st.none() | st.text(max_size=8)
TRACKED_VALUES = st.fixed_dictionaries(
    {
        "ticket_status": st.sampled_from(["valid", "resold", "refunded", "canceled", "rejected"]),
        "ticket_scanned_at": _TIMES,
        "contact_first_name": _NAMES,
        "contact_last_name": _NAMES,
        "contact_email": _NAMES,
        "contact_phone": _NAMES,
        "deal_id": st.integers(min_value=1, max_value=10**6),
        "deal_title": _NAMES,
        "event_canceled_at": _TIMES,
    }
)
OTHER_VALUES = st.fixed_dictionaries(
    {
        "ticket_id": st.integers(min_value=1, max_value=10**9),
        "ticket_updated_at": _TIME,
        "ticket_canceled_at": _TIMES,
        "event_id": st.integers(min_value=1, max_value=10**6),
        "event_start_time": _TIMES,
        "deal_price": st.none() | st.integers(min_value=0, max_value=10**6),
        "order_id": st.none() | st.integers(min_value=1, max_value=10**9),
        "ticket_scan_code": st.text(max_size=14),
    }
)


@given(TRACKED_VALUES, OTHER_VALUES, OTHER_VALUES)
def test_the_tracked_state_comes_only_from_the_digested_wire_fields(
    tracked: dict[str, Any], one: dict[str, Any], other: dict[str, Any]
) -> None:
    """Two tickets that agree on TRACKED_WIRE_FIELDS normalize to the same tracked state,
    whatever else differs: so the poller may skip a ticket on an unchanged wire digest."""
    assert set(tracked) == set(TRACKED_WIRE_FIELDS)
    first, second = seed_ticket(**one, **tracked), seed_ticket(**other, **tracked)
    digests = wire_page(wire(page(first, second))).digests
    assert digests[0] == digests[1]
    first_record = parse_ticket(first, source=SOURCE)
    second_record = parse_ticket(second, source=SOURCE)
    assert record_fingerprint(first_record) == record_fingerprint(second_record)


# -- cancelled events


def test_a_cancelled_events_valid_ticket_reads_canceled_at_the_events_time() -> None:
    """``event_canceled_at`` turns a valid ticket canceled, timed by the event, marked so."""
    record = parse_ticket(
        seed_ticket(event_canceled_at="2025-06-01 10:00:00.000001"), source=SOURCE
    )
    assert record.status is TicketStatus.CANCELED
    assert record.status_changed_at == datetime(2025, 6, 1, 10, 0, 0, 1, tzinfo=UTC)
    assert record.raw["canceled_by"] == "event"
    assert record.status_raw == "valid"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("refunded", TicketStatus.REFUNDED), ("pending_approval", TicketStatus.PENDING)],
)
def test_a_cancelled_events_other_tickets_keep_their_status(
    status: str, expected: TicketStatus
) -> None:
    """Only valid tickets change: a refund stays a refund, a pending ticket pending."""
    ticket = seed_ticket(ticket_status=status, event_canceled_at="2025-06-01 10:00:00")
    record = parse_ticket(ticket, source=SOURCE)
    assert record.status is expected
    assert "canceled_by" not in record.raw


NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_events_read_count_as_probed_and_a_cancellation_starts_a_sweep() -> None:
    """A read event is not probed again before PROBE_INTERVAL; one shown cancelled sweeps."""
    watches: dict[str, EventWatch] = {}
    observe(watches, [SeenEvent("1", None, canceled=False)], NOW)
    assert due_probes(watches, NOW + PROBE_INTERVAL / 2) == []
    assert due_probes(watches, NOW + PROBE_INTERVAL) == ["1"]
    observe(watches, [SeenEvent("1", None, canceled=True)], NOW)
    assert watches["1"].state == "sweeping"
    assert due_probes(watches, NOW + PROBE_INTERVAL) == []


def test_ended_events_are_dropped_after_their_close_out() -> None:
    """An event ended more than CLOSE_OUT ago is forgotten; one without an end is kept."""
    watches = {"ended": EventWatch(NOW - CLOSE_OUT), "open": EventWatch(None)}
    assert due_probes(watches, NOW + timedelta(seconds=1)) == ["open"]
    assert set(watches) == {"open"}
