"""The committed contracts under docs/schema match what the code generates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from jsonschema import Draft202012Validator

from notifier import schema
from notifier.events import EVENT_MODELS, EVENT_TYPES, TicketIssued
from notifier.examples import example_payloads
from notifier.schema import DOCUMENTS, asyncapi_document, config_schema, event_schemas

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate with: .venv/bin/python -m notifier.schema"


@pytest.mark.parametrize(("path", "build"), sorted(DOCUMENTS.items()))
def test_committed_document_is_current(path: str, build: Callable[[], Any]) -> None:
    """A model change without regenerating the committed document fails here."""
    committed = orjson.loads((ROOT / path).read_bytes())
    assert committed == orjson.loads(orjson.dumps(build())), REGENERATE


def test_every_event_type_has_a_schema_and_an_asyncapi_message() -> None:
    """The whole catalogue is in both documents."""
    assert set(event_schemas()["discriminator"]["mapping"]) == set(EVENT_TYPES)
    names = {m["name"] for m in asyncapi_document()["components"]["messages"].values()}
    assert names == set(EVENT_TYPES)


def test_the_config_schema_is_a_valid_json_schema() -> None:
    """Editors can use it: it is itself valid JSON Schema 2020-12."""
    Draft202012Validator.check_schema(config_schema())


def test_a_new_event_type_flows_into_both_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documents follow EVENT_MODELS: adding a model is all a new event type needs."""

    class TicketTeleported(TicketIssued):
        """A ticket moved between venues (a made-up type for this test)."""

        type: Literal["ticket.teleported"] = "ticket.teleported"  # type: ignore[assignment]

    examples = example_payloads()
    examples["ticket.teleported"] = {**examples["ticket.issued"], "type": "ticket.teleported"}
    monkeypatch.setattr(schema, "EVENT_MODELS", (*EVENT_MODELS, TicketTeleported))
    monkeypatch.setattr(schema, "example_payloads", lambda: examples)

    bundle = event_schemas()
    assert bundle["discriminator"]["mapping"]["ticket.teleported"] == "#/$defs/TicketTeleported"
    Draft202012Validator(bundle).validate(examples["ticket.teleported"])
    document = asyncapi_document()
    message = document["components"]["messages"]["ticket_teleported"]
    assert message["payload"] == {"$ref": "#/components/schemas/TicketTeleported"}
    assert {"$ref": "#/components/messages/ticket_teleported"} in (
        document["channels"]["ticketEvents"]["messages"].values()
    )
