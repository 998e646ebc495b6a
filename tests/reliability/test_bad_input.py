"""Scenario 6, bad config and bad input: every broken config file is refused with a message
naming the file and the path of the problem; provider parsers fed malformed records never
fail outside the ``NotifierError`` hierarchy."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from notifier.config import load_config
from notifier.errors import ConfigError, NotifierError
from notifier.model import SourceId
from notifier.providers import eventpop, nuweb, shotgun, tickettailor

HERE = Path(__file__).parent / "configs"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "configs"
SECRET_ENV = {"RELIABILITY_SECRET": "s3cr3t-value-never-printed"}

# file -> fragments the message must contain (the path of each problem)
CORPUS: dict[Path, tuple[str, ...]] = {
    HERE / "wrong-types.yaml": ("defaults.poll_interval", "organizers[0].sources[0].organizer_id"),
    HERE / "unknown-key.yaml": ("organizers[0].sources[0].poll_intervall",),
    HERE / "missing-env.yaml": ("organizers[0].sources[0].token", "RELIABILITY_UNSET_TOKEN"),
    HERE / "duplicate-sources.yaml": ("main",),
    HERE / "invalid-url.yaml": ("webhooks[0].url", "organizers[0].sources[0].base_url"),
    FIXTURES / "bad-values.yaml": ("webhooks[0].secret", "CRM_WEBHOOK_SECRET"),
    FIXTURES / "syntax-error.yaml": (),
    FIXTURES / "not-a-mapping.yaml": (),
    FIXTURES / "empty.yaml": (),
}


@pytest.mark.parametrize("path", list(CORPUS), ids=lambda p: p.name)
def test_a_broken_config_is_refused_with_a_path_precise_message(path: Path) -> None:
    """Refused as a ConfigError naming the file and each problem's path."""
    with pytest.raises(ConfigError) as refused:
        load_config(path, SECRET_ENV)
    message = str(refused.value)
    assert path.name in message
    for fragment in CORPUS[path]:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = (
    "id",
    "ticket_id",
    "ticket_status",
    "ticket_updated_at",
    "ticket_scanned_at",
    "status",
    "used_at",
    "updated_at",
    "created_at",
    "checked_in",
    "event_id",
    "order_id",
    "barcode",
    "contact_email",
    "deal_id",
    "deal_title",
    "variable",
    "zoneData",
    "scannedOn",
    "name",
)
record = st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=8)
page = st.fixed_dictionaries(
    {},
    optional={
        "data": st.lists(record, max_size=4) | json_value,
        "tickets": st.lists(record, max_size=4) | json_value,
        "pagination": st.fixed_dictionaries({"next": st.none() | st.text(max_size=10)})
        | json_value,
        "links": json_value,
        "meta": json_value,
        "success": json_value,
    },
)
SOURCE = SourceId("fuzz")
PARSERS: dict[str, Any] = {
    "shotgun": lambda p: shotgun.parse_page(p, source=SOURCE),
    "eventpop": lambda p: eventpop.parse_page(p, source=SOURCE, event_id="7"),
    "nuweb entry": lambda p: nuweb.parse_entry_page(p, source=SOURCE, event_id="5"),
    "nuweb inventory": lambda p: nuweb.parse_inventory_page(p, source=SOURCE, event_id="5"),
    "tickettailor tickets": lambda p: tickettailor.parse_issued_tickets(p, source=SOURCE),
    "tickettailor orders": lambda p: tickettailor.parse_orders(p),
    "tickettailor events": lambda p: tickettailor.parse_events(p, source=SOURCE),
}


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=page | json_value)
def test_a_parser_fails_only_inside_the_error_hierarchy(name: str, payload: object) -> None:
    """Malformed pages and records: a result or a NotifierError, never another exception."""
    with contextlib.suppress(NotifierError):
        PARSERS[name](payload)
