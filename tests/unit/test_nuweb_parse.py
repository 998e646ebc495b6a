"""Specification of Nuweb page parsing, order-item merging, cursor text and rate pacing
(pure, no I/O)."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from structlog.testing import capture_logs

from notifier.errors import FatalProviderError, NotifierError
from notifier.model import Holder, SourceId, TicketId, TicketStatus, TicketType
from notifier.providers.nuweb import (
    ORDER_ITEMS_INTERVAL,
    ORDER_ITEMS_OVERLAP,
    RECONCILE_INTERVAL,
    NuwebCursor,
    OrderItemsWindow,
    RatePacer,
    decode_cursor,
    encode_cursor,
    format_nuweb_time,
    inventory_due,
    order_items_due,
    order_items_position,
    order_items_window,
    parse_entry_page,
    parse_inventory_page,
    sweep_due,
)
from notifier.providers.nuweb.orders import (
    OrderItem,
    OrderItemsNews,
    StatusNews,
    apply_order_items,
    fold_order_items,
    parse_order_items_page,
    rewind_points,
)
from tests.reference_specs import NUWEB_OPENAPI

SOURCE = SourceId("nuweb-main")
T0 = datetime(2021, 11, 22, 11, 59, tzinfo=UTC)

# The example answer of GET /v1/event-tickets in Nuweb's API reference ("Retrieve Event
# Tickets"), verbatim.
SEED_EVENT_TICKETS: dict[str, Any] = {
    "tickets": [
        {
            "id": 1,
            "itemId": 123,
            "eventId": 5,
            "name": "Ticket",
            "description": "Quas fuga odio in fuga enim.",
            "basePrice": 500,
            "totalPrice": 500,
            "resellerFee": 0,
            "processing_fee": 0,
            "totalStock": 500,
            "sold": 0,
            "reserved": 0,
            "validFrom": None,
            "validUntil": "2021-11-22T11:59:00.000000Z",
            "minOrderQuantity": 0,
            "maxOrderQuantity": 99,
            "multiplesOf": 0,
            "hideProcessingFee": False,
            "hideResellerFee": False,
            "currencyId": 1,
            "currencySymbol": "£",
            "currencyCode": "GBP",
            "hideFromBoxOffice": False,
            "hideFromShop": False,
            "hideWhenOffSale": False,
            "hideWhenOutOfStock": False,
            "onSaleFrom": "2021-11-23T10:00:00.000000Z",
            "onSaleUntil": "2021-11-26T17:00:00.000000Z",
            "currentStock": 100,
            "onSale": True,
            "seatingPlanAreas": [1, 2],
            "createdAt": "2021-11-22T11:59:00.000000Z",
            "updatedAt": "2021-11-22T11:59:00.000000Z",
            "deletedAt": None,
        }
    ],
    "timeslots": [
        {
            "id": 1,
            "name": "et non consequatur",
            "startAt": "2021-11-22T11:59:00.000000Z",
            "endAt": "2021-11-22T11:59:00.000000Z",
            "tickets": [[1]],
        }
    ],
    "links": {
        "first": "http://api.willms.com/v1/event-tickets?page=1",
        "last": "http://api.willms.com/v1/event-tickets?page=5",
        "prev": "http://api.willms.com/v1/event-tickets?page=2",
        "next": "http://api.willms.com/v1/event-tickets?page=5",
        "self": "http://api.willms.com/v1/event-tickets?page=3",
    },
    "meta": {"total": 50},
}


def spec_path() -> Path:
    """The official spec's excerpt kept in tests/fixtures/specs/."""
    return NUWEB_OPENAPI


@cache
def spec_example(path: str) -> dict[str, Any]:
    """The example 200 body the spec gives for ``GET path``."""
    document = json.loads(spec_path().read_text())
    content = document["paths"][path]["get"]["responses"]["200"]["content"]
    example: dict[str, Any] = content["application/json"]["schema"]["example"]
    return example


