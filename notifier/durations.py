"""Durations written as text in the config: ``500ms``, ``5s``, ``2m``, ``1h`` or bare seconds.

Parsing goes through :class:`~decimal.Decimal` so ``1.5s`` or ``0.25ms`` become an exact number
of microseconds, and :func:`format_duration` picks the largest unit that divides the value, so
``parse_duration(format_duration(d)) == d`` for every non-negative ``timedelta``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["Duration", "PositiveDuration", "format_duration", "parse_duration"]

_MICROSECONDS: Final[dict[str, int]] = {
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
}
_DURATION = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)?\s*")
_HOW_TO_WRITE: Final = "write a number with a unit: 500ms, 5s, 2m or 1h (a bare number is seconds)"
# What a config file may hold, for editors that check YAML against `notifier schema --config`:
# the notation parse_duration reads, not JSON Schema's ISO 8601 "duration" format (PT15S),
# which it rejects. Serialization keeps the string that format_duration writes.
_INPUT_SCHEMA: Final = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
            {"type": "number", "minimum": 0},
        ],
        "examples": ["500ms", "15s", "2m", "1h"],
    },
    mode="validation",
)


def parse_duration(value: object) -> timedelta:
    """Turn ``5s``, ``500ms``, ``2m``, ``1h``, bare seconds or a timedelta into a timedelta.

    Raises ``ValueError`` (which pydantic reports as a validation problem) for anything else;
    the message never repeats the value, because it may have come from a secret variable.
    """
    if isinstance(value, timedelta):
        return _non_negative(value)
    # bool is an int subclass: `timeout: true` is a mistake, not one second.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_decimal(Decimal(str(value)), "s")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is not None:
            return _from_decimal(Decimal(match["number"]), match["unit"] or "s")
    raise ValueError(f"not a duration — {_HOW_TO_WRITE}")


def _from_decimal(number: Decimal, unit: str) -> timedelta:
    if not number.is_finite():  # YAML's .nan and .inf are floats too
        raise ValueError(f"not a duration — {_HOW_TO_WRITE}")
    micros = number * _MICROSECONDS[unit]
    if micros != micros.to_integral_value():
        raise ValueError("finer than a microsecond — use at most 6 decimals of a second")
    return _non_negative(timedelta(microseconds=int(micros)))


def _non_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("a duration cannot be negative")
    return value


def format_duration(value: timedelta) -> str:
    """Write a duration the way the config accepts it, in the largest unit that divides it."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros == 0:
        return "0s"
    for unit, size in _MICROSECONDS.items():
        if micros % size == 0:
            return f"{micros // size}{unit}"
    # Sub-millisecond remainder: a decimal count of milliseconds keeps it exact.
    return f"{Decimal(micros) / 1000}ms"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero, e.g. 5s")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    _INPUT_SCHEMA,
]
"""A non-negative duration; zero is allowed (an immediate retry, no lookback)."""

PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
    _INPUT_SCHEMA,
]
"""A duration that must be longer than zero (intervals and timeouts: zero would spin)."""
