"""Turn pydantic's validation errors into one printable line per problem.

Each line is ``path: problem — how to fix it``, where the path is the one a user reads in the
YAML (``organizers[0].sources[1].token``): pydantic's discriminator tags are dropped and list
indexes are bracketed. An input is quoted back only when it is safe: never for secret fields,
never for values interpolated from the environment, never for unknown keys.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from notifier.config.fields import SLUG_HINT, ConfigProblems, Model, did_you_mean
from notifier.config.interpolate import Location
from notifier.config.models import Config
from notifier.config.sources import PROVIDERS
from notifier.errors import ConfigError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# How to fix a missing or malformed field, by field name.
_HINTS: Mapping[str, str] = {
    "bootstrap_servers": "list the brokers, e.g. [localhost:9092]",
    "organizers": "add at least one organizer with its sources",
    "sources": "add at least one source, e.g. {id: main, provider: shotgun, ...}",
    "id": SLUG_HINT,
    "name": SLUG_HINT,
    "url": "the receiver's URL, e.g. https://example.com/hooks/tickets",
    "secret": "a Standard Webhooks secret 'whsec_...' from the environment, e.g. ${CRM_SECRET}",
    "token": "set it from the environment, e.g. token: ${SHOTGUN_TOKEN}",
    "api_key": "set it from the environment, e.g. api_key: ${TT_API_KEY}",
    "access_token": "set it from the environment, e.g. access_token: ${EVENTPOP_TOKEN}",
    "organizer_id": "the provider's numeric organizer id",
    "company_id": "the Nuweb company id (the X-NU-COMPANY-ID header)",
    "event_ids": "list the provider's event ids, e.g. [410006]",
    "topic": "Kafka topic names use letters, digits, '.', '_' and '-'",
}
_PLAIN_MESSAGES: Mapping[str, str] = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list, e.g. [a, b]",
    "tuple_type": "expected a list, e.g. [a, b]",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values",
    "model_attributes_type": "expected a mapping of keys to values",
    "string_pattern_mismatch": "not allowed here",
}
_NEVER_ECHO = {"missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, at one path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidConfigError(ConfigError):
    """A config file that cannot be used; ``str()`` is the report ``notifier validate`` prints."""

    def __init__(self, file: Path, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        lines = [f"{file}: {count}", *(f"  {problem}" for problem in self.problems)]
        super().__init__("\n".join(lines))


def render_path(parts: Iterable[str | int]) -> str:
    """``("organizers", 0, "sources")`` → ``organizers[0].sources``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


def join_path(base: str, relative: str) -> str:
    """Append a path a validator reported relative to its model."""
    if not base or not relative:
        return base or relative
    return base + relative if relative.startswith("[") else f"{base}.{relative}"


def from_validation_error(
    error: ValidationError, document: object, from_env: set[Location]
) -> list[Problem]:
    """One or more problems per pydantic error, in the order pydantic found them."""
    errors = error.errors()
    return [
        problem
        for details in errors
        if not _is_echo_of_failed_items(details, errors)
        for problem in _problems(details, document, from_env)
    ]


