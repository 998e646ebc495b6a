"""Reading provider JSON fields the same way in every adapter.

Type checks are exact: ``bool`` is an ``int`` in Python and a float id would lose digits
silently, so neither is accepted as an id. Callers translate the ``TypeError`` these raise
into a ``FatalProviderError`` for the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from notifier.model import TicketStatus

log = structlog.get_logger(__name__)


def id_text(value: object) -> str:
    """An id as text: providers mix integers and prefixed strings (docs/design.md §6a)."""
    if type(value) is int:
        return str(value)
    if type(value) is str and value:
        return value
    raise TypeError("id is not an integer or a non-empty string")


def optional_id(value: object) -> str | None:
    return None if value is None else id_text(value)


def optional_text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    if type(value) is int:
        return str(value)  # e.g. a phone number sent as a number
    raise TypeError("expected a string")


def optional_int(value: object) -> int | None:
    if value is None or type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise TypeError("expected an integer")


class StatusMap:
    """A provider's status values mapped onto ``TicketStatus``.

    An unknown value becomes ``UNKNOWN`` (the raw value stays on the record) and is logged
    once per value, never crashing a poll; the set of warned values is bounded, so a
    provider inventing statuses cannot grow memory.
    """

    def __init__(
        self, provider: str, statuses: Mapping[str, TicketStatus], *, max_warned: int = 1000
    ) -> None:
        self._provider = provider
        self._statuses = statuses
        self._max_warned = max_warned
        self._warned: set[str] = set()

    def __call__(self, raw: str) -> TicketStatus:
        status = self._statuses.get(raw)
        if status is not None:
            return status
        if raw not in self._warned and len(self._warned) < self._max_warned:
            self._warned.add(raw)
            log.warning("unknown_ticket_status", provider=self._provider, status_raw=raw)
        return TicketStatus.UNKNOWN


def next_link(container: object, where: str) -> str | None:
    """The ``next`` link of a paging object (``where`` names it in errors); None at the end."""
    if container is None:
        return None
    if not isinstance(container, dict):
        raise TypeError(where + " is not an object")
    link = container.get("next")
    if link is None or link == "":
        return None
    if not isinstance(link, str):
        raise TypeError(where + ".next is not a string")
    return link


def json_object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(what + " is not a JSON object")
    return value


def json_list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(what + " is not a list")
    return value


def php_section(owner: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object of a PHP API (Nuweb): PHP serializes an empty associative array as
    ``[]``, so ``[]`` and null both mean "nothing"."""
    value = owner.get(key)
    if value is None or value == []:
        return {}
    return json_object(value, key)


def php_next_link(links: object, where: str) -> str | None:
    """``next_link`` of a PHP API's paging object, where ``[]`` (an empty associative
    array) means none, as null does."""
    if links == []:
        return None
    return next_link(links, where)


def describe_problem(exc: Exception) -> str:
    """What is wrong with a malformed page, fit for logs and errors: the kind of problem and
    a missing key's name only, never a value, which could be a holder's personal data."""
    if isinstance(exc, KeyError):
        return "missing field " + repr(exc.args[0])[:60]
    return type(exc).__name__ + ": " + str(exc)[:120]
