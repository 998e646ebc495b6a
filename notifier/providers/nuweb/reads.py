"""Reading Nuweb's paged lists (the adapter's only I/O, with ``adapter``).

Every list endpoint pages with ``links.next`` (``pagination.next`` for entry tickets).
The spec's own examples give next links on another scheme and host than the API's
(``http://api.willms.com/v1/event-tickets?page=5`` in the admin OpenAPI's examples of
GET /v1/event-tickets, /v1/events, /v1/order-items): a link contributes only its path and
query, and is always sent to the configured origin, so the token never goes elsewhere
and such a link never fails a read. Our filters are sent again with every page: a link
may carry only ``?page=N``, as the spec's do.

A read stops at a page cap; the link it stopped at is where the next step resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from yarl import URL

from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.providers.http import ProviderHttpClient
from notifier.providers.nuweb.pacing import MAX_RATE_LIMIT_WAITS, RatePacer

__all__ = ["Fetcher", "Paged", "link_target", "read_pages"]


class _Linked(Protocol):
    @property
    def next_link(self) -> str | None: ...


P = TypeVar("P", bound=_Linked)


# What yarl raises for a link it cannot parse (an IndexError for e.g. "http://[::1]@").
_URL_ERRORS = (ValueError, TypeError, UnicodeError, IndexError)


def link_target(link: str, current: str = "/") -> str:
    """The path and query of a next link, to be sent to the configured origin: its scheme,
    host, port and user info are never used. A link without a path keeps the current
    one's; a relative path is resolved against it."""
    try:
        url = URL(link)
        path = url.raw_path
        here = URL(current).raw_path or "/"
        if not path:
            path = here
        elif not path.startswith("/"):
            path = URL("http://origin" + here).join(URL(path, encoded=True)).raw_path
        query = url.raw_query_string
    except _URL_ERRORS as exc:
        raise FatalProviderError("Nuweb sent a malformed next link") from exc
    if not path.startswith("/"):  # e.g. "0:0:" reads as a scheme: nothing to go by
        raise FatalProviderError("Nuweb sent a malformed next link")
    return path + ("?" + query if query else "")


@dataclass(slots=True)
class _Read:
    payload: object
    requests: int


class Fetcher:
    """Paced GETs with the company's headers; a 429 is waited out a bounded number of times."""

    def __init__(
        self, http: ProviderHttpClient, headers: Mapping[str, str], pacer: RatePacer
    ) -> None:
        self._http = http
        self._headers = dict(headers)
        self._pacer = pacer

    async def get(self, target: str, params: Mapping[str, str]) -> _Read:
        requests = 0
        waits = 0
        while True:
            await self._pacer.wait_turn()
            try:
                result = await self._http.fetch_json(target, params=params, headers=self._headers)
            except RetriableProviderError as exc:
                # The client tried ``max_attempts`` times before giving up.
                requests += self._http.policy.max_attempts
                if exc.status != 429 or waits >= MAX_RATE_LIMIT_WAITS:
                    raise
                waits += 1
                await self._pacer.wait_after_429(exc.retry_after)
                continue
            self._pacer.observe(result.headers)
            return _Read(result.payload, requests + result.attempts)


@dataclass(frozen=True, slots=True)
class Paged(Generic[P]):
    """The pages one step read, the requests it took, and the link to resume from when
    the page cap cut the read short (None: read to its end)."""

    pages: list[P]
    requests: int
    resume: str | None


async def read_pages(
    fetcher: Fetcher,
    first: str,
    params: Mapping[str, str],
    *,
    cap: int,
    parse: Callable[[object], P],
    finished: Callable[[P], bool],
) -> Paged[P]:
    """Pages from ``first`` (a path, or a resumed link's path and query) until the end,
    ``finished`` or ``cap`` pages; a link handed out twice in one step is refused."""
    target, pages, requests = first, [], 0
    seen: set[str] = set()
    while True:
        read = await fetcher.get(target, params)
        requests += read.requests
        page = parse(read.payload)
        pages.append(page)
        if page.next_link is None or finished(page):
            return Paged(pages, requests, None)
        target = link_target(page.next_link, target)
        if target in seen:
            raise FatalProviderError("Nuweb pagination repeated a next link")
        seen.add(target)
        if len(pages) >= cap:
            return Paged(pages, requests, target)
