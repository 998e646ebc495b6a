"""Specification of Ticket Tailor parsing, what a void means, sweep budget and cursor (pure)."""

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
from notifier.providers.tickettailor import (
    CheckIn,
    CursorState,
    EventWindow,
    OrderState,
    RequestShare,
    apply_order,
    decode_cursor,
    encode_cursor,
    parse_check_ins,
    parse_events,
    parse_issued_tickets,
    parse_order,
    parse_orders,
    rate_limit_pause,
    sweep_interval,
    sweep_latency,
    void_status,
)
from notifier.providers.tickettailor.wirecache import WireCache

SOURCE = SourceId("tt")
NOW = datetime(2020, 5, 1, 18, 0, tzinfo=UTC)


def seed_ticket(**overrides: Any) -> dict[str, Any]:
    """The API reference's first issued ticket (it_50198), every field as documented."""
    ticket: dict[str, Any] = {
        "object": "issued_ticket",
        "id": "it_50198",
        "barcode": "al4R5",
        "barcode_url": "https://www.tickettailor.com/userfiles/cache/barcode/qr/attendee/50198/42bf63ef2a055b91a62f",
        "created_at": 1587042697,
        "custom_questions": [],
        "description": "Free ticket",
        "email": "john@example.com",
        "event_id": "ev_40980",
        "full_name": None,
        "first_name": None,
        "last_name": None,
        "status": "valid",
        "updated_at": 1587042697,
        "voided_at": None,
        "order_id": "or_737352",
        "qr_code_url": "https://www.tickettailor.com/userfiles/cache/barcode/st/attendee/50198/42bf63ef2a055b91a62f",
    }
    ticket.update(overrides)
    return ticket


def seed_order(**overrides: Any) -> dict[str, Any]:
    """The API reference's order or_737352, with its two issued tickets."""
    date = {"date": "2020-05-01", "timezone": "+01:00", "time": "22:30", "unix": 1588368600}
    order: dict[str, Any] = {
        "object": "order",
        "id": "or_737352",
        "buyer_details": {
            "address": {"address_1": "The Queen's Walk", "postal_code": "SE1 7PB"},
            "custom_questions": [],
            "email": "john@example.com",
            "name": "John Doe",
            "phone": "07123456789",
        },
        "created_at": 1587042691,
        "currency": {"base_multiplier": 100, "code": "gbp"},
        "event_summary": {"id": "ev_40980", "end_date": date, "start_date": date},
        "issued_tickets": [seed_ticket(), seed_ticket(id="it_50199", barcode="dx2Fv")],
        "line_items": [{"object": "line_item", "id": "li_1505167", "type": "ticket"}],
        "payment_method": {"id": "pm_6691", "type": "paypal"},
        "refund_amount": 0,
        "status": "completed",
        "status_message": None,
        "subtotal": 0,
        "tax": 0,
        "total": 0,
        "txn_id": "ABCD1234",
    }
    order.update(overrides)
    return order


def seed_ticket_type(**overrides: Any) -> dict[str, Any]:
    """The API reference's ticket type tt_230626 plus the observed inventory counters."""
    ticket_type: dict[str, Any] = {
        "object": "ticket_type",
        "id": "tt_230626",
        "access_code": None,
        "booking_fee": 0,
        "description": None,
        "group_id": "tg_21099",
        "max_per_order": 100,
        "min_per_order": 1,
        "name": "4.20 Senior (62+) - Presale",
        "price": 600,
        "status": "on_sale",
        "sort_order": 50051,
        "type": "paid",
        "quantity": 10000,
    }
    ticket_type.update(overrides)
    return ticket_type


def seed_event(*types: dict[str, Any]) -> dict[str, Any]:
    """The API reference's event ev_1 (Tulip Festival, 18:00-22:30 +01:00) with ``types``."""
    return {
        "object": "event",
        "id": "ev_1",
        "created_at": 1583771084,
        "currency": "gbp",
        "start": {"iso": "2020-05-01T18:00:00+01:00", "unix": 1588352400},
        "end": {"iso": "2020-05-01T22:30:00+01:00", "unix": 1588368600},
        "name": "Hackney Downs 2020 Tulip Festival",
        "status": "published",
        "ticket_types": list(types),
        "tickets_available": "true",
        "timezone": "Europe/London",
    }


def page(*items: dict[str, Any], next_link: str | None = None) -> dict[str, Any]:
    """The documented list envelope."""
    return {"data": list(items), "links": {"next": next_link, "previous": None}}


