"""Each stream of a Nuweb source fails, backs off and recovers on its own (pure).

A source reads several streams in one poll: entry tickets per event (the check-ins),
order items, inventory per event, and the event list. A secondary stream that fails must
not stop the check-ins, so its failure is kept here: the stream is skipped until its
back-off has passed (capped exponential, on the adapter's clock), its cursor position
stays where it was, and its recovery is logged once. The state lives in memory: after a
restart every stream is tried again at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from notifier.errors import ProviderError
from notifier.providers.nuweb.wire import PROVIDER

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "StreamHealth", "fails_the_source"]

log = structlog.get_logger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=15)


def fails_the_source(exc: ProviderError) -> bool:
    """Refused credentials concern every stream alike: they fail the source, not a stream."""
    return exc.status in (401, 403)


@dataclass(slots=True)
class _Failing:
    failures: int
    retry_at: datetime


class StreamHealth:
    """Which streams are backing off, and until when."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._failing: dict[str, _Failing] = {}

    def due(self, stream: str, now: datetime) -> bool:
        """Whether ``stream`` may be read now (it is not backing off)."""
        failing = self._failing.get(stream)
        return failing is None or now >= failing.retry_at or now < failing.retry_at - BACKOFF_CAP

    def failing(self, stream: str) -> bool:
        return stream in self._failing

    def failed(self, stream: str, exc: ProviderError, now: datetime) -> None:
        """Note a failure of ``stream``: it backs off, doubling each time up to the cap."""
        previous = self._failing.get(stream)
        failures = 1 if previous is None else previous.failures + 1
        wait = min(BACKOFF_BASE * 2 ** min(failures - 1, 16), BACKOFF_CAP)
        self._failing[stream] = _Failing(failures, now + wait)
        log.warning(
            "nuweb_stream_failed",
            provider=PROVIDER,
            source=self._source,
            stream=stream,
            failures=failures,
            retry_in_seconds=wait.total_seconds(),
            error=str(exc),
            error_type=type(exc).__name__,
        )

    def succeeded(self, stream: str) -> None:
        failing = self._failing.pop(stream, None)
        if failing is not None:
            log.info(
                "nuweb_stream_recovered",
                provider=PROVIDER,
                source=self._source,
                stream=stream,
                after_failures=failing.failures,
            )

    def forget(self, keep: set[str]) -> None:
        """Drop the state of streams no longer read (an event no longer followed)."""
        for stream in [name for name in self._failing if name not in keep]:
            del self._failing[stream]
