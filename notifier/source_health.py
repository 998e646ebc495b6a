"""What /readyz and the metrics say about the store and each source (docs/reliability.md).

A failed poll, whatever raised it, is recorded here once: counted by type, logged once, and
kept as the source's ``SourceFailure`` until a poll succeeds. Readiness fails only on what
affects every source (the store, a sink's cluster); a failing source is listed, by id, in
the detail, never making the pod unready.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from notifier.errors import FatalProviderError, NotifierError
from notifier.observability import (
    OUTBOX_PENDING,
    POLL_ERRORS,
    POLL_FAILURES,
    POLLS,
    SOURCE_REFUSED,
    STATE_FILE_BYTES,
    Readiness,
)
from notifier.sinks.base import Sink
from notifier.store.base import StateStore

log = structlog.get_logger(__name__)

# Store writes failed in a row before /readyz says so: one failure is a hiccup (a lock held
# for a moment), three in a row is a condition (disk full, read-only volume).
STORE_FAILURES_UNREADY = 3
# Provider answers that mean "this source's credentials are refused": alert, keep polling.
REFUSED_STATUSES = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """Why a source's last poll failed, as /readyz shows it (no message: it may name URLs)."""

    error: str
    status: int | None
    refused: bool
    since: datetime

    def detail(self, source: str, organizer: str) -> dict[str, object]:
        return {
            "source": source,
            "organizer": organizer,
            "error": self.error,
            "status": self.status,
            "credentials_refused": self.refused,
            "since": self.since.isoformat(),
        }


def observe_failure(
    exc: Exception,
    *,
    source: str,
    failures: int,
    previous: SourceFailure | None,
    now: datetime,
) -> SourceFailure:
    """Count and log (once) a failed poll, whatever raised; returns the source's failure."""
    kind = type(exc).__name__
    status = getattr(exc, "status", None)
    status = status if isinstance(status, int) else None
    refused = isinstance(exc, FatalProviderError) and status in REFUSED_STATUSES
    POLLS.labels(source, "error").inc()
    POLL_ERRORS.labels(source, kind).inc()
    POLL_FAILURES.labels(source).set(failures + 1)
    SOURCE_REFUSED.labels(source).set(1 if refused else 0)
    if isinstance(exc, NotifierError):
        log.error("poll_failed", error=str(exc), error_type=kind)
    else:
        # Not one of ours: a bug or a library error nobody translated. Where it was raised
        # is logged, not the traceback (a rich one would print local values: credentials);
        # the source backs off and every other source goes on.
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        log.error("poll_crashed", error=str(exc)[:500], error_type=kind, where=where)
    since = previous.since if previous is not None and previous.error == kind else now
    return SourceFailure(error=kind, status=status, refused=refused, since=since)


def observe_success(source: str) -> None:
    POLL_FAILURES.labels(source).set(0)
    SOURCE_REFUSED.labels(source).set(0)


async def readiness(
    store: StateStore, sinks: Sequence[Sink], failing: list[dict[str, object]]
) -> Readiness:
    """Unready when the store cannot be read, or its writes have failed
    ``STORE_FAILURES_UNREADY`` times in a row (until one succeeds), or a sink's cluster
    does not answer; ``failing`` (sources, by id) is detail only."""
    checks = {"config": True, "store": True}
    try:
        await store.pending_count()
    except NotifierError:
        checks["store"] = False
    if store.consecutive_write_failures >= STORE_FAILURES_UNREADY:
        checks["store"] = False
    for sink in sinks:
        ping = getattr(sink, "ping", None)
        if ping is not None:
            checks[sink.name] = bool(await ping())
    detail: dict[str, object] = {
        "store_write_failures": store.consecutive_write_failures,
        "failing_sources": failing,
    }
    return Readiness(checks=checks, detail=detail)


async def watch_store(
    store: StateStore,
    stop: asyncio.Event,
    stopped_within: Callable[[asyncio.Event, float], Awaitable[bool]],
) -> None:
    """Every 5 s: the outbox depth and the state file's size, as gauges."""
    while not stop.is_set():
        try:
            OUTBOX_PENDING.set(await store.pending_count())
            STATE_FILE_BYTES.set(await store.file_bytes())
        except NotifierError as exc:  # a busy or failing store: /readyz reports it, go on
            log.warning("store_gauges_failed", error=str(exc))
        if await stopped_within(stop, 5.0):
            return