def test_seed_issued_ticket_normalizes_every_field() -> None:
    """The API reference's issued ticket maps onto the TicketRecord fields."""
    [record] = parse_issued_tickets(page(seed_ticket()), source=SOURCE)
    assert (record.provider, record.source) == ("tickettailor", SOURCE)
    assert (record.ticket_id, record.event_id, record.order_id) == (
        "it_50198",
        "ev_40980",
        "or_737352",
    )
    assert record.ticket_type == TicketType(id="", name="Free ticket")
    assert record.holder == Holder(None, None, "john@example.com", None)
    assert record.status is TicketStatus.VALID
    assert record.status_raw == "valid"
    assert record.checked_in_at is None
    assert record.updated_at == datetime.fromtimestamp(1587042697, UTC)
    assert record.status_changed_at is None
    assert record.raw["barcode"] == "al4R5"
    assert record.raw["created_at"] == 1587042697


def test_seed_order_page_parses() -> None:
    """The API reference's order page parses into its refund amount and status."""
    payload = page(seed_order(), next_link="/v1/orders?starting_after=or_120")
    assert parse_orders(payload) == [OrderState("or_737352", 0, "completed")]
    assert parse_order(seed_order()) == OrderState("or_737352", 0, "completed")


def test_seed_orders_embedded_tickets_parse() -> None:
    """The issued tickets embedded in the API reference's order parse like the list's."""
    records = parse_issued_tickets(page(*seed_order()["issued_tickets"]), source=SOURCE)
    assert [r.ticket_id for r in records] == ["it_50198", "it_50199"]


def test_seed_event_gives_window_and_inventory() -> None:
    """The API reference's event: start/end from their unix fields, ticket types as inventory."""
    hidden = seed_ticket_type(id="tt_230625", status="hidden", price=800)
    [window], types = parse_events(page(seed_event(hidden, seed_ticket_type())), source=SOURCE)
    assert window == EventWindow(
        "ev_1",
        datetime.fromtimestamp(1588352400, UTC),
        datetime.fromtimestamp(1588368600, UTC),
        "GBP",
    )
    assert [(t.ticket_type_id, t.on_sale, t.price_minor) for t in types] == [
        ("tt_230625", False, 800),
        ("tt_230626", True, 600),
    ]
    assert types[1].current_stock == 10000
    assert types[1].currency == "GBP"
    assert types[1].event_id == "ev_1"


def test_inventory_counters_map_and_sell_out_is_computed() -> None:
    """Counters map to stock fields; holds make it sold out although status stays on_sale."""
    counters = {
        "quantity_total": 100,
        "quantity_issued": 60,
        "quantity_held": 30,
        "quantity_in_baskets": 10,
        "quantity": 30,
    }
    _, [record] = parse_events(page(seed_event(seed_ticket_type(**counters))), source=SOURCE)
    assert (record.total_stock, record.sold, record.reserved) == (100, 60, 40)
    assert record.current_stock == 0
    assert record.on_sale is True


@pytest.mark.parametrize(
    ("raw", "status"),
    [("valid", TicketStatus.VALID), ("voided", TicketStatus.VOID), ("void", TicketStatus.VOID)],
)
def test_both_void_spellings_map(raw: str, status: TicketStatus) -> None:
    """``voided`` (current) and ``void`` (the API reference's older schema) both mean VOID."""
    [record] = parse_issued_tickets(page(seed_ticket(status=raw)), source=SOURCE)
    assert record.status is status


def test_voided_at_is_the_status_time() -> None:
    """A voided ticket's ``voided_at`` becomes status_changed_at."""
    ticket = seed_ticket(status="voided", voided_at=1587050000)
    [record] = parse_issued_tickets(page(ticket), source=SOURCE)
    assert record.status_changed_at == datetime.fromtimestamp(1587050000, UTC)


@pytest.mark.parametrize(("flag", "checked_in"), [("true", True), ("false", False)])
def test_checked_in_string_flags(flag: str, checked_in: bool) -> None:
    """``checked_in`` is the string "true"/"false"; true takes updated_at as its time."""
    ticket = seed_ticket(checked_in=flag, updated_at=1588353000)
    [record] = parse_issued_tickets(page(ticket), source=SOURCE)
    expected = datetime.fromtimestamp(1588353000, UTC) if checked_in else None
    assert record.checked_in_at == expected


def test_unknown_status_is_kept_and_warned_once() -> None:
    """An unknown status becomes UNKNOWN with its raw value and one warning."""
    raw = "mystery-" + uuid.uuid4().hex[:6]
    with capture_logs() as logs:
        records = parse_issued_tickets(
            page(seed_ticket(status=raw), seed_ticket(id="it_2", status=raw)), source=SOURCE
        )
    assert {(r.status, r.status_raw) for r in records} == {(TicketStatus.UNKNOWN, raw)}
    warnings = [e for e in logs if e["event"] == "unknown_ticket_status"]
    assert len(warnings) == 1
    assert warnings[0]["status_raw"] == raw


