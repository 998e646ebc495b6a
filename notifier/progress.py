"""Progress of long reads (a first baseline, a reconcile sweep), shown to whoever watches.

The adapter does not need to know: the HTTP client calls the ``PAGE_FETCHED`` callback
once per page, and ``reporting`` points it at a reporter for the current task. On a
terminal that is a live rich progress line; otherwise a structured log line at most every
``every`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import structlog

from notifier.providers.http import PAGE_FETCHED

log = structlog.get_logger(__name__)


class Reporter(Protocol):
    def page(self) -> None: ...


class LogReporter:
    """Structured lines for log collectors: what, how far, how long."""

    def __init__(
        self, label: str, *, every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._label = label
        self._every = every
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self.pages = 0

    def page(self) -> None:
        self.pages += 1
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            log.info(
                "read_progress",
                read=self._label,
                pages=self.pages,
                seconds=round(now - self._started, 1),
            )

    def finish(self) -> None:
        log.info(
            "read_finished",
            read=self._label,
            pages=self.pages,
            seconds=round(self._clock() - self._started, 1),
        )


class RichReporter:
    """A live spinner line on the operator's terminal."""

    def __init__(self, label: str) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} pages"),
            TimeElapsedColumn(),
            transient=False,
        )
        self._task = self._progress.add_task(label, total=None)
        self._progress.start()

    def page(self) -> None:
        self._progress.advance(self._task)

    def finish(self) -> None:
        self._progress.stop()


@contextmanager
def reporting(label: str, *, terminal: bool | None = None) -> Iterator[Reporter]:
    """Report the pages fetched inside the block, for the current task only."""
    on_terminal = sys.stderr.isatty() if terminal is None else terminal
    reporter: LogReporter | RichReporter = (
        RichReporter(label) if on_terminal else LogReporter(label)
    )
    token = PAGE_FETCHED.set(reporter.page)
    try:
        yield reporter
    finally:
        PAGE_FETCHED.reset(token)
        reporter.finish()