def _is_echo_of_failed_items(details: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    # pydantic counts a list's length after dropping its invalid items, so one bad source also
    # reports "sources: needs at least 1 item"; the item's own error is the one to fix.
    if details["type"] != "too_short":
        return False
    loc = details["loc"]
    return any(other["loc"][: len(loc)] == loc and other["loc"] != loc for other in errors)


def _problems(details: ErrorDetails, document: object, from_env: set[Location]) -> list[Problem]:
    loc = _clean_location(details["loc"], document)
    path = render_path(loc)
    kind = details["type"]
    if kind == "value_error":
        return _value_error(path, details, safe=_can_echo(details, loc, from_env, ""))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return [_provider_problem(path, details, from_env, (*loc, "provider"))]
    message = _message(details, loc)
    if _can_echo(details, loc, from_env, message):
        message = _with_input(message, details["input"])
    return [Problem(path, message)]


def _clean_location(raw: tuple[int | str, ...], document: object) -> Location:
    """Drop what is pydantic's and not the user's: discriminator tags and ``[key]`` markers."""
    parts: list[str | int] = []
    node: Any = document
    for elem in raw:
        is_tag = isinstance(node, Mapping) and elem not in node and node.get("provider") == elem
        if elem == "[key]" or is_tag:
            continue
        parts.append(elem)
        node = _child(node, elem)
    return tuple(parts)


def _child(node: object, key: str | int) -> object:
    if isinstance(node, Mapping):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _value_error(path: str, details: ErrorDetails, *, safe: bool) -> list[Problem]:
    cause = (details.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigProblems):
        return [Problem(join_path(path, where), what) for where, what in cause.problems]
    message = str(cause) if cause is not None else details["msg"]
    if safe and f"'{details['input']}'" not in message:
        message = _with_input(message, details["input"])
    return [Problem(path, message)]


def _provider_problem(
    path: str, details: ErrorDetails, from_env: set[Location], tag_loc: Location
) -> Problem:
    choices = ", ".join(PROVIDERS)
    where = join_path(path, "provider")
    if details["type"] == "union_tag_not_found":
        return Problem(where, f"field required — set it to one of {choices}")
    tag = str((details.get("ctx") or {}).get("tag", ""))
    shown = "" if tag_loc in from_env else f" '{tag}'{did_you_mean(tag, PROVIDERS)}"
    return Problem(where, f"unknown provider{shown} — use one of {choices}")


def _message(details: ErrorDetails, loc: Location) -> str:
    kind = details["type"]
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    if kind == "missing":
        return f"field required — {_HINTS.get(field, 'add it')}"
    if kind == "extra_forbidden":
        return _unknown_key(details["loc"])
    if kind == "too_short":
        least = (details.get("ctx") or {}).get("min_length", 1)
        return _with_hint(f"needs at least {least} item{'s' if least != 1 else ''}", field)
    if kind == "literal_error":
        return f"must be one of {(details.get('ctx') or {}).get('expected', '')}"
    if kind in _PLAIN_MESSAGES:
        return _with_hint(_PLAIN_MESSAGES[kind], field)
    return details["msg"].replace("Input should be", "must be")


def _with_hint(message: str, field: str) -> str:
    hint = _HINTS.get(field)
    return f"{message} — {hint}" if hint else message


def _unknown_key(raw: tuple[int | str, ...]) -> str:
    key = str(raw[-1])
    allowed = _fields_at(raw[:-1])
    suggestion = did_you_mean(key, allowed)
    if suggestion or not allowed:
        return f"unknown key{suggestion}"
    return f"unknown key — remove it; valid keys: {', '.join(allowed)}"


def _can_echo(details: ErrorDetails, loc: Location, from_env: set[Location], message: str) -> bool:
    value = details.get("input")
    last = next((part for part in reversed(loc) if isinstance(part, str)), "")
    return (
        details["type"] not in _NEVER_ECHO
        and isinstance(value, str | int | float)
        and loc not in from_env
        and last not in _secret_fields()
        and not _has_user_info(value)
        and f"'{value}'" not in message
    )


def _has_user_info(value: object) -> bool:
    # https://user:password@host: the password would be quoted back with the URL.
    return isinstance(value, str) and "@" in value and "://" in value


def _with_input(message: str, value: object) -> str:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "...'"
    head, dash, hint = message.partition(" — ")
    return f"{head} (got {shown}){dash}{hint}"


@functools.cache
def _secret_fields() -> frozenset[str]:
    """Names of every SecretStr field of every config model: their input is never shown."""
    return frozenset(
        name
        for model in _all_models(Model)
        for name, info in model.model_fields.items()
        if _holds_a_secret(info.annotation)
    )


def _holds_a_secret(annotation: object) -> bool:
    """SecretStr anywhere in a type: bare, Optional, in a tuple, behind Annotated."""
    if annotation is SecretStr:
        return True
    return any(_holds_a_secret(arg) for arg in get_args(annotation))


def _all_models(root: type[BaseModel]) -> Iterable[type[BaseModel]]:
    for sub in root.__subclasses__():
        yield sub
        yield from _all_models(sub)


def _fields_at(raw: tuple[int | str, ...]) -> tuple[str, ...]:
    """The keys the model at a pydantic location accepts, to suggest the one meant."""
    node: object = Config
    for elem in raw:
        node = _step(node, elem)
    models = [t for t in _alternatives(node) if isinstance(t, type) and issubclass(t, BaseModel)]
    return tuple(models[0].model_fields) if len(models) == 1 else ()


def _step(node: object, elem: str | int) -> object:
    for option in _alternatives(node):
        if isinstance(option, type) and issubclass(option, BaseModel):
            if isinstance(elem, str) and elem in option.model_fields:
                return option.model_fields[elem].annotation
            if elem in get_args(getattr(option.model_fields.get("provider"), "annotation", None)):
                return option
        elif isinstance(elem, int) and get_origin(option) in (tuple, list):
            return get_args(option)[0]
    return None


def _alternatives(node: object) -> list[object]:
    """Unwrap ``Annotated`` and unions into the plain types a value may have."""
    origin = get_origin(node)
    if origin is Annotated:
        return _alternatives(get_args(node)[0])
    if origin in (Union, types.UnionType):
        return [alt for arg in get_args(node) for alt in _alternatives(arg)]
    return [node]