def entry(**overrides: Any) -> dict[str, Any]:
    """An entry ticket shaped like the spec's scanned example, with overrides."""
    item: dict[str, Any] = {
        "const": {"barcode": "DOWG4RGL07", "customerId": 3, "transactionId": "W5JHNB8T2L"}
        | {"type": "id et", "typeDuringSale": "id et", "typeId": 3},
        "id": 3,
        "stable": {"customerName": "Kendall Wiegand", "customerEmail": "k@example.com"}
        | {"price": 300},
        "variable": {"status": "scanned", "scannedOn": "2021-11-22T11:59:00.000000Z"},
        "zoneData": {"accessToZones": [{"id": 1}], "scans": []},
    }
    item.update(overrides)
    return item


def scan(direction: str, minute: int, scan_uuid: str | None = None) -> dict[str, Any]:
    """A zone scan ``minute`` minutes after T0."""
    return {
        "zoneId": 1,
        "scan": direction,
        "scannedOn": format_nuweb_time(T0 + timedelta(minutes=minute)),
        "uuid": scan_uuid or str(uuid.uuid4()),
    }


def one(item: dict[str, Any]) -> Any:
    """Parse a page holding ``item`` alone; return its record."""
    [record] = parse_entry_page({"content": [item]}, source=SOURCE, event_id="5").tickets
    return record


def test_seed_event_tickets_example_normalizes() -> None:
    """The reference's example: one ticket type with every inventory field, its timeslot, links."""
    page = parse_inventory_page(SEED_EVENT_TICKETS, source=SOURCE, event_id="5")
    ticket_type, timeslot = page.ticket_types
    assert (ticket_type.ticket_type_id, ticket_type.event_id, ticket_type.name) == (
        "1",
        "5",
        "Ticket",
    )
    assert (ticket_type.price_minor, ticket_type.currency) == (500, "GBP")
    assert (ticket_type.total_stock, ticket_type.sold, ticket_type.reserved) == (500, 0, 0)
    assert (ticket_type.current_stock, ticket_type.on_sale) == (100, True)
    assert ticket_type.sale_starts_at == datetime(2021, 11, 23, 10, tzinfo=UTC)
    assert ticket_type.sale_ends_at == datetime(2021, 11, 26, 17, tzinfo=UTC)
    assert (ticket_type.updated_at, ticket_type.deleted_at) == (T0, None)
    assert (timeslot.ticket_type_id, timeslot.name) == ("timeslot:1", "et non consequatur")
    assert page.next_link == "http://api.willms.com/v1/event-tickets?page=5"
    assert (page.total, page.items) == (50, 1)


def test_spec_sale_items_example_normalizes() -> None:
    """The spec's /sale-items example (``saleItems`` key) parses like /event-tickets'."""
    page = parse_inventory_page(spec_example("/sale-items"), source=SOURCE, event_id="5")
    assert [t.ticket_type_id for t in page.ticket_types] == ["1", "timeslot:1"]
    assert page.ticket_types[0].current_stock == 100


def test_spec_entry_tickets_example_normalizes() -> None:
    """The spec's /entry/tickets example: four tickets, two scanned, holders split, no next."""
    page = parse_entry_page(spec_example("/entry/tickets"), source=SOURCE, event_id="5")
    first = page.tickets[0]
    assert [t.ticket_id for t in page.tickets] == ["1", "2", "3", "4"]
    assert [t.checked_in_at for t in page.tickets] == [None, None, T0, T0]
    assert {t.status for t in page.tickets} == {TicketStatus.VALID}
    assert first.holder == Holder("Walton", "Buckridge", "walton.buckridge@example.com")
    assert first.ticket_type == TicketType("1", "ipsum debitis EDITED", 500)
    assert (first.order_id, first.event_id) == ("RO3PMNGE1N", "5")
    assert (page.list_end_time, page.next_link, page.total) == (T0, None, 4)


