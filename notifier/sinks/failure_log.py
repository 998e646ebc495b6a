"""Delivery failures logged once per sink per interval, with a count, not once per event.

In an outage every pending event fails on every attempt: a Kafka sink retrying a backlog
every few seconds wrote some 24,000 lines a minute. Operators need to know that a sink is
failing, why, and how much; the per-event detail is in the outbox (`notifier deliveries`)
and every attempt is counted in ``notifier_deliveries_total``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import structlog

log = structlog.get_logger(__name__)

DEFAULT_INTERVAL_S: Final = 60.0


@dataclass(slots=True)
class _Window:
    logged_at: float
    failed: int = 0  # failures since the last line, not yet reported
    parked: int = 0


@dataclass(slots=True)
class FailureLog:
    """At most one ``delivery_failed`` line per sink per ``interval`` seconds.

    The first failure of a sink is logged at once; later ones within the interval are
    counted and reported by the first line after it. A success after failures logs
    ``delivery_recovered`` with what was still unreported, so a short outage is not left
    half-told.
    """

    interval: float = DEFAULT_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, _Window] = field(default_factory=dict)

    def failed(self, sink: str, *, failed: int, parked: int, error: str) -> None:
        """Note ``failed`` failures (``parked`` of them parked) in one settled batch."""
        now = self.clock()
        window = self._windows.get(sink)
        if window is None or now - window.logged_at >= self.interval:
            unreported = window.failed if window else 0
            unreported_parked = window.parked if window else 0
            self._windows[sink] = _Window(logged_at=now)
            log.warning(
                "delivery_failed",
                sink=sink,
                failures=unreported + failed,
                parked=unreported_parked + parked,
                interval_s=self.interval if window else 0.0,
                last_error=error,
            )
            return
        window.failed += failed
        window.parked += parked

    def succeeded(self, sink: str) -> None:
        """A delivery went through: close the sink's failure window, if one is open."""
        window = self._windows.pop(sink, None)
        if window is not None:
            log.info(
                "delivery_recovered",
                sink=sink,
                unreported_failures=window.failed,
                unreported_parked=window.parked,
            )
