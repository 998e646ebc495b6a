"""Reading provider JSON fields the same way in every adapter.

Type checks are exact: ``bool`` is an ``int`` in Python and a float id would lose digits
silently, so neither is accepted as an id. Callers translate the ``TypeError`` these raise
into a ``FatalProviderError`` for the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from yarl import URL

from notifier.errors import FatalProviderError
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


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """A full name as (given, family): the first word, then the rest (None when absent).

    Thai and Western names both put the given name first; Eventpop, Ticket Tailor and Nuweb
    send a single name field where their first/last fields are missing or absent.
    """
    parts = (full or "").split(None, 1)
    if not parts:
        return None, None
    return parts[0], (parts[1].strip() if len(parts) > 1 else "") or None


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


# What yarl raises for a link it cannot parse: mostly ValueError, but an IndexError for
# e.g. "http://[::1]@" (found by the property test).
_URL_ERRORS = (ValueError, TypeError, UnicodeError, IndexError)


def same_origin_link(link: str, current: str) -> str:
    """Where to send the request a ``next`` link asks for: its path and query, always on
    the origin (scheme, host, port) of ``current``, the configured URL that was read.

    A link's own scheme, host, port and user info are never used: Nuweb's spec gives next
    links on another scheme and host (``http://api.example.com/...`` in its examples), and
    a link naming another host must not carry the token there. A link with no path keeps
    ``current``'s; a relative path is resolved against it. ``FatalProviderError`` if the
    link cannot be parsed at all (the link, which may hold a token, is never quoted).
    """
    try:
        target = URL(link)
        here = URL(current)
        path = target.raw_path
        if not path:
            path = here.raw_path
        elif not path.startswith("/"):
            path = here.join(URL.build(path=path, encoded=True)).raw_path
        resolved = URL.build(
            scheme=here.scheme,
            authority=here.raw_authority,
            path=path,
            query_string=target.raw_query_string,
            encoded=True,
        )
        return str(resolved)
    except _URL_ERRORS as exc:
        raise FatalProviderError("malformed next link: " + type(exc).__name__) from exc


def link_parameter(link: str, name: str) -> str:
    """The value of query parameter ``name`` in a ``next`` link (a cursor such as Shotgun's
    ``after``); ``FatalProviderError`` if the link is malformed or lacks it, since
    following it anyway would read the first page again."""
    try:
        value = URL(link).query.get(name)
    except _URL_ERRORS as exc:
        raise FatalProviderError("malformed next link: " + type(exc).__name__) from exc
    if not value:
        raise FatalProviderError("next link has no " + repr(name) + " parameter")
    return value


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
