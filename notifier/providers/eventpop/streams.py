"""Reading one Eventpop ticket stream: the HTTP side of the keyset paging in ``adapter``.

An event stream is read by ``updated_at`` keyset (``order_by=updated_at&order=asc``, a
fresh ``page=1`` from the last time read, less ``TIE_MARGIN``), and a window denser than
half a page by id keyset (``order_by=id`` + ``min_id``): see ``adapter``'s docstring.
The user stream is read newest first by page number and stops past the watermark.

A read takes its pages from the step's ``PageBudget``: an event stream stops between
two time pages once the budget is spent (its position is a safe place to resume); a
dense-window sweep, once begun, runs to its end (it is bounded by the tickets sharing
three seconds); the user stream reads to its end (its newest-first order has no safe
place to stop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketRecord
from notifier.providers.eventpop.cursor import wire_time
from notifier.providers.eventpop.oauth import OAuth
from notifier.providers.eventpop.reads import (
    Page,
    Read,
    drop_before,
    last_time,
    max_id,
    reaches_before,
    served_per_page,
    time_of,
)
from notifier.providers.eventpop.wire import parse_page
from notifier.providers.http import FetchResult, ProviderHttpClient

TIE_MARGIN = timedelta(seconds=1)


@dataclass(slots=True)
class PageBudget:
    """Pages one poll step may still read; ``exhausted`` once a read was cut short."""

    left: int
    exhausted: bool = False

    def take(self) -> bool:
        if self.left <= 0:
            self.exhausted = True
            return False
        self.left -= 1
        return True

    def spend(self) -> None:
        """A page read regardless of the budget (a sweep, the user stream)."""
        self.left -= 1


class Api:
    """Authorized GETs: the Bearer header, a refresh ahead of expiry and once on a 401."""

    def __init__(self, http: ProviderHttpClient, auth: OAuth) -> None:
        self.http = http
        self.auth = auth

    async def get(self, url: str, params: Mapping[str, str]) -> FetchResult:
        await self.auth.ensure_fresh()
        used = self.auth.access_token
        try:
            return await self.http.fetch_json(url, params=params, headers=self.auth.headers())
        except FatalProviderError as exc:
            if exc.status != 401 or not self.auth.can_refresh:
                raise
        self.auth.requests += 1  # the refused request
        await self.auth.refresh(reason="unauthorized", used=used)
        # Once only: a 401 right after a refresh is a revoked grant, fatal as raised.
        return await self.http.fetch_json(url, params=params, headers=self.auth.headers())


class StreamReader:
    """Reads the ticket streams of one organizer through ``api``."""

    def __init__(self, api: Api, organizer_url: str, *, source: SourceId, per_page: int) -> None:
        self._api = api
        self._organizer_url = organizer_url
        self._source = source
        self._per_page = per_page

    async def read(
        self, event_id: str | None, lower: datetime | None, budget: PageBudget
    ) -> tuple[Read, bool]:
        """The stream's tickets since ``lower``, and whether it was read to its end."""
        if event_id is None:
            return await self._read_user(lower, budget), True
        return await self._read_event(event_id, lower, budget)

    # -- organizer endpoint: updated_at keyset, id keyset inside dense windows

    async def _read_event(
        self, event_id: str, lower: datetime | None, budget: PageBudget
    ) -> tuple[Read, bool]:
        read = Read()
        while True:
            if not budget.take():
                return read, False
            params = {"order_by": "updated_at", "order": "asc"}
            if lower is not None:
                params["updated_after"] = wire_time(lower)
            page = await self._event_page(read, event_id, params)
            if not page.full:
                return read, True
            lower = await self._next_lower(read, event_id, page.records, lower, budget)

    async def _next_lower(
        self,
        read: Read,
        event_id: str,
        records: list[TicketRecord],
        lower: datetime | None,
        budget: PageBudget,
    ) -> datetime:
        last = last_time(records)
        in_margin = sum(1 for record in records if time_of(record) >= last - TIE_MARGIN)
        if in_margin * 2 > len(records):
            # Restarting at last - margin would re-read most of this page: read the dense
            # window by id instead, then go on past it.
            await self._sweep(read, event_id, last - TIE_MARGIN, last + 2 * TIE_MARGIN, budget)
            following = last + TIE_MARGIN
        else:
            following = last - TIE_MARGIN
        if lower is not None and following <= lower:
            raise FatalProviderError("Eventpop paging made no progress (updated_after ignored?)")
        return following

    async def _sweep(
        self, read: Read, event_id: str, lower: datetime, upper: datetime, budget: PageBudget
    ) -> None:
        """Every ticket updated within (lower, upper), by id keyset: ids do not move."""
        min_id: int | None = None
        while True:
            budget.spend()
            params = {
                "order_by": "id",
                "order": "asc",
                "updated_after": wire_time(lower),
                "updated_before": wire_time(upper),
            }
            if min_id is not None:
                params["min_id"] = str(min_id)
            page = await self._event_page(read, event_id, params)
            if not page.full:
                return
            min_id = max_id(page.records)

    async def _event_page(self, read: Read, event_id: str, params: dict[str, str]) -> Page:
        url = self._organizer_url + "/events/" + event_id + "/tickets"
        page = await self._page(read, url, {**params, "page": "1"}, event_id)
        for record in page.records:
            time_of(record)  # keyset paging needs every updated_at
        return page

    # -- user endpoint: newest first, stop past the watermark

    async def _read_user(self, lower: datetime | None, budget: PageBudget) -> Read:
        # Page numbers are safe here: order=desc puts tickets updated meanwhile at the
        # front, which only repeats a ticket on the next page (de-duplicated) and leaves
        # the updated one for the next poll, whose watermark it is newer than.
        read = Read()
        number = 1
        while True:
            budget.spend()
            params = {"order_by": "updated_at", "order": "desc", "page": str(number)}
            page = await self._page(read, self._organizer_url + "/tickets", params, None)
            if not page.full or (lower is not None and reaches_before(page.records, lower)):
                return drop_before(read, lower)
            number += 1

    # -- one request

    async def _page(
        self, read: Read, url: str, params: dict[str, str], event_id: str | None
    ) -> Page:
        result = await self._api.get(url, {**params, "per_page": str(self._per_page)})
        read.count_page(result.attempts)
        records = parse_page(result.payload, source=self._source, event_id=event_id)
        read.add(records)
        return Page(records, len(records) >= served_per_page(result.payload, self._per_page))