def test_full_name_is_split_when_parts_are_missing() -> None:
    """Without first/last names, full_name is split at its first space."""
    ticket = seed_ticket(full_name="Mary Ann Smith")
    [record] = parse_issued_tickets(page(ticket), source=SOURCE)
    assert (record.holder.first_name, record.holder.last_name) == ("Mary", "Ann Smith")


def test_known_ticket_type_fills_name_price_currency() -> None:
    """A ticket_type_id known from /v1/events takes that type's name, price and currency."""
    known = {"tt_1": TicketType("tt_1", "VIP", 4500, "GBP")}
    ticket = seed_ticket(ticket_type_id="tt_1")
    [record] = parse_issued_tickets(page(ticket), source=SOURCE, types=known)
    assert record.ticket_type == known["tt_1"]


@pytest.mark.parametrize(
    ("fields", "meaning"),
    [
        ({}, TicketStatus.VOID),
        ({"status": "cancelled"}, TicketStatus.CANCELED),
        ({"refund_amount": 500}, TicketStatus.REFUNDED),
        ({"status": "cancelled", "refund_amount": 500}, TicketStatus.REFUNDED),
        ({"status": "pending"}, TicketStatus.VOID),
    ],
)
def test_what_a_void_means(fields: dict[str, Any], meaning: TicketStatus) -> None:
    """A void in a refunded order is a refund, in a cancelled one a cancellation."""
    assert void_status(parse_order(seed_order(**fields))) is meaning
    assert void_status(None) is TicketStatus.VOID


def test_only_a_voided_ticket_takes_its_orders_meaning() -> None:
    """A refund reaches the voided ticket, at its voided_at; a valid one stays valid."""
    [valid, voided] = parse_issued_tickets(
        page(seed_ticket(), seed_ticket(id="it_2", status="voided", voided_at=1587050000)),
        source=SOURCE,
    )
    refunded = OrderState("or_737352", 500, "completed")
    assert apply_order(valid, refunded) is valid
    assert apply_order(voided, refunded).status is TicketStatus.REFUNDED
    assert apply_order(voided, refunded).status_changed_at == datetime.fromtimestamp(
        1587050000, UTC
    )
    cancelled = OrderState("or_737352", 0, "cancelled")
    assert apply_order(voided, cancelled).status is TicketStatus.CANCELED
    assert apply_order(voided, None) is voided


def test_check_in_records_parse() -> None:
    """A check-in record gives its ticket, event, own check_in_at and quantity."""
    record = {
        "object": "check_in",
        "id": "ch_1",
        "issued_ticket_id": "it_50198",
        "event_id": "ev_1",
        "check_in_at": 1588353000,
        "created_at": 1588353060,
        "quantity": 1,
    }
    assert parse_check_ins(page(record)) == [
        CheckIn("ch_1", "it_50198", "ev_1", datetime.fromtimestamp(1588353000, UTC), 1)
    ]
    with pytest.raises(FatalProviderError):
        parse_check_ins(page({**record, "check_in_at": "2020-05-01T18:00:00Z"}))