@pytest.mark.parametrize(
    ("raw", "status", "checked_in"),
    [
        ("sold", TicketStatus.VALID, None),
        ("scanned", TicketStatus.VALID, T0),
        ("refunded", TicketStatus.REFUNDED, T0),
        ("locked", TicketStatus.VOID, T0),
    ],
)
def test_every_documented_status_maps(
    raw: str, status: TicketStatus, checked_in: datetime | None
) -> None:
    """Each variable.status has a canonical status; only sold drops the scan time."""
    record = one(entry(variable={"status": raw, "scannedOn": format_nuweb_time(T0)}))
    assert (record.status, record.status_raw, record.checked_in_at) == (status, raw, checked_in)


def test_unknown_status_is_kept_and_warned_once() -> None:
    """An unknown status becomes UNKNOWN with its raw value and is logged once."""
    raw = "mystery_" + uuid.uuid4().hex
    items = [entry(id=n, variable={"status": raw}) for n in (1, 2)]
    with capture_logs() as logs:
        page = parse_entry_page({"content": items}, source=SOURCE, event_id="5")
    assert [t.status for t in page.tickets] == [TicketStatus.UNKNOWN] * 2
    assert page.tickets[0].status_raw == raw
    warnings = [e for e in logs if e["event"] == "unknown_ticket_status"]
    assert len(warnings) == 1
    assert (warnings[0]["log_level"], warnings[0]["status_raw"]) == ("warning", raw)


def test_out_after_in_is_checked_out() -> None:
    """The latest out scan, later than the latest in scan, is checked_out_at."""
    record = one(entry(zoneData={"scans": [scan("in", 0), scan("out", 30)]}))
    assert record.checked_out_at == T0 + timedelta(minutes=30)


def test_re_entry_clears_checked_out() -> None:
    """An in scan after the last out scan means the holder is inside again: no checkout."""
    record = one(entry(zoneData={"scans": [scan("in", 0), scan("out", 30), scan("in", 45)]}))
    assert record.checked_out_at is None


def test_repeated_scan_uuid_counts_once() -> None:
    """A re-synced scan repeats its uuid: the first copy wins."""
    dup = str(uuid.uuid4())
    scans = [scan("in", 0), scan("out", 30, dup), scan("out", 90, dup)]
    assert one(entry(zoneData={"scans": scans})).checked_out_at == T0 + timedelta(minutes=30)


def test_php_empty_variable_is_valid_and_unscanned() -> None:
    """``variable: []`` (PHP's empty object) reads as valid and not checked in."""
    record = one(entry(variable=[]))
    assert (record.status, record.status_raw, record.checked_in_at) == (
        TicketStatus.VALID,
        None,
        None,
    )


def test_single_word_name_is_a_first_name() -> None:
    """A one-word customerName becomes the first name; email stays; no phone exists."""
    record = one(entry(stable={"customerName": "Madonna", "customerEmail": None}))
    assert record.holder == Holder("Madonna", None, None, None)


def test_unlimited_timeslot_has_no_stock() -> None:
    """A timeslot with unlimited stock reports no stock counts (it can never sell out)."""
    body = {"tickets": [], "timeslots": [{"id": 9, "hasUnlimitedStock": True, "currentStock": 0}]}
    [slot] = parse_inventory_page(body, source=SOURCE, event_id="5").ticket_types
    assert (slot.total_stock, slot.current_stock) == (None, None)


def test_missing_envelope_is_fatal() -> None:
    """A body without ``content`` is a schema change: fatal, naming the missing field."""
    with pytest.raises(FatalProviderError, match="content"):
        parse_entry_page({"data": []}, source=SOURCE, event_id="5")


def test_cursor_round_trips() -> None:
    """Encoding then decoding a cursor gives back the same positions."""
    state = NuwebCursor(entry={"5": T0}, inventory={"5": T0}, inventory_read_at=T0)
    assert decode_cursor(encode_cursor(state)) == state
    assert encode_cursor(NuwebCursor()) is None


@pytest.mark.parametrize("text", ["{", "[]", '{"entry": {"5": ""}}', '{"entry": {"5": 7.5e99}}'])
def test_corrupt_cursor_is_fatal(text: str) -> None:
    """A cursor that cannot be read fails loudly rather than restarting silently."""
    with pytest.raises(FatalProviderError):
        decode_cursor(text)


