"""Retention (docs/reliability.md): what the store may forget, and when.

The outbox keeps an event until every sink has it, then ``retention.delivered`` longer; a
parked delivery keeps its event until replayed or ``retention.parked``. The tickets of an
event that ended ``retention.ended_events`` ago are retired by the source's own poll loop
(``SourcePoller.retire``), between polls, so no poll in flight sees them vanish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from notifier.config.models import Retention
from notifier.errors import NotifierError
from notifier.observability import RETENTION_DELETED
from notifier.providers.base import EventWindow
from notifier.schedule import ASSUMED_EVENT_LENGTH
from notifier.store.base import Pruned, StateStore

if TYPE_CHECKING:
    from notifier.service import ScheduledSource

log = structlog.get_logger(__name__)


def ended_events(windows: Mapping[str, EventWindow], *, horizon: datetime) -> list[str]:
    """The events (pure) whose end, or assumed end, is before ``horizon``."""
    return [
        event_id
        for event_id, (start, end) in windows.items()
        if (end if end is not None else start + ASSUMED_EVENT_LENGTH) < horizon
    ]


async def prune_once(
    store: StateStore, retention: Retention, *, now: float | None = None
) -> Pruned:
    """One retention pass over the outbox (delivered and long-parked events)."""
    moment = time.time() if now is None else now
    pruned = await store.prune_outbox(
        delivered_before=moment - retention.delivered.total_seconds(),
        parked_before=moment - retention.parked.total_seconds(),
    )
    RETENTION_DELETED.labels("event").inc(pruned.events)
    RETENTION_DELETED.labels("delivery").inc(pruned.deliveries)
    if pruned.events:
        log.info("outbox_pruned", events=pruned.events, deliveries=pruned.deliveries)
    return pruned


async def retention_loop(
    store: StateStore,
    retention: Retention,
    stop: asyncio.Event,
    stopped_within: Callable[[asyncio.Event, float], Awaitable[bool]],
) -> None:
    interval = retention.interval.total_seconds()
    while not stop.is_set():
        try:
            await prune_once(store, retention)
        except NotifierError as exc:  # a full disk: counted by the store, tried again later
            log.warning("retention_failed", error=str(exc))
        if await stopped_within(stop, interval):
            return


async def retire_ended_events(
    retention: Retention, scheduled: ScheduledSource, now: datetime
) -> None:
    """Forget the tickets of a source's events that ended ``retention.ended_events`` ago,
    at most once per ``retention.interval``; called by the source's own loop, between
    polls. Only events whose window the adapter reports can be found this way."""
    last = scheduled.last_retention
    if last is not None and now - last < retention.interval:
        return
    scheduled.last_retention = now
    ended = ended_events(scheduled.windows, horizon=now - retention.ended_events)
    if not ended:
        return
    forgotten = await scheduled.poller.retire(ended)
    for event_id in ended:
        scheduled.windows.pop(event_id, None)
    RETENTION_DELETED.labels("ticket").inc(forgotten)
