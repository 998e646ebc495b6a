"""Nuweb's pure parts added for discovery, continuations and per-stream back-off: the
cursor round-trips them, events are followed until their close-out, a stream backs off
exponentially up to a cap, and a next link only ever gives a path and query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, strategies as st

from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.model import TicketId, TicketStatus
from notifier.providers.nuweb import (
    CLOSE_OUT,
    EventSpan,
    NuwebCursor,
    Resume,
    decode_cursor,
    encode_cursor,
    link_target,
)
from notifier.providers.nuweb.cursor import order_items_window
from notifier.providers.nuweb.events import followed, is_live, parse_events_page
from notifier.providers.nuweb.streams import BACKOFF_BASE, BACKOFF_CAP, StreamHealth

T = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)


def test_the_cursor_round_trips_discovery_holders_and_continuations() -> None:
    state = NuwebCursor(
        entry={"5": T},
        overrides={TicketId("3"): TicketStatus.CANCELED},
        named_holders={TicketId("4"): "Ada Lovelace"},
        inventory_endpoint="sale-items",
        events={"5": EventSpan(T, T + timedelta(hours=3)), "6": EventSpan(None, None)},
        events_read_at=T,
        resume={
            "entry:5": Resume("/v1/entry/tickets?page=3", T, T, None),
            "order_items": Resume("/v1/order-items?page=2", None, T, T),
        },
    )
    assert decode_cursor(encode_cursor(state)) == state


@pytest.mark.parametrize(
    "text",
    [
        '{"resume": {"entry:5": {"next": 3}}}',
        '{"resume": {"entry:5": {}}}',
        '{"named_holders": {"4": ""}}',
        '{"events": {"5": {"start": "not a time"}}}',
    ],
)
def test_a_corrupt_new_key_is_fatal(text: str) -> None:
    with pytest.raises(FatalProviderError):
        decode_cursor(text)


def test_events_are_followed_until_their_close_out() -> None:
    listed = {
        "ended-long-ago": EventSpan(T - timedelta(days=3), T - CLOSE_OUT - timedelta(minutes=1)),
        "ended-tonight": EventSpan(T - timedelta(hours=5), T - timedelta(hours=1)),
        "upcoming": EventSpan(T + timedelta(days=30), T + timedelta(days=30, hours=4)),
        "no-end": EventSpan(None, None),
        "deleted": EventSpan(T, T + timedelta(hours=1), deleted=True),
    }
    assert set(followed(listed, T)) == {"ended-tonight", "upcoming", "no-end"}


def test_the_events_page_parses_the_spec_shape() -> None:
    page = parse_events_page(
        {
            "companyId": 12,
            "events": [
                {"id": 5, "start": "2026-06-01T17:00:00.000000Z", "end": None},
                {"id": 6, "deletedAt": "2026-06-01T10:00:00.000000Z"},
            ],
            "links": {"next": "http://api.willms.com/v1/events?page=2"},
            "meta": {"total": 3},
        }
    )
    assert page.events["5"] == EventSpan(T - timedelta(hours=1), None)
    assert page.events["6"].deleted
    assert (page.rows, page.total, page.next_link) == (
        2,
        3,
        "http://api.willms.com/v1/events?page=2",
    )
    with pytest.raises(FatalProviderError):
        parse_events_page({"events": [{"id": True}]})


def test_a_failing_stream_backs_off_exponentially_to_a_cap_and_recovers() -> None:
    health = StreamHealth("src")
    error = RetriableProviderError("HTTP 503", status=503)
    now = T
    waits = []
    for _ in range(8):
        health.failed("order_items", error, now)
        assert not health.due("order_items", now)
        wait = timedelta(0)
        while not health.due("order_items", now + wait):
            wait += timedelta(seconds=15)
        waits.append(wait)
        now += wait
    assert waits[0] == BACKOFF_BASE
    assert waits[1] == 2 * BACKOFF_BASE
    assert waits[-1] == BACKOFF_CAP
    assert health.due("entry:5", T)  # other streams are untouched
    health.succeeded("order_items")
    assert not health.failing("order_items")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("http://api.willms.com/v1/event-tickets?page=5", "/v1/event-tickets?page=5"),
        ("https://evil.example:8443/v1/events?page=2&x=1", "/v1/events?page=2&x=1"),
        ("/v1/order-items?page=3", "/v1/order-items?page=3"),
        ("http://host/", "/"),
        ("?page=2", "/v1/events?page=2"),
        ("events?page=2", "/v1/events?page=2"),
    ],
)
def test_a_next_link_gives_its_path_and_query(link: str, target: str) -> None:
    assert link_target(link, "/v1/events") == target


@given(st.text(max_size=80))
def test_any_next_link_gives_a_path_or_our_own_error(link: str) -> None:
    """Whatever the link, the result is a path (joined to the configured origin by the
    client, so it never names another host) or a FatalProviderError."""
    try:
        target = link_target(link)
    except FatalProviderError:
        return
    assert target.startswith("/")


def test_times_at_the_calendars_ends_never_overflow() -> None:
    """A provider's year 1 or 9999 is followed or not, never an OverflowError."""
    page = parse_events_page(
        {
            "events": [
                {"id": 1, "start": "0001-01-01T00:00:00.000000Z", "end": "9999-12-31T23:59:59Z"},
                {"id": 2, "start": "9999-12-31T23:59:59Z", "end": "9999-12-31T23:59:59Z"},
            ]
        }
    )
    assert set(followed(page.events, T)) == {"1", "2"}
    assert is_live(page.events["1"], T)
    assert not is_live(page.events["2"], T)
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    assert order_items_window(NuwebCursor(order_items=year_one)).start == year_one
