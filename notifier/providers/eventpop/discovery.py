"""Which events an Eventpop source follows when it lists none: the organizer's own list.

``GET /organizers/{org}/events`` (Eventpop public API Swagger, "List events for an
organizer"; it needs an application token of an application the organizer owns, from
the client-credentials grant of the source's client_id and client_secret) is read at most once per
``DISCOVERY_INTERVAL``, latest ``end_at`` first, until events ended longer ago than the
close-out window: every current and upcoming event is followed, a new one within a
minute, and an ended one is dropped once its close-out window has passed (late door
syncs and refunds land in that window).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.providers.base import EventWindow
from notifier.providers.eventpop.oauth import AppToken
from notifier.providers.eventpop.streams import PageBudget
from notifier.providers.eventpop.wire import PROVIDER, ListedEvent, parse_events

log = structlog.get_logger(__name__)

DISCOVERY_INTERVAL = timedelta(seconds=60)
# Assumption: no source gives a close-out time; 12 h after end_at covers late syncs of
# offline scanners and next-morning refunds, at one request per poll per event.
DEFAULT_CLOSE_OUT = timedelta(hours=12)
EVENTS_PER_PAGE = 100
MAX_EVENT_PAGES = 50


class EventFinder:
    """The events one organizer source follows, from the listing, refreshed each minute."""

    def __init__(
        self,
        api: AppToken,
        organizer_url: str,
        *,
        close_out: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._url = organizer_url + "/events"
        self._close_out = close_out
        self._clock = clock
        self._followed: dict[str, ListedEvent] = {}
        self._listed_at: datetime | None = None
        self._pages = 0

    @property
    def requests(self) -> int:
        return self._pages + self._api.requests

    def event_ids(self) -> list[str]:
        return list(self._followed)

    def windows(self) -> dict[str, EventWindow]:
        """(start, end) of the followed events that give a start: the live-poll windows."""
        return {
            event.event_id: (event.start_at, event.end_at)
            for event in self._followed.values()
            if event.start_at is not None
        }

    async def refresh(self, budget: PageBudget) -> None:
        """List the organizer's events if the last listing is a minute old."""
        now = self._clock()
        last = self._listed_at
        if last is not None and last <= now < last + DISCOVERY_INTERVAL:
            return
        try:
            listed = await self._list(budget, now - self._close_out)
        except RetriableProviderError as exc:
            if last is None:
                raise
            # The events followed a minute ago are still right; their tickets go on.
            log.warning("events_listing_failed", provider=PROVIDER, error=str(exc))
            return
        added = listed.keys() - self._followed.keys()
        dropped = self._followed.keys() - listed.keys()
        if last is not None and (added or dropped):
            log.info(
                "events_followed",
                provider=PROVIDER,
                added=sorted(added),
                dropped=sorted(dropped),
                following=len(listed),
            )
        self._followed = listed
        self._listed_at = now

    async def _list(self, budget: PageBudget, cutoff: datetime) -> dict[str, ListedEvent]:
        followed: dict[str, ListedEvent] = {}
        for number in range(1, MAX_EVENT_PAGES + 1):
            budget.spend()
            events = parse_events(await self._page(number))
            for event in events:
                if event.end_at is None or event.end_at > cutoff:
                    followed[event.event_id] = event
            # Latest end first: once one event ended before the cutoff, all later do.
            # Assumption: events without end_at sort first (PostgreSQL's NULLS FIRST for
            # descending order); they are followed.
            ended = any(e.end_at is not None and e.end_at <= cutoff for e in events)
            if ended or len(events) < EVENTS_PER_PAGE:
                return followed
        return followed

    async def _page(self, number: int) -> object:
        params = {
            "order_by": "end_at",
            "order": "desc",
            "per_page": str(EVENTS_PER_PAGE),
            "page": str(number),
        }
        try:
            result = await self._api.get(self._url, params)
        except FatalProviderError as exc:
            if exc.status != 403:
                raise
            raise FatalProviderError(
                "Eventpop refused the organizer's events list (HTTP 403: the application of "
                "client_id must be owned by the organizer); use an application the "
                "organizer owns, or list the source's event_ids in the config",
                status=403,
            ) from exc
        self._pages += result.attempts
        return result.payload