@pytest.mark.parametrize(
    ("seconds_since", "due"), [(None, True), (10, False), (59.9, False), (60, True)]
)
def test_inventory_read_at_most_once_a_minute(seconds_since: float | None, due: bool) -> None:
    """Inventory is due when never read or when 60 s have passed (Nuweb's cache window)."""
    read_at = None if seconds_since is None else T0 - timedelta(seconds=seconds_since)
    assert inventory_due(NuwebCursor(inventory_read_at=read_at), T0) is due


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Remaining-Requests": "0", "X-Available-In-Seconds": "17"}, [17.0]),
        ({"X-Remaining-Requests": "0"}, [60.0]),
        ({"X-Remaining-Requests": "4", "X-Available-In-Seconds": "17"}, []),
        ({}, []),
    ],
)
async def test_pacer_waits_only_when_the_budget_is_spent(
    headers: dict[str, str], expected: list[float]
) -> None:
    """No request left: the next one waits X-Available-In-Seconds (else the whole window)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    pacer = RatePacer(clock=lambda: T0, sleep=sleep)
    pacer.observe(headers)
    await pacer.wait_turn()
    await pacer.wait_turn()
    assert slept == expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ENTRY_KEYS = st.sampled_from(["const", "stable", "variable", "zoneData", "id", "scans"])
INVENTORY_KEYS = st.sampled_from(["id", "eventId", "sold", "onSale", "updatedAt", "deletedAt"])


@given(JSON)
def test_arbitrary_json_never_raises_outside_the_error_tree(payload: object) -> None:
    """Whatever JSON arrives, both parsers return or raise a NotifierError."""
    with contextlib.suppress(NotifierError):
        parse_entry_page(payload, source=SOURCE, event_id="5")
    with contextlib.suppress(NotifierError):
        parse_inventory_page(payload, source=SOURCE, event_id="5")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.dictionaries(ENTRY_KEYS, JSON) | st.just(entry()), max_size=3),
    st.lists(st.dictionaries(INVENTORY_KEYS, JSON), max_size=3),
    JSON,
)
def test_shaped_pages_never_raise_outside_the_error_tree(
    items: list[dict[str, Any]], types: list[dict[str, Any]], links: object
) -> None:
    """Pages of almost-right items fail only with NotifierError."""
    with contextlib.suppress(NotifierError):
        parse_entry_page(
            {"content": items, "pagination": links, "listEndTime": "x"},
            source=SOURCE,
            event_id="5",
        )
    with contextlib.suppress(NotifierError):
        parse_inventory_page(
            {"saleItems": types, "links": links, "timeslots": types},
            source=SOURCE,
            event_id="5",
        )


# --------------------------------------------------------------------------- order items

CANCELED, RESOLD, VALID = TicketStatus.CANCELED, TicketStatus.RESOLD, TicketStatus.VALID


def item(
    item_id: str,
    *,
    minute: int = 1,
    cancelled: bool = False,
    refunded: int = 0,
    resale_of: tuple[str, ...] = (),
) -> OrderItem:
    """An order item of event 5 changed ``minute`` minutes after T0."""
    at = T0 + timedelta(minutes=minute)
    return OrderItem(
        item_id=TicketId(item_id),
        event_id="5",
        changed_at=at,
        created_at=at,
        cancelled_at=at if cancelled else None,
        refunded=refunded,
        resale_of=tuple(TicketId(old) for old in resale_of),
    )


def told(found: OrderItemsNews) -> dict[str, TicketStatus | None]:
    """The news of a fold, as ticket -> status (None: the entry ticket's own)."""
    return {ticket: news.status for ticket, news in found.news.items()}


@pytest.mark.parametrize(
    ("before", "items", "overrides", "news"),
    [
        pytest.param(
            {}, [item("1", cancelled=True)], {"1": CANCELED}, {"1": CANCELED}, id="cancel"
        ),
        pytest.param({}, [item("1", cancelled=True, refunded=500)], {}, {}, id="refund"),
        pytest.param({}, [item("1")], {}, {}, id="plain sale"),
        pytest.param(
            {"1": CANCELED}, [item("1", cancelled=True)], {"1": CANCELED}, {}, id="read again"
        ),
        pytest.param({"1": CANCELED}, [item("1")], {}, {"1": None}, id="cancellation undone"),
        pytest.param(
            {}, [item("2", resale_of=("1",))], {"1": RESOLD}, {"1": RESOLD, "2": None}, id="resale"
        ),
        pytest.param(
            {"1": RESOLD}, [item("2", resale_of=("1",))], {"1": RESOLD}, {}, id="resale again"
        ),
        pytest.param(
            {"1": RESOLD}, [item("1", cancelled=True)], {"1": RESOLD}, {}, id="resale is final"
        ),
        pytest.param(
            {},
            [item("1", cancelled=True), item("2", resale_of=("1",))],
            {"1": RESOLD},
            {"1": RESOLD, "2": None},
            id="cancelled then resold in one read",
        ),
        pytest.param(
            {},
            [item("2", resale_of=("1",)), item("1", cancelled=True)],
            {"1": RESOLD},
            {"1": RESOLD, "2": None},
            id="resold then its own item read",
        ),
    ],
)
def test_fold_order_items(
    before: dict[str, TicketStatus],
    items: list[OrderItem],
    overrides: dict[str, TicketStatus],
    news: dict[str, TicketStatus | None],
) -> None:
    """Cancelled without refund -> canceled; a resale's old item -> resold, final; a refund
    or a plain sale -> nothing; an item read again tells nothing new."""
    found = fold_order_items({TicketId(k): v for k, v in before.items()}, items)
    assert found.overrides == overrides
    assert told(found) == news


def test_news_carry_the_time_and_the_links() -> None:
    """A cancellation carries cancelledAt; a resale its purchase time and both ticket ids."""
    cancel = fold_order_items({}, [item("1", minute=3, cancelled=True)]).news[TicketId("1")]
    assert (cancel.at, cancel.seen_at) == (T0 + timedelta(minutes=3), T0 + timedelta(minutes=3))
    assert cancel.details == {"cancelledAt": (T0 + timedelta(minutes=3)).isoformat()}
    news = fold_order_items({}, [item("9", minute=4, resale_of=("1",))]).news
    old, new = news[TicketId("1")], news[TicketId("9")]
    assert (old.at, old.details) == (T0 + timedelta(minutes=4), {"resoldAs": "9"})
    assert new.details == {"resaleOf": "1"}


def test_apply_imposes_statuses_on_entry_records() -> None:
    """News set status, its time and details; a standing override sets the status alone;
    other records pass through untouched."""
    records = [one(entry(id=n, variable={"status": "sold"})) for n in (1, 2, 3)]
    found = OrderItemsNews(
        overrides={TicketId("1"): CANCELED, TicketId("2"): RESOLD},
        news={
            TicketId("1"): StatusNews(CANCELED, T0, "5", T0, {"cancelledAt": "x"}),
        },
    )
    first, second, third = apply_order_items(records, found)
    assert (first.status, first.status_changed_at, first.raw["cancelledAt"]) == (CANCELED, T0, "x")
    assert first.raw["barcode"] == "DOWG4RGL07"
    assert (second.status, second.status_changed_at) == (RESOLD, None)
    assert third is records[2]


def test_apply_lifts_an_override_to_the_entry_status() -> None:
    """News with no status (a cancellation undone) leaves the entry ticket's own status."""
    [record] = apply_order_items(
        [one(entry(variable={"status": "sold"}))],
        OrderItemsNews({}, {TicketId("3"): StatusNews(None, T0, "5", T0)}),
    )
    assert record.status is VALID


def test_rewind_points_per_event() -> None:
    """Entry tickets are re-read from the earliest change less the overlap, per event; an
    item without event concerns all, one of another event none, one without a time falls
    back."""
    news = {
        TicketId("1"): StatusNews(CANCELED, T0, "5", T0 + timedelta(minutes=2)),
        TicketId("2"): StatusNews(CANCELED, T0, "5", T0 + timedelta(minutes=1)),
        TicketId("3"): StatusNews(CANCELED, T0, "7", T0),
        TicketId("4"): StatusNews(CANCELED, T0, "99", T0 - timedelta(days=1)),
    }
    points = rewind_points(news, event_ids=["5", "6"], overlap=timedelta(seconds=30), fallback=T0)
    assert points == {"5": T0 + timedelta(seconds=30)}
    undated = {TicketId("1"): StatusNews(CANCELED, None, None, None)}
    assert rewind_points(undated, event_ids=["5", "6"], overlap=timedelta(0), fallback=T0) == {
        "5": T0,
        "6": T0,
    }
    assert rewind_points(undated, event_ids=["5"], overlap=timedelta(0), fallback=None) == {
        "5": None
    }


LATER = T0 + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("state", "window"),
    [
        pytest.param(NuwebCursor(), OrderItemsWindow(None, None, None), id="never read"),
        pytest.param(
            NuwebCursor(order_items=LATER, order_items_read_at=LATER),
            OrderItemsWindow(LATER - ORDER_ITEMS_OVERLAP, LATER, None),
            id="position less the overlap",
        ),
        pytest.param(
            NuwebCursor(entry={"5": LATER, "6": T0}),
            OrderItemsWindow(T0, T0, T0),
            id="older cursor: history begins at its earliest entry position",
        ),
        pytest.param(
            NuwebCursor(order_items=LATER, order_items_read_at=LATER, order_items_since=T0),
            OrderItemsWindow(LATER - ORDER_ITEMS_OVERLAP, LATER, T0),
            id="upgraded cursor keeps its beginning",
        ),
        pytest.param(
            NuwebCursor(entry={"5": T0}, order_items_read_at=T0),
            OrderItemsWindow(None, None, None),
            id="read before and found nothing",
        ),
    ],
)
def test_order_items_window(state: NuwebCursor, window: OrderItemsWindow) -> None:
    """Where an order-items read starts (lastUpdated), the floor of its next position, and
    where the source's order-item history begins."""
    assert order_items_window(state) == window


