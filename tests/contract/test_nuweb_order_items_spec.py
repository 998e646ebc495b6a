"""Nuweb's published spec for ``/v1/order-items``, held against what the adapter assumes.

Each test pins one thing the adapter relies on (its examples parse, the join of entry
tickets and order items, the documented filter and paging rules), so a new version of the
spec that changes it fails here rather than in production.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from notifier.model import SourceId, TicketId, TicketStatus
from notifier.providers.nuweb import parse_entry_page
from notifier.providers.nuweb.collect import ORDER_ITEMS_LIMIT
from notifier.providers.nuweb.orders import (
    ENTRY_ITEM_TYPES,
    fold_order_items,
    parse_order_items_page,
)
from tests.reference_specs import NUWEB_OPENAPI


@cache
def operation(path: str) -> dict[str, Any]:
    """The spec's ``GET path`` operation."""
    document = json.loads(NUWEB_OPENAPI.read_text())
    found: dict[str, Any] = document["paths"][path]["get"]
    return found


def example(path: str) -> dict[str, Any]:
    """The example 200 body of ``GET path``."""
    content = operation(path)["responses"]["200"]["content"]["application/json"]
    found: dict[str, Any] = content["schema"]["example"]
    return found


def parameter(path: str, name: str) -> dict[str, Any]:
    """One documented query parameter of ``GET path``."""
    found: list[dict[str, Any]] = [
        p for p in operation(path)["parameters"] if p.get("name") == name
    ]
    [only] = found
    return only


def test_the_order_items_example_parses() -> None:
    """The example item: event 123, not cancelled, a resale of item 123."""
    page = parse_order_items_page(example("/order-items"))
    [item] = page.items
    assert (item.item_id, item.event_id, item.canceled) == ("1", "123", False)
    assert item.resale_of == ("123",)
    assert (page.total, page.next_link) == (1, "http://api.willms.com/v1/customers?page=5")


def test_the_order_items_example_resolds_the_item_it_replaced() -> None:
    """Folded, the example makes item 123 resold and links it to item 1."""
    found = fold_order_items({}, parse_order_items_page(example("/order-items")).items)
    assert found.overrides == {TicketId("123"): TicketStatus.RESOLD}
    assert found.news[TicketId("123")].details == {"resoldAs": "1"}


def test_entry_tickets_and_order_items_join_on_id() -> None:
    """The examples describe one purchase twice: entry ticket 1 and order item 1 share the
    barcode, the customer and the order (its reference in the included order)."""
    [ticket, *_] = parse_entry_page(
        example("/entry/tickets"), source=SourceId("spec"), event_id="123"
    ).tickets
    body = example("/order-items")
    [item] = body["data"]
    [order] = [inc for inc in body["included"] if inc["type"] == "orders"]
    assert ticket.ticket_id == str(item["id"])
    assert ticket.raw["barcode"] == item["attributes"]["barcode"]
    assert ticket.raw["customerId"] == item["attributes"]["customerId"]
    assert ticket.order_id == order["attributes"]["reference"]
    assert order["id"] == item["relationships"]["orders"]["data"]["id"]


def test_last_updated_is_inclusive() -> None:
    """``lastUpdated`` is documented "on or after": the adapter re-reads its position."""
    assert "on or after" in parameter("/order-items", "lastUpdated")["description"]


def test_the_page_limit_is_the_documented_maximum() -> None:
    """The adapter asks for the documented maximum page size."""
    description = parameter("/order-items", "limit")["description"]
    assert "maximum (and default) is " + str(ORDER_ITEMS_LIMIT) in description


def test_with_trashed_and_the_filters_exist() -> None:
    """The filters the adapter sends are documented, with the values it sends."""
    assert parameter("/order-items", "withTrashed")["schema"]["enum"] == ["true", "false"]
    assert "comma separated" in parameter("/order-items", "eventIds")["description"]
    types = parameter("/order-items", "type")["schema"]["items"]["enum"]
    assert set(ENTRY_ITEM_TYPES) <= set(types)


def test_entry_item_types_are_the_admitted_ones() -> None:
    """Entry tickets are of the types the adapter reads order items of (products aside)."""
    schema = operation("/entry/tickets")["responses"]["200"]["content"]["application/json"]
    item_types = schema["schema"]["properties"]["content"]["items"]["properties"]["itemType"]
    assert set(item_types["enum"]) - {"product"} == set(ENTRY_ITEM_TYPES)