def test_sweeps_share_half_the_budget_between_the_keys_sources() -> None:
    """Half of 5,000 requests / 30 min, split between the sources of one key."""
    share = RequestShare()
    share.join("a")
    assert share.sweep_rate() == pytest.approx(5000 / 1800 / 2)
    share.join("b")
    assert share.sweep_rate() == pytest.approx(5000 / 1800 / 4)
    assert sweep_interval(100, 5000 / 1800 / 2) == timedelta(seconds=72)
    # 100 pages: 72 s to the next sweep, 36 s to read it at 5,000 / 30 min, a 5 s poll
    assert sweep_latency(10_000) == timedelta(seconds=113)


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({}, 0.0),
        ({"X-Rate-Limit-Remaining": "4000", "X-Rate-Limit-Reset": "600"}, 0.0),
        ({"X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Reset": "42"}, 42.0),
        ({"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(int(NOW.timestamp()) + 9)}, 9.0),
        ({"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "99999"}, 900.0),
        ({"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "soon"}, 0.0),
    ],
)
def test_rate_limit_pause(headers: dict[str, str], pause: float) -> None:
    """Low remaining waits until the reset (seconds or unix time), capped at 15 min."""
    assert rate_limit_pause(headers, now=NOW) == pause


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {},
        {"data": None},
        {"data": ["ticket"]},
        page({k: v for k, v in seed_ticket().items() if k != "id"}),
        page(seed_ticket(status=3)),
        page(seed_ticket(updated_at="2020-05-01T18:00:00Z")),
        page(seed_ticket(checked_in="yes")),
        page(seed_ticket(email={"a": 1})),
    ],
)
def test_malformed_ticket_pages_raise_fatal(payload: object) -> None:
    """Anything off the documented shape fails the page with FatalProviderError."""
    with pytest.raises(FatalProviderError, match="malformed Ticket Tailor page"):
        parse_issued_tickets(payload, source=SOURCE)


def test_error_messages_do_not_echo_holder_data() -> None:
    """A malformed ticket's error names the problem, not the holder's personal data."""
    with pytest.raises(FatalProviderError) as caught:
        parse_issued_tickets(page(seed_ticket(email=["secret.person@x.io"])), source=SOURCE)
    assert "secret.person" not in str(caught.value)


def test_cursor_round_trips() -> None:
    """The cursor keeps feed positions, sweep progress and the per-event memories."""
    state = CursorState(
        ticket_anchors={"*": "it_9"},
        check_in_anchor="ch_4",
        swept_at=1588352400,
        sweep_cost=12,
        sweep_queue=["ev_1", "ev_2"],
        sweep_after="it_3",
        sweep_pages=4,
        check_ins={"ev_1": {"it_1": 1588353000}},
        voids={"ev_1": {"it_2": "refunded"}},
    )
    assert decode_cursor(encode_cursor(state)) == state
    assert decode_cursor(None) == CursorState()


def test_a_cursor_of_the_older_format_decodes() -> None:
    """An older cursor keeps its check-in times; the keys it no longer uses are ignored."""
    old = '{"tickets_since": 1, "closed_orders": {}, "check_ins": {"ev_1": {"it_1": 5}}}'
    assert decode_cursor(old) == CursorState(check_ins={"ev_1": {"it_1": 5}})


@pytest.mark.parametrize(
    "cursor",
    ["", "nope", "[]", '{"swept_at": "x"}', '{"voids": {"ev_1": {"it_1": "gone"}}}'],
)
def test_corrupt_cursor_is_fatal(cursor: str) -> None:
    """A cursor we cannot read fails loudly instead of silently starting over."""
    with pytest.raises(FatalProviderError, match="corrupt Ticket Tailor cursor"):
        decode_cursor(cursor)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
TICKETISH = st.builds(
    lambda extra: {**seed_ticket(), **extra},
    st.dictionaries(st.sampled_from(sorted(seed_ticket())), JSON, max_size=4),
)
ORDERISH = st.builds(
    lambda extra: {**seed_order(), **extra},
    st.dictionaries(st.sampled_from(["id", "status", "refund_amount", "updated_at"]), JSON),
)
TYPEISH = st.builds(
    lambda extra: seed_event(seed_ticket_type(**extra)),
    st.dictionaries(st.sampled_from(["id", "price", "quantity", "quantity_total"]), JSON),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_never_raises_outside_the_error_tree(payload: object) -> None:
    """Whatever JSON arrives, every parser returns or raises a NotifierError."""
    for parse in (
        lambda: parse_issued_tickets(payload, source=SOURCE),
        lambda: parse_orders(payload),
        lambda: parse_order(payload),
        lambda: parse_check_ins(payload),
        lambda: parse_events(payload, source=SOURCE),
    ):
        with contextlib.suppress(NotifierError):
            parse()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TICKETISH, max_size=3), st.lists(ORDERISH, max_size=2), TYPEISH)
def test_near_valid_pages_never_raise_outside_the_error_tree(
    tickets: list[dict[str, Any]], orders: list[dict[str, Any]], event: dict[str, Any]
) -> None:
    """Documented objects with some fields replaced by arbitrary JSON only raise NotifierError."""
    with contextlib.suppress(NotifierError):
        parse_issued_tickets(page(*tickets), source=SOURCE)
    with contextlib.suppress(NotifierError):
        parse_orders(page(*orders))
    with contextlib.suppress(NotifierError):
        parse_events(page(event), source=SOURCE)


@given(st.text(max_size=40))
def test_arbitrary_cursor_text_never_raises_outside_the_error_tree(cursor: str) -> None:
    """Whatever text comes back as a cursor, decoding returns or raises a NotifierError."""
    with contextlib.suppress(NotifierError):
        decode_cursor(cursor)


def test_the_wire_cache_keeps_what_a_record_is_parsed_from() -> None:
    """A cached ticket parses into the same record; an event's tickets drop together."""
    cache = WireCache()
    ticket = seed_ticket(event_id="ev_1", first_name="Ada", checked_in="true")
    cache.keep([ticket])
    cached = cache.get("it_50198")
    assert cached is not None
    assert "barcode_url" not in cached
    assert parse_issued_tickets(page(cached), source=SOURCE) == parse_issued_tickets(
        page(ticket), source=SOURCE
    )
    assert cache.get("it_50198", "ev_2") is None
    cache.drop(["ev_1"])
    assert cache.get("it_50198") is None
    assert len(cache) == 0
