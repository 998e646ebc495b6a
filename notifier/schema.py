"""Machine-readable contracts generated from the event models: JSON Schema and AsyncAPI 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from notifier.config.models import DEFAULT_TOPIC, Config
from notifier.events import EVENT_MODELS, SCHEMA_VERSION

_CE_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 binary content mode attributes",
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "Deterministic: same change, same id"},
        "ce_source": {"type": "string", "description": "/{provider}/{organizer}/{source}"},
        "ce_type": {"type": "string"},
        "ce_subject": {"type": "string", "description": "Ticket or ticket type id"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_partitionkey": {"type": "string"},
        "content-type": {"const": "application/json"},
    },
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"],
}


def _type_of(model: type[Any]) -> str:
    return str(model.model_fields["type"].default)


def event_schemas() -> dict[str, Any]:
    """One JSON Schema per event type, keyed by the CloudEvents ``type``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "events": {_type_of(model): model.model_json_schema() for model in EVENT_MODELS},
    }


def asyncapi_document(topic: str = DEFAULT_TOPIC) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the Kafka topic and the webhook payloads."""
    messages = {
        _message_name(model): {
            "name": _type_of(model),
            "title": _type_of(model),
            "summary": (model.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": _CE_HEADERS,
            "payload": model.model_json_schema(),
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": "{provider}:{source}:{ticket_id}"}
                }
            },
        }
        for model in EVENT_MODELS
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "checkin-notifier change events",
            "version": str(SCHEMA_VERSION),
            "description": "Typed ticket and inventory change events, as CloudEvents 1.0 on "
            "Kafka (binary mode) and on signed webhooks (structured mode, Standard Webhooks).",
        },
        "channels": {
            "ticketEvents": {
                "address": topic,
                "description": "Default topic; overridable per organizer and per event type.",
                "messages": dict(messages.items())
                and {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": {
            "publishTicketEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/ticketEvents"},
                "messages": [
                    {"$ref": f"#/channels/ticketEvents/messages/{name}"} for name in messages
                ],
            }
        },
        "components": {"messages": messages},
    }


def config_schema() -> dict[str, Any]:
    """JSON Schema of the YAML config, for editors (yaml-language-server) and CI checks."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "checkin-notifier configuration"
    return schema


DOCUMENTS: dict[str, Any] = {
    "docs/schema/events.json": event_schemas,
    "docs/schema/asyncapi.json": asyncapi_document,
    "docs/schema/config.json": config_schema,
}


def _message_name(model: type[Any]) -> str:
    return _type_of(model).replace(".", "_")


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
