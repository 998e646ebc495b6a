"""docs/events.md's example payloads are what the code emits, and valid against the schema."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from notifier.events import CHANGE_EVENT_ADAPTER, EVENT_TYPES
from notifier.examples import catalogue_markdown, example_payloads

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _examples_section() -> str:
    text = EVENTS_DOC.read_text()
    match = re.search(r"<!-- examples:start -->\n(.*)<!-- examples:end -->", text, re.DOTALL)
    assert match is not None, "docs/events.md lost its examples markers"
    return match.group(1)


def test_documented_examples_match_the_generator() -> None:
    """If this fails, regenerate docs/events.md's section: `python -m notifier.examples`."""
    assert _examples_section().strip() == catalogue_markdown().strip()


def test_every_example_validates_as_its_type() -> None:
    """Each example parses as a ChangeEvent of the type it documents."""
    examples = example_payloads()
    assert set(examples) == set(EVENT_TYPES)
    for event_type, data in examples.items():
        event = CHANGE_EVENT_ADAPTER.validate_json(orjson.dumps(data))
        assert event.type == event_type