def test_history_before_since_is_never_news() -> None:
    """A cancellation or resale made before the source's order-item history began is
    ignored, even when its item is read again; one made since is news."""
    since = T0 + timedelta(minutes=5)
    items = [
        item("1", minute=1, cancelled=True),
        item("3", minute=2, resale_of=("2",)),
        item("4", minute=6, cancelled=True),
    ]
    found = fold_order_items({}, items, since=since)
    assert found.overrides == {"4": CANCELED}
    assert told(found) == {"4": CANCELED}


def test_order_items_position_is_the_newest_change_less_the_read_time() -> None:
    """A long read moves its position back by its duration; never below the floor."""
    items = [item("1", minute=1), item("2", minute=5)]
    minute = timedelta(minutes=1)
    assert order_items_position(items, floor=None, elapsed=minute) == T0 + 4 * minute
    assert order_items_position(items, floor=T0 + 9 * minute, elapsed=minute) == T0 + 9 * minute
    assert order_items_position([], floor=T0, elapsed=minute) == T0


@pytest.mark.parametrize(
    ("entry_read", "reconciled", "hours_since", "due"),
    [
        (False, False, None, False),  # a first read is full anyway
        (True, False, None, False),  # an older cursor: the schedule starts now
        (True, True, 5.9, False),
        (True, True, 6, True),
        (True, True, -1, True),  # the clock went back
    ],
)
def test_sweep_due_every_six_hours(
    entry_read: bool, reconciled: bool, hours_since: float | None, due: bool
) -> None:
    """The adapter's own reconcile sweep comes every RECONCILE_INTERVAL."""
    at = None if hours_since is None else T0 - timedelta(hours=hours_since)
    state = NuwebCursor(
        entry={"5": T0} if entry_read else {}, reconciled_at=at if reconciled else None
    )
    assert sweep_due(state, T0, RECONCILE_INTERVAL) is due


