"""`notifier schema --config` explains every key and shows defaults as users write them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from notifier.config.models import Config, Defaults, WebhookEndpoint
from notifier.durations import _DURATION, format_duration, parse_duration
from notifier.schema import config_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = config_schema()
# JSON Schema's own "duration" format is ISO 8601 (PT15S), which the config does not accept.
ISO_8601_DURATION = re.compile(r"^P(?=\d|T\d)")


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, schema) of a named property, in the root and in every definition."""
    if isinstance(node, dict):
        for name, schema in node.get("properties", {}).items():
            yield f"{path}.{name}", schema
        for key, value in node.items():
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _properties(item, path)


def _is_duration(schema: dict[str, Any]) -> bool:
    """A duration field, on its own, optional (anyOf with null) or as the items of a list."""
    branches = [schema, schema.get("items", {}), *schema.get("anyOf", [])]
    return any(
        any(b.get("pattern") == _duration_pattern() for b in branch.get("anyOf", []))
        for branch in branches
        if isinstance(branch, dict)
    )


def _duration_pattern() -> str:
    defaults = SCHEMA["$defs"]["Defaults"]["properties"]
    return str(defaults["poll_interval"]["anyOf"][0]["pattern"])


def test_every_property_has_a_description() -> None:
    """An editor's hover explains every key, in the root and in every section."""
    properties = list(_properties(SCHEMA))
    assert len(properties) > 60  # every section and every provider's source fields
    missing = [path for path, schema in properties if not schema.get("description", "").strip()]
    assert missing == []
    assert all("\n" not in schema["description"] for _, schema in properties)


def test_duration_defaults_are_written_as_users_write_them() -> None:
    """`15s`, `2m`, `1h`, never `PT15S`; each one reads back as the model's own default."""
    durations = {path: s for path, s in _properties(SCHEMA) if _is_duration(s)}
    # poll/live/reconcile intervals, margins, lookbacks, webhook timeouts and retries.
    assert len(durations) >= 15
    shown = [(path, s["default"]) for path, s in durations.items() if s.get("default")]
    assert shown, "expected defaults on duration fields"
    for path, default in shown:
        for text in default if isinstance(default, list) else [default]:
            assert not ISO_8601_DURATION.match(text), path
            assert format_duration(parse_duration(text)) == text, path
    endpoint = SCHEMA["$defs"]["WebhookEndpoint"]["properties"]
    assert endpoint["timeout"]["default"] == "15s"
    assert endpoint["retry_schedule"]["default"] == [
        "0s",
        "5s",
        "5m",
        "30m",
        "2h",
        "5h",
        "10h",
        "10h",
    ]
    assert endpoint["max_retry_after"]["default"] == "1h"
    assert SCHEMA["properties"]["defaults"]["default"]["poll_interval"] == "1m"


def test_shown_defaults_load_as_the_models_defaults() -> None:
    """Copying the schema's defaults into a file changes nothing."""
    assert Defaults.model_validate(SCHEMA["properties"]["defaults"]["default"]) == Defaults()
    endpoint = SCHEMA["$defs"]["WebhookEndpoint"]["properties"]
    required = {"name": "crm", "url": "https://crm.example/hook", "secret": "whsec_AAAA"}
    written = {k: s["default"] for k, s in endpoint.items() if "default" in s and k not in required}
    assert WebhookEndpoint.model_validate(
        {**required, **written}
    ) == WebhookEndpoint.model_validate(required)


@pytest.mark.parametrize(
    "text", ["5s", "1.5s", " 2m ", "500ms", "10", "0", "1h", "abc", "5x", "-1s", "1.s", "PT15S"]
)
def test_the_duration_pattern_accepts_what_the_parser_accepts(text: str) -> None:
    """An editor flags a duration exactly when `notifier validate` would."""
    assert (re.search(_duration_pattern(), text) is not None) == (
        _DURATION.fullmatch(text) is not None
    )


@pytest.mark.parametrize(
    "path",
    [
        "tests/fixtures/configs/minimal.yaml",
        "tests/fixtures/configs/design-example.yaml",
        "deploy/base/notifier.yaml",
    ],
)
def test_real_config_files_pass_the_schema(path: str) -> None:
    """The project's own configs, ${VARS} unexpanded, as an editor sees them."""
    Draft202012Validator.check_schema(SCHEMA)
    document = yaml.safe_load((ROOT / path).read_text())
    assert list(Draft202012Validator(SCHEMA).iter_errors(document)) == []


def test_the_schema_refuses_an_iso_duration_as_the_loader_does() -> None:
    """`timeout: PT15S` is an error in the editor and in `notifier validate` alike."""
    document = yaml.safe_load((ROOT / "tests/fixtures/configs/minimal.yaml").read_text())
    document["defaults"] = {"poll_interval": "PT15S"}
    errors = list(Draft202012Validator(SCHEMA).iter_errors(document))
    assert [list(e.absolute_path) for e in errors] == [["defaults", "poll_interval"]]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("PT15S")
    assert Config.model_validate(
        {**document, "defaults": {"poll_interval": "15s"}}
    ).defaults.poll_interval == timedelta(seconds=15)
