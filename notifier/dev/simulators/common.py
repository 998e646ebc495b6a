"""The building blocks every provider simulator shares: serving an app on loopback, the
request log, the book of which page of a read a request is, and rate-limit windows.

Each simulator keeps only its API's state and wire shapes; what it cites from its
provider's documentation stays with it, where the block is used.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from aiohttp import web

__all__ = ["FixedWindow", "PageBook", "RollingWindow", "request_log", "start_app"]

T = TypeVar("T")

# How many requests a simulator remembers for a test to inspect (bounded: a long demo run
# must not grow memory).
REQUEST_LOG_SIZE = 10_000


async def start_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving ``app``; ``port=0`` picks a free port (see ``runner.addresses``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def request_log() -> deque[T]:
    """A bounded log of the requests seen, newest last (each API has its own record)."""
    return deque(maxlen=REQUEST_LOG_SIZE)


class PageBook:
    """Which page of a read a request is, so a fault can be aimed at page 3.

    A request is identified by a key (its filters and position): the page a ``next`` link
    led to is remembered under the link's key, and forgotten once answered, so a later
    read starting at the same position is page 1 while a retry of a failed page still
    counts as that page.
    """

    def __init__(self) -> None:
        self._pages: dict[str, int] = {}

    def page_number(self, key: str) -> int:
        return self._pages.get(key, 1)

    def page_served(self, key: str) -> None:
        self._pages.pop(key, None)

    def remember_next(self, key: str, page: int) -> None:
        self._pages[key] = page


@dataclass(slots=True)
class FixedWindow:
    """A fixed rate-limit window: requests counted since ``started``. The limit and the
    window's length are given at each count, so a test may change them mid-run."""

    started: datetime | None = None
    used: int = 0

    def count(self, now: datetime, limit: int, length: timedelta) -> tuple[int, int]:
        """Count one request: (remaining, whole seconds to the reset); -1 if over."""
        if self.started is None or now - self.started >= length:
            self.started, self.used = now, 0
        reset = max(int((self.started + length - now).total_seconds()), 0)
        if self.used >= limit:
            return -1, reset
        self.used += 1
        return limit - self.used, reset


class RollingWindow:
    """A rolling window per key: each answered request counts for ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[object, deque[float]] = {}

    def hit(self, key: object, now: float) -> tuple[bool, int, int]:
        """(allowed, remaining, seconds until the oldest counted request expires)."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        available = math.ceil(hits[0] + self.window - now) if hits else 0
        return allowed, self.limit - len(hits), max(available, 0)