def test_order_items_due_once_a_minute() -> None:
    """Order items are read when never read, a minute on, or on a clock gone back."""
    assert order_items_due(NuwebCursor(), T0, ORDER_ITEMS_INTERVAL)
    read = NuwebCursor(order_items_read_at=T0)
    assert not order_items_due(read, T0 + timedelta(seconds=59), ORDER_ITEMS_INTERVAL)
    assert order_items_due(read, T0 + ORDER_ITEMS_INTERVAL, ORDER_ITEMS_INTERVAL)
    assert order_items_due(read, T0 - timedelta(seconds=1), ORDER_ITEMS_INTERVAL)


def test_cursor_round_trips_with_order_items() -> None:
    """Order-item position, read time, overrides and the sweep time survive as text."""
    state = NuwebCursor(
        entry={"5": T0},
        order_items=T0,
        order_items_read_at=T0,
        order_items_since=T0,
        overrides={TicketId("12"): CANCELED, TicketId("3"): RESOLD},
        reconciled_at=T0,
    )
    text = encode_cursor(state)
    assert text is not None
    assert json.loads(text)["overrides"] == {"canceled": ["12"], "resold": ["3"]}
    assert decode_cursor(text) == state


@pytest.mark.parametrize(
    "overrides", ['{"voided": ["1"]}', '{"canceled": "1"}', '{"canceled": [1.5]}', '"x"']
)
def test_corrupt_overrides_are_fatal(overrides: str) -> None:
    """Overrides that are not ours fail loudly, like a corrupt position."""
    with pytest.raises(FatalProviderError):
        decode_cursor('{"entry": {}, "overrides": ' + overrides + "}")


