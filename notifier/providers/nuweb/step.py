"""What one bounded step of a Nuweb source reads and the cursor it leaves (``adapter``).

A ``Step`` starts from the decoded cursor and the adapter's clock, reads the streams the
adapter asks for (each through ``collect``), and keeps, per stream, the new position or
the old one when the stream failed or was cut short by the page cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

import structlog

from notifier.errors import FatalProviderError
from notifier.model import SourceId, TicketRecord, TicketTypeRecord
from notifier.providers.nuweb.collect import (
    INVENTORY_PATHS,
    read_entry,
    read_events,
    read_inventory,
    read_order_items,
)
from notifier.providers.nuweb.cursor import (
    DEEP_INTERVAL,
    ORDER_ITEMS_OVERLAP,
    NuwebCursor,
    Resume,
    deep_read_due,
    events_due,
    inventory_due,
    order_items_due,
    order_items_position,
    order_items_window,
    sweep_due,
)
from notifier.providers.nuweb.events import (
    IDLE_ENTRY_INTERVAL,
    followed,
    is_live,
    shift,
    still_followed,
)
from notifier.providers.nuweb.orders import (
    OrderItemsNews,
    apply_order_items,
    fold_order_items,
    rewind_points,
)
from notifier.providers.nuweb.reads import Fetcher
from notifier.providers.nuweb.wire import PROVIDER

__all__ = ["MIN_STREAM_PAGES", "InventoryEndpoint", "Step", "StepSettings"]

log = structlog.get_logger(__name__)

InventoryEndpoint = Literal["event-tickets", "sale-items"]
MIN_STREAM_PAGES = 2  # every stream due moves on in every step, however many share the cap
# The deprecated inventory endpoint is gone when it answers these (it "will be removed").
GONE = (404, 410)
ORDER_ITEMS = "order_items"
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class StepSettings:
    source: SourceId
    event_ids: tuple[str, ...]  # empty: follow every current event of the company
    lookback: timedelta
    inventory_path: str
    order_items_interval: timedelta
    reconcile_interval: timedelta | None
    page_cap: int
    close_out: timedelta


class Step:
    """One poll's reads and the cursor they make."""

    def __init__(
        self,
        settings: StepSettings,
        state: NuwebCursor,
        clock: Callable[[], datetime],
        fetcher: Fetcher,
    ) -> None:
        self._settings, self.state, self._fetcher = settings, state, fetcher
        self._clock = clock
        self.now = clock()
        self._discovers = not settings.event_ids
        self.events = still_followed(state.events, self.now, settings.close_out)
        self.events_read_at = state.events_read_at
        self.found = OrderItemsNews(dict(state.overrides), {}, dict(state.named_holders))
        self.order_items, self.order_items_read_at = state.order_items, state.order_items_read_at
        self.order_items_since = state.order_items_since
        self.rewind: Mapping[str, datetime | None] = {}
        self.entry = dict(state.entry)
        self.inventory = dict(state.inventory)
        self.inventory_read_at = state.inventory_read_at
        self.inventory_endpoint = state.inventory_endpoint
        self.resume = dict(state.resume)
        self.requests = 0
        self.complete = True
        self._records: list[TicketRecord] = []
        self._types: list[TicketTypeRecord] = []
        self._cap = settings.page_cap
        self._deep = self._sweep = False

    # -- events

    @property
    def event_ids(self) -> list[str]:
        return sorted(self.events) if self._discovers else list(self._settings.event_ids)

    def events_due(self) -> bool:
        return self._discovers and events_due(self.state, self.now)

    @property
    def events_required(self) -> bool:
        """Nothing is followed yet: without the list there is nothing to read."""
        return not self.state.events and self.state.events_read_at is None

    async def read_events(self) -> None:
        listing = await read_events(
            self._fetcher,
            ending_after=self.now - self._settings.close_out,
            cap=max(self._settings.page_cap, MIN_STREAM_PAGES),
        )
        self.requests += listing.requests
        listed = followed(listing.events, self.now, self._settings.close_out)
        # A list cut short by the cap only adds: an event it did not reach is not dropped.
        now_followed = listed if listing.whole else {**self.events, **listed}
        added = sorted(set(now_followed) - set(self.events))
        dropped = sorted(set(self.events) - set(now_followed))
        if added or dropped:
            log.info(
                "nuweb_events_followed",
                provider=PROVIDER,
                source=self._settings.source,
                added=added,
                dropped=dropped,
                following=len(now_followed),
            )
        self.events, self.events_read_at = now_followed, self.now

    # -- planning

    def plan(self) -> None:
        """The page share of each stream due in this step."""
        events = len(self.event_ids)
        streams = events + int(self.order_items_due()) + (events if self.inventory_due() else 0)
        self._cap = max(MIN_STREAM_PAGES, self._settings.page_cap // max(streams, 1))

    def order_items_due(self) -> bool:
        if not self.event_ids:
            return False
        interval = self._settings.order_items_interval
        return ORDER_ITEMS in self.resume or order_items_due(self.state, self.now, interval)

    def inventory_due(self) -> bool:
        if any(key.startswith("inventory:") for key in self.resume):
            return True
        return inventory_due(self.state, self.now)

    def entry_wanted(self, event_id: str, last_read: datetime | None) -> bool:
        """Whether this step reads the event's entry tickets: always for a configured or
        live event, one being continued or told of by order items; else once a minute."""
        if self._live(event_id):
            return True
        if "entry:" + event_id in self.resume or event_id in self.rewind or self._sweep:
            return True
        return last_read is None or not timedelta(0) <= self.now - last_read < IDLE_ENTRY_INTERVAL

    def _live(self, event_id: str) -> bool:
        span = self.events.get(event_id)
        return not self._discovers or span is None or is_live(span, self.now)

    def plan_entries(self) -> None:
        lookback, interval = self._settings.lookback, DEEP_INTERVAL
        self._deep = bool(lookback) and deep_read_due(
            self.state, self.now, self.event_ids, interval
        )
        self._sweep = sweep_due(self.state, self.now, self._settings.reconcile_interval)
        if self._sweep:
            log.info("nuweb_reconcile_sweep", provider=PROVIDER, source=self._settings.source)
            for event_id in self.event_ids:  # a sweep starts every event afresh
                self.resume.pop("entry:" + event_id, None)

    # -- order items

    async def read_order_items(self) -> None:
        window = order_items_window(self.state)
        resume = self.resume.get(ORDER_ITEMS)
        start = resume.start if resume is not None else window.start
        began = resume.began if resume is not None and resume.began else self._clock()
        read = await read_order_items(
            self._fetcher,
            self.event_ids,
            start=start,
            resume=None if resume is None else resume.next,
            cap=self._cap,
        )
        self.requests += read.requests
        found = fold_order_items(
            self.state.overrides,
            read.items,
            since=window.since,
            holders=self.state.named_holders,
        )
        self.found, self.order_items_read_at = found, self.now
        self.order_items_since = window.since
        seen = [item.changed_at for item in read.items if item.changed_at is not None]
        newest = max([*seen, *([resume.mark] if resume and resume.mark else [])], default=None)
        if read.resume is not None:
            self.resume[ORDER_ITEMS] = Resume(read.resume, start, newest, began)
        else:
            self.resume.pop(ORDER_ITEMS, None)
            self.order_items = order_items_position(
                [], floor=window.floor, elapsed=self._clock() - began, newest=newest
            )
        self.rewind = rewind_points(
            found.news, event_ids=self.event_ids, overlap=ORDER_ITEMS_OVERLAP, fallback=start
        )
        log.info(
            "nuweb_order_items_read",
            provider=PROVIDER,
            source=self._settings.source,
            items=len(read.items),
            news=len(found.news),
            requests=read.requests,
        )

    # -- entry tickets

    def _entry_start(self, event_id: str) -> datetime | None:
        position = self.state.entry.get(event_id)
        if position is None or self._sweep:
            return None
        start = position
        # An event outside its live window is read once a minute, maybe never in a deep
        # step: each of its reads covers the lookback itself.
        if self._deep or (self._settings.lookback and not self._live(event_id)):
            anchor = self.state.deep_anchors.get(event_id, position)
            start = shift(min(anchor, position), -self._settings.lookback)
        if event_id not in self.rewind:
            return start
        back = self.rewind[event_id]
        return None if back is None else min(start, back)

    async def read_entry(self, event_id: str) -> None:
        key = "entry:" + event_id
        start = self._entry_start(event_id)
        resume = self.resume.get(key)
        if (
            resume is not None
            and event_id in self.rewind
            and (start is None or (resume.start is not None and start < resume.start))
        ):
            resume = None  # order items tell of an earlier change: read from there instead
        read = await read_entry(
            self._fetcher,
            self._settings.source,
            event_id,
            start=start,
            position=self.state.entry.get(event_id),
            resume=resume,
            cap=self._cap,
        )
        self.requests += read.requests
        self._records.extend(read.records)
        self.complete = self.complete and read.full
        if read.position is not None:
            self.entry[event_id] = read.position
        if read.resume is None:
            self.resume.pop(key, None)
        else:
            self.resume[key] = read.resume

    # -- inventory

    async def read_inventory(self, event_id: str) -> None:
        key = "inventory:" + event_id
        path = INVENTORY_PATHS.get(self.inventory_endpoint or "", self._settings.inventory_path)
        try:
            read = await read_inventory(
                self._fetcher,
                self._settings.source,
                path,
                event_id,
                watermark=self.inventory.get(event_id),
                resume=self.resume.get(key),
                cap=self._cap,
            )
        except FatalProviderError as exc:
            if exc.status not in GONE or path != INVENTORY_PATHS["event-tickets"]:
                raise
            self._switch_inventory(exc.status)
            self.resume.pop(key, None)  # its links were the old endpoint's
            return await self.read_inventory(event_id)
        self.requests += read.requests
        self._types.extend(read.records)
        self.inventory_read_at = self.now
        if read.watermark is not None:
            self.inventory[event_id] = read.watermark
        if read.resume is None:
            self.resume.pop(key, None)
        else:
            self.resume[key] = read.resume
        return None

    def _switch_inventory(self, status: int | None) -> None:
        self.inventory_endpoint = "sale-items"
        log.warning(
            "nuweb_inventory_endpoint_switched",
            provider=PROVIDER,
            source=self._settings.source,
            gone="/v1/event-tickets",
            status=status,
            now_reading="/v1/sale-items",
        )

    # -- the result

    def stream_names(self) -> set[str]:
        names = {"events", ORDER_ITEMS}
        for event_id in self.event_ids:
            names.update(("entry:" + event_id, "inventory:" + event_id))
        return names

    def tickets(self) -> list[TicketRecord]:
        # A ticket modified while we paged shows up again on a later page: keep the newest.
        latest = {record.ticket_id: record for record in self._records}
        return list(apply_order_items(list(latest.values()), self.found))

    def ticket_types(self) -> list[TicketTypeRecord]:
        # Timeslots repeat on every page that lists one of their tickets.
        return list({record.ticket_type_id: record for record in self._types}.values())

    def finish(self) -> NuwebCursor:
        state, now = self.state, self.now
        anchors, deep_read_at = state.deep_anchors, state.deep_read_at
        if not self._settings.lookback:
            anchors, deep_read_at = {}, None  # no deep reads to schedule
        elif self._deep:
            # This read began at the listEndTimes it was given: the next deep read starts there.
            anchors, deep_read_at = state.entry, now
        cursor = NuwebCursor(
            entry=self.entry,
            inventory=self.inventory,
            inventory_read_at=self.inventory_read_at,
            deep_anchors=anchors,
            deep_read_at=deep_read_at,
            order_items=self.order_items,
            order_items_read_at=self.order_items_read_at,
            order_items_since=self.order_items_since,
            overrides=self.found.overrides,
            reconciled_at=now
            if self._sweep or state.reconciled_at is None
            else state.reconciled_at,
            named_holders=self.found.holders,
            inventory_endpoint=self.inventory_endpoint,
            events=self.events if self._discovers else {},
            events_read_at=self.events_read_at if self._discovers else None,
            # Only the continuations of streams still read: one left behind would ask for
            # another step forever.
            resume={key: value for key, value in self.resume.items() if key in self.stream_names()},
        )
        return _only_followed(cursor, set(self.event_ids)) if self._discovers else cursor


def _keep(mapping: Mapping[str, V], ids: set[str]) -> dict[str, V]:
    return {key: value for key, value in mapping.items() if key in ids}


def _only_followed(state: NuwebCursor, followed_ids: set[str]) -> NuwebCursor:
    """The cursor without the positions of events no longer followed (it stays bounded)."""
    return replace(
        state,
        entry=_keep(state.entry, followed_ids),
        inventory=_keep(state.inventory, followed_ids),
        deep_anchors=_keep(state.deep_anchors, followed_ids),
    )
