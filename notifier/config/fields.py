"""Field types shared by the config models: ids, URLs, event patterns, topic names.

Validators raise ``ValueError`` with a message that says what is wrong and how to fix it, and
never repeat the value: it may be a secret that came from the environment.
"""

from __future__ import annotations

import base64
import binascii
import difflib
from collections.abc import Sequence
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, StringConstraints

# The catalogue of docs/design.md §4 has one home, the event models; config names it in filters and
# topic overrides.
from notifier.events import EVENT_TYPES

WILDCARDS: Final[tuple[str, ...]] = ("*", "ticket.*", "ticket_type.*")

WHSEC_HOWTO: Final = (
    'generate one with: python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


class Model(BaseModel):
    """Base of every config model: immutable, no unknown keys, no inputs echoed in errors."""

    # hide_input_in_errors: a ValidationError printed by accident must not show a token.
    # use_attribute_docstrings: the docstring under each field is its description in
    # `notifier schema --config`, which editors show while a user writes the YAML.
    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, use_attribute_docstrings=True
    )


class ConfigProblems(ValueError):
    """Raised by cross-field validators to report problems at paths below the model.

    ``problems`` holds (relative path, message) pairs such as ``("sasl_username", "required
    when ...")``; the loader joins each path to the model's own location.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = tuple(problems)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http:// or https:// URL with a host — e.g. https://example.com/hook"
        )
    return value


def plain_http_problems(url: str, key: str, *, allowed: bool) -> list[tuple[str, str]]:
    """A problem at ``key`` when ``url`` is plain http:// and the item did not allow it:
    a token or a signed event would cross the network unencrypted."""
    if allowed or urlsplit(url).scheme != "http":
        return []
    return [
        (
            key,
            "must be https:// — plain http:// sends credentials and events unencrypted; for "
            "a local simulator or receiver set allow_insecure_http: true on this item",
        )
    ]


def _check_base_url(value: str) -> str:
    # A token must never leave for another host (docs/design.md §6), and credentials belong in their
    # own secret fields, where they are masked, not in a URL that gets logged.
    if urlsplit(value).username is not None:
        raise ValueError("must not contain credentials; put them in the source's token fields")
    return value.rstrip("/")


def _check_event_pattern(value: str) -> str:
    if value in EVENT_TYPES or value in WILDCARDS:
        return value
    raise ValueError(
        f"unknown event type '{value}'{did_you_mean(value, EVENT_TYPES)} — use one of "
        f"{', '.join(WILDCARDS)}, {', '.join(EVENT_TYPES)}"
    )


def _check_event_type(value: str) -> str:
    if value in EVENT_TYPES:
        return value
    raise ValueError(
        f"unknown event type '{value}'{did_you_mean(value, EVENT_TYPES)} — "
        f"use one of {', '.join(EVENT_TYPES)}"
    )


def _check_webhook_secret(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if not text.startswith("whsec_"):
        raise ValueError(f"must start with 'whsec_' — {WHSEC_HOWTO}")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError(f"must be 'whsec_' followed by base64 — {WHSEC_HOWTO}") from None
    if not key:
        raise ValueError(f"has no key after 'whsec_' — {WHSEC_HOWTO}")
    return value


Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64),
]
"""An id that goes into event sources, Kafka keys and metric labels: lower-case, no spaces."""

HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
BaseUrl = Annotated[str, AfterValidator(_check_http_url), AfterValidator(_check_base_url)]
EventPattern = Annotated[str, AfterValidator(_check_event_pattern)]
EventType = Annotated[str, AfterValidator(_check_event_type)]
TopicName = Annotated[
    str,
    # Kafka's own rule for topic names.
    StringConstraints(pattern=r"^[A-Za-z0-9._-]+$", max_length=249),
]
WebhookSecret = Annotated[SecretStr, AfterValidator(_check_webhook_secret)]

SLUG_HINT: Final = "use lower-case letters, digits, '-' or '_', e.g. main-box-office"