def test_order_items_page_skips_types_never_admitted() -> None:
    """Fees and other non-ticket items are not read as tickets, but count toward the total."""
    rows = [
        {"id": 1, "attributes": {"type": "ticket", "cancelledAt": format_nuweb_time(T0)}},
        {"id": 2, "attributes": {"type": "fee"}},
        {"id": 3, "attributes": {"type": "season_ticket"}},
    ]
    page = parse_order_items_page({"data": rows, "links": [], "meta": {"total": 3}})
    assert [i.item_id for i in page.items] == ["1", "3"]
    assert (page.rows, page.total, page.next_link) == (3, 3, None)
    assert page.items[0].canceled


@pytest.mark.parametrize(
    "replaced",
    [
        {"type": "resale", "orderItemId": 7, "orderId": 52},
        [{"type": "resale", "orderItemId": 7, "orderId": 52}],
    ],
    ids=["object (the example)", "array (the schema)"],
)
def test_replaced_order_item_is_read_in_both_shapes(replaced: object) -> None:
    """The spec's example sends one object, its schema an array: both name the old item."""
    row = {"id": 8, "attributes": {"replacedOrderItem": replaced}}
    [parsed] = parse_order_items_page({"data": [row]}).items
    assert parsed.resale_of == ("7",)


def test_a_modification_is_not_a_resale() -> None:
    """replacedOrderItem of type modification resolds nothing."""
    row = {"id": 8, "attributes": {"replacedOrderItem": {"type": "modification", "orderItemId": 7}}}
    [parsed] = parse_order_items_page({"data": [row]}).items
    assert parsed.resale_of == ()


def test_order_items_page_without_data_is_fatal() -> None:
    """A body without ``data`` is a schema change: fatal, naming the field."""
    with pytest.raises(FatalProviderError, match="data"):
        parse_order_items_page({"content": []})


ORDER_ITEM_KEYS = st.sampled_from(
    ["id", "attributes", "meta", "type", "cancelledAt", "refunded", "replacedOrderItem"]
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(JSON, st.lists(st.dictionaries(ORDER_ITEM_KEYS, JSON), max_size=3))
def test_order_items_pages_never_raise_outside_the_error_tree(
    payload: object, rows: list[dict[str, Any]]
) -> None:
    """Whatever JSON arrives, the order-items parser returns or raises a NotifierError."""
    with contextlib.suppress(NotifierError):
        parse_order_items_page(payload)
    attributes = [{"id": 1, "attributes": row} for row in rows]
    with contextlib.suppress(NotifierError):
        parse_order_items_page({"data": rows + attributes, "links": payload, "meta": payload})
