"""The published event contracts resolve on their own and accept exactly what the code emits.

These read the committed files under docs/schema (test_schema_docs keeps them equal to what
the code generates), as a consumer or a code generator would, each file as one resource.
The AsyncAPI side is also checked by the AsyncAPI project's parser in .ci/validate-contracts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT7, DRAFT202012

from notifier.events import CHANGE_EVENT_ADAPTER, EVENT_TYPES
from notifier.examples import example_payloads
from notifier.schema import DOCUMENTS

ROOT = Path(__file__).resolve().parents[2]
EVENTS = orjson.loads((ROOT / "docs/schema/events.json").read_bytes())
ASYNCAPI = orjson.loads((ROOT / "docs/schema/asyncapi.json").read_bytes())
EXAMPLES = example_payloads()


def _refs(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from _refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _refs(item, f"{path}/{index}")


def _resolve(document: Any, pointer: str) -> Any:
    node = document
    for token in pointer.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.mark.parametrize("path", sorted(DOCUMENTS))
def test_every_reference_resolves_inside_its_document(path: str) -> None:
    """A `#/...` reference means the document's root; each one must point at something there."""
    document = orjson.loads((ROOT / path).read_bytes())
    refs = list(_refs(document))
    assert refs, "expected shared definitions referenced by $ref"
    unresolved: dict[str, str] = {}
    for where, ref in refs:
        assert ref.startswith("#/"), f"{where}: {ref} leaves the document"
        try:
            _resolve(document, ref)
        except (KeyError, IndexError, TypeError):
            unresolved.setdefault(ref, where)
    assert unresolved == {}, "first use of each unresolvable reference"


def _events_validator(ref: str = "#") -> Draft202012Validator:
    # The committed file is the one resource; a schema that only points into it, as a
    # registry or a consumer that validates one type would use it.
    registry: Registry[Any] = Registry().with_resource(
        "urn:events", DRAFT202012.create_resource(EVENTS)
    )
    return Draft202012Validator(
        {"$ref": f"urn:events{ref}"}, registry=registry, format_checker=FormatChecker()
    )


def test_the_event_bundle_is_a_valid_json_schema() -> None:
    """It is itself valid JSON Schema 2020-12, and names every event type once."""
    Draft202012Validator.check_schema(EVENTS)
    assert EVENTS["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert sorted(EVENTS["discriminator"]["mapping"]) == sorted(EVENT_TYPES)
    assert len(EVENTS["oneOf"]) == len(EVENT_TYPES)


def test_the_bundle_and_the_models_know_the_same_event_types() -> None:
    """EVENT_MODELS (which the documents are built from) and the ChangeEvent union agree."""
    union = CHANGE_EVENT_ADAPTER.json_schema()
    assert sorted(union["discriminator"]["mapping"]) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_a_real_payload_of_every_type_is_valid(event_type: str) -> None:
    """The example builder's payload (the real differs' output) passes the bundle and its type."""
    payload = EXAMPLES[event_type]
    assert payload["type"] == event_type
    assert list(_events_validator().iter_errors(payload)) == []
    own = EVENTS["discriminator"]["mapping"][event_type].removeprefix("#")
    assert list(_events_validator(f"#{own}").iter_errors(payload)) == []


def _broken(event_type: str, change: str) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads(orjson.dumps(EXAMPLES[event_type]))
    if change == "unknown type":
        payload["type"] = "ticket.teleported"
    elif change == "missing after":
        del payload["after"]
    elif change == "sequence 0":
        payload["sequence"] = 0
    elif change == "extra field":
        payload["surprise"] = True
    elif change == "bad time":
        payload["detected_at"] = "yesterday"
    elif change == "ticket shape, inventory type":
        payload["type"] = "ticket_type.sold_out"
    return payload


@pytest.mark.parametrize(
    "change",
    [
        "unknown type",
        "missing after",
        "sequence 0",
        "extra field",
        "bad time",
        "ticket shape, inventory type",
    ],
)
def test_a_broken_payload_is_refused(change: str) -> None:
    """Neither the bundle nor one type's schema is a rubber stamp: each of these is an error."""
    payload = _broken("ticket.checked_in", change)
    assert list(_events_validator().iter_errors(payload)) != []
    own = EVENTS["discriminator"]["mapping"]["ticket.checked_in"].removeprefix("#")
    errors = list(_events_validator(f"#{own}").iter_errors(payload))
    assert errors != []
    if change == "bad time":
        assert [e.validator for e in errors] == ["format"]


def test_the_asyncapi_document_targets_3_1_with_shared_schemas() -> None:
    """Shared definitions live in components.schemas; each message payload refers to one."""
    assert ASYNCAPI["asyncapi"] == "3.1.0"
    schemas = ASYNCAPI["components"]["schemas"]
    assert {"TicketSnapshot", "HolderPayload", "TicketTypePayload", "InventorySnapshot"} <= set(
        schemas
    )
    for message in ASYNCAPI["components"]["messages"].values():
        assert set(message["payload"]) == {"$ref"}
        assert "$defs" not in _resolve(ASYNCAPI, message["payload"]["$ref"])


def _asyncapi_validator(ref: str) -> Draft7Validator:
    # AsyncAPI's default schema format is a superset of JSON Schema draft 7.
    registry: Registry[Any] = Registry().with_resource(
        "urn:asyncapi", DRAFT7.create_resource(ASYNCAPI)
    )
    return Draft7Validator(
        {"$ref": f"urn:asyncapi{ref}"}, registry=registry, format_checker=FormatChecker()
    )


def test_every_asyncapi_message_accepts_a_real_payload_and_refuses_another_type() -> None:
    """Each message's payload schema takes its own type's payload and no other type's."""
    messages = ASYNCAPI["components"]["messages"]
    assert sorted(m["name"] for m in messages.values()) == sorted(EVENT_TYPES)
    for message in messages.values():
        validator = _asyncapi_validator(message["payload"]["$ref"])
        assert list(validator.iter_errors(EXAMPLES[message["name"]])) == [], message["name"]
        assert [e["payload"] for e in message["examples"]] == [EXAMPLES[message["name"]]]
        other = next(t for t in EVENT_TYPES if t != message["name"])
        assert list(validator.iter_errors(EXAMPLES[other])) != [], message["name"]
