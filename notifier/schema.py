"""Machine-readable contracts generated from the models: JSON Schema and AsyncAPI 3.1.

Every document is one self-contained resource whose ``$ref`` s resolve inside it: the event
bundle keeps shared definitions in its root ``$defs``, the AsyncAPI document in
``components.schemas``. Both are built from ``EVENT_MODELS``, so a new event type appears in
them without a change here. ``.ci/validate-contracts`` checks them with the AsyncAPI
project's own parser and a JSON Schema validator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from notifier.config.models import DEFAULT_TOPIC, Config
from notifier.durations import format_duration
from notifier.events import EVENT_MODELS, SCHEMA_VERSION
from notifier.examples import example_payloads

ASYNCAPI_VERSION = "3.1.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The AsyncAPI Kafka bindings version the message bindings follow.
KAFKA_BINDING_VERSION = "0.5.0"

_CE_HEADERS = {
    "type": "object",
    "title": "CloudEventsKafkaHeaders",
    "description": "CloudEvents 1.0 Kafka protocol binding, binary content mode attributes",
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "Deterministic: same change, same id"},
        "ce_source": {"type": "string", "description": "/{provider}/{organizer}/{source}"},
        "ce_type": {"type": "string", "description": "The event type, e.g. ticket.checked_in"},
        "ce_subject": {"type": "string", "description": "Ticket or ticket type id"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_partitionkey": {"type": "string", "description": "The Kafka key"},
        "content-type": {"const": "application/json"},
    },
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"],
}
_HEADERS_NAME = "CloudEventsKafkaHeaders"


def event_type_of(model: type[BaseModel]) -> str:
    """The CloudEvents ``type`` an event model carries in its ``type`` literal."""
    return str(model.model_fields["type"].default)


def _event_definitions(ref_template: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each event type's reference, and every definition they share, under one template."""
    refs, bundle = models_json_schema(
        [(model, "validation") for model in EVENT_MODELS], ref_template=ref_template
    )
    by_type = {event_type_of(model): refs[(model, "validation")] for model in EVENT_MODELS}
    return by_type, bundle["$defs"]


def event_schemas() -> dict[str, Any]:
    """One JSON Schema (2020-12) for the ``data`` of every change event.

    A payload is valid when it matches exactly one event type, chosen by its ``type``; the
    schema of one type is ``#/$defs/<Model>``, named in ``discriminator.mapping``.
    """
    by_type, definitions = _event_definitions("#/$defs/{model}")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "checkin-notifier change event",
        "description": f"The data of a change event, schema_version {SCHEMA_VERSION}: on Kafka "
        "the message value, on webhooks the CloudEvent's `data`.",
        "type": "object",
        "oneOf": list(by_type.values()),
        # OpenAPI-style annotation, also what pydantic emits for a discriminated union:
        # code generators use it to pick the model without trying every branch.
        "discriminator": {
            "propertyName": "type",
            "mapping": {event_type: ref["$ref"] for event_type, ref in by_type.items()},
        },
        "$defs": definitions,
    }


def asyncapi_document(topic: str = DEFAULT_TOPIC) -> dict[str, Any]:
    """An AsyncAPI 3.1 document of the Kafka topic and its messages, one per event type."""
    by_type, schemas = _event_definitions("#/components/schemas/{model}")
    examples = example_payloads()
    messages = {
        _message_name(event_type): _message(event_type, ref, schemas, examples[event_type])
        for event_type, ref in by_type.items()
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "checkin-notifier change events",
            "version": str(SCHEMA_VERSION),
            "description": "Typed ticket and inventory change events, as CloudEvents 1.0 on "
            "Kafka (binary mode) and on signed webhooks (structured mode, Standard Webhooks). "
            "The payload is the same on both: the event's data.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "ticketEvents": {
                "address": topic,
                "description": "Default topic; overridable per organizer and per event type.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": {
            "publishTicketEvents": {
                "action": "send",
                "summary": "The notifier publishes one message per detected change.",
                "channel": {"$ref": "#/channels/ticketEvents"},
                "messages": [
                    {"$ref": f"#/channels/ticketEvents/messages/{name}"} for name in messages
                ],
            }
        },
        "components": {
            "schemas": {**schemas, _HEADERS_NAME: _CE_HEADERS},
            "messages": messages,
        },
    }


def _message(
    event_type: str,
    payload_ref: dict[str, Any],
    schemas: dict[str, Any],
    example: dict[str, Any],
) -> dict[str, Any]:
    model_name = payload_ref["$ref"].rsplit("/", 1)[1]
    return {
        "name": event_type,
        "title": event_type,
        "summary": schemas[model_name].get("description", ""),
        "contentType": "application/json",
        "headers": {"$ref": f"#/components/schemas/{_HEADERS_NAME}"},
        "payload": payload_ref,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "{provider}:{source}:{ticket_id}"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        # Produced by the real differs (notifier.examples), so they are what the code emits.
        "examples": [{"name": _message_name(event_type), "payload": example}],
    }


def _message_name(event_type: str) -> str:
    return event_type.replace(".", "_")


class _UserNotation(GenerateJsonSchema):
    """Shows defaults the way a user writes them in the YAML: ``15s``, not ``PT15S``."""

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_durations_as_written(dft))


def _durations_as_written(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, tuple | list):
        return [_durations_as_written(item) for item in value]
    return value


def _one_line_descriptions(node: Any) -> Any:
    # Field docstrings wrap at the code's line length; an editor's hover should not.
    if isinstance(node, dict):
        return {
            key: " ".join(value.split())
            if key == "description" and isinstance(value, str)
            else _one_line_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_one_line_descriptions(item) for item in node]
    return node


def config_schema() -> dict[str, Any]:
    """JSON Schema of the YAML config, for editors (yaml-language-server) and CI checks."""
    schema: dict[str, Any] = _one_line_descriptions(
        Config.model_json_schema(schema_generator=_UserNotation)
    )
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["title"] = "checkin-notifier configuration"
    return schema


DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "docs/schema/events.json": event_schemas,
    "docs/schema/asyncapi.json": asyncapi_document,
    "docs/schema/config.json": config_schema,
}


def write_documents(root: Path | None = None) -> list[Path]:
    """Regenerate the committed documents under docs/schema (run after a model change)."""
    base = root or Path(__file__).resolve().parents[1]
    written = []
    for relative, build in DOCUMENTS.items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(build(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_documents():
        print(written_path)
