"""Scripted failures shared by every provider simulator.

A test pushes faults; each fires once, on the next request it applies to. The same
vocabulary works against every provider, so the shared provider suite can inject "a 500
on page 2" or "a 429 with Retry-After" without knowing which API it is talking to.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

FaultKind = Literal["status", "delay", "malformed_json", "fail_on_page"]
ErrorResponder = Callable[[int, str, dict[str, str]], web.Response]


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted failure, consumed by the next matching request."""

    kind: FaultKind
    http_status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    page: int = 1

    @classmethod
    def status(cls, http_status: int, *, retry_after: float | str | None = None) -> Fault:
        """Answer the next request with ``http_status`` (and ``Retry-After`` if given)."""
        header = None if retry_after is None else _header_text(retry_after)
        return cls("status", http_status=http_status, retry_after=header)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Hold the next request ``seconds`` before answering it normally."""
        return cls("delay", seconds=seconds)

    @classmethod
    def malformed_json(cls) -> Fault:
        """Answer the next request 200 with a truncated JSON body."""
        return cls("malformed_json")

    @classmethod
    def fail_on_page(cls, page: int) -> Fault:
        """Answer 500 to the ``page``-th page (1-based) of the next read that gets that far."""
        return cls("fail_on_page", page=page)


def _header_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


class FaultQueue:
    """Faults waiting for requests; ``push`` them, each fires once."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()

    def push(self, *faults: Fault) -> None:
        self._queue.extend(faults)

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)

    def take(self, page: int) -> Fault | None:
        """The first fault that applies to a request for page ``page``, removed from the queue."""
        for fault in self._queue:
            if fault.kind != "fail_on_page" or fault.page == page:
                self._queue.remove(fault)
                return fault
        return None


async def fault_response(fault: Fault, error: ErrorResponder) -> web.Response | None:
    """The response a fault forces, or None when the request should then proceed normally.

    ``error`` renders the provider's own error body, so injected failures look like the
    real API's.
    """
    if fault.kind == "delay":
        await asyncio.sleep(fault.seconds)
        return None
    if fault.kind == "malformed_json":
        return web.Response(body=b'{"data": [{"id": 1', content_type="application/json")
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    return error(fault.http_status, "injected fault", headers)
