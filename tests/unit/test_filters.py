"""Webhook endpoint event filters."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from notifier.sinks.filters import is_valid_pattern, matches

event_types = st.from_regex(r"[a-z_]{1,12}(\.[a-z_]{1,12}){0,2}", fullmatch=True)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["ticket.checked_in"], "ticket.checked_in", True),
        (["ticket.checked_in"], "ticket.checked_out", False),
        (["ticket.checked_in", "ticket.voided"], "ticket.voided", True),
        (["ticket.*"], "ticket.checked_in", True),
        (["ticket.*"], "ticket.check_in_reverted", True),
        (["ticket.*"], "ticket_type.sold_out", False),
        (["ticket.*"], "ticket", False),
        (["ticket_type.*"], "ticket_type.price_changed", True),
        (["ticket_type.*"], "ticket.issued", False),
        (["*"], "ticket_type.removed", True),
        (["ticket.voided", "ticket_type.*"], "ticket_type.sold_out", True),
        (["Ticket.checked_in"], "ticket.checked_in", False),
        (["ticket.type_changed"], "ticket.type_changed", True),
        (["ticket.*"], "ticket.type_changed", True),
        (["ticket_type.*"], "ticket.type_changed", False),
    ],
)
def test_matches_table(patterns: list[str], event_type: str, expected: bool) -> None:
    """Exact types, dotted prefixes and * select the types the table says."""
    assert matches(patterns, event_type) is expected


@given(event_type=event_types)
def test_no_patterns_means_every_event(event_type: str) -> None:
    """An endpoint declared without events receives every event (docs/design.md §6a)."""
    assert matches([], event_type)
    assert matches((), event_type)


@given(event_type=event_types)
def test_star_and_exact_type_always_match(event_type: str) -> None:
    """'*' and the type itself select any type."""
    assert matches(["*"], event_type)
    assert matches([event_type], event_type)


@given(event_type=event_types)
def test_own_prefix_matches_children(event_type: str) -> None:
    """'<type>.*' selects every type nested under <type>, never <type> itself."""
    assert matches([f"{event_type}.*"], f"{event_type}.anything")
    assert not matches([f"{event_type}.*"], event_type)


def test_patterns_may_be_any_iterable() -> None:
    """A generator of patterns is read fully, not mistaken for 'no patterns'."""
    assert not matches((p for p in ["ticket.voided"]), "ticket.issued")
    assert matches((p for p in ["ticket.voided"]), "ticket.voided")


@pytest.mark.parametrize(
    ("pattern", "valid"),
    [
        ("*", True),
        ("ticket.*", True),
        ("ticket.checked_in", True),
        ("ticket_type.*", True),
        ("", False),
        (".*", False),
        ("ticket*", False),
        ("*.checked_in", False),
        ("ticket.*.*", False),
        ("ticket.", False),
    ],
)
def test_is_valid_pattern(pattern: str, valid: bool) -> None:
    """Only '*', 'prefix.*' and exact types are accepted as patterns."""
    assert is_valid_pattern(pattern) is valid
