"""Which event types a webhook endpoint subscribed to (pure).

A pattern is an exact type (``ticket.checked_in``), a dotted prefix (``ticket.*``: every
``ticket.`` type, but not ``ticket_type.sold_out``) or ``*``. No patterns means every event
(docs/design.md §6a), so an endpoint declared without ``events`` misses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

WILDCARD = "*"
_PREFIX_SUFFIX = ".*"


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """True when ``event_type`` is selected by any pattern, or when there are none."""
    selected = list(patterns)
    return not selected or any(_matches_one(pattern, event_type) for pattern in selected)


def is_valid_pattern(pattern: str) -> bool:
    """True for ``*``, ``prefix.*`` and exact types: ``*`` may only stand alone or at the end.

    Config validation uses this so a typo such as ``ticket*`` or ``*.checked_in`` is
    reported at start-up instead of silently matching nothing.
    """
    if pattern == WILDCARD:
        return True
    stem = pattern.removesuffix(_PREFIX_SUFFIX)
    return bool(stem) and WILDCARD not in stem and not stem.endswith(".")


def _matches_one(pattern: str, event_type: str) -> bool:
    if pattern == WILDCARD:
        return True
    if pattern.endswith(_PREFIX_SUFFIX):
        # keep the dot: "ticket.*" must not select "ticket_type.*" or a bare "ticket"
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
