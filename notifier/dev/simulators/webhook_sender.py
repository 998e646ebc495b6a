"""A simulator's outbound webhooks, sent the way the provider documents sending them.

Nuweb (https://docs.nuwebgroup.com/core-platform/technical/webhooks): POST, header
``Signature`` = hex HMAC-SHA256 of the raw body, a 3 s timeout, at most 3 attempts with
exponential backoff, then the delivery is dropped. Ticket Tailor
(https://developers.tickettailor.com/docs/webhook/security): header
``Tickettailor-Webhook-Signature: t=<unix>,v1=<hex>`` over timestamp + raw body, an envelope
``{id, created_at, event, resource_url, payload}``.
# Assumption: Ticket Tailor's timeout and retry schedule are not documented (a third party
# reports retries for up to 72 hours); the simulator uses Nuweb's 3 attempts and a 10 s
# timeout, the stricter reading for a receiver that must answer fast.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
import orjson

from notifier.push.signatures import (
    NUWEB_HEADER,
    TICKETTAILOR_HEADER,
    nuweb_header,
    tickettailor_header,
)

Scheme = Literal["nuweb", "tickettailor"]


@dataclass(frozen=True, slots=True)
class SenderPolicy:
    attempts: int
    timeout: float
    first_backoff: float  # doubled after each failed attempt


POLICIES: Final[Mapping[Scheme, SenderPolicy]] = {
    "nuweb": SenderPolicy(attempts=3, timeout=3.0, first_backoff=1.0),
    "tickettailor": SenderPolicy(attempts=3, timeout=10.0, first_backoff=1.0),
}


class WebhookSender:
    """Delivers ``send()``'s payloads to ``url`` in the background, signed per ``scheme``.

    ``outcomes`` records, per delivery, the final status (None when every attempt failed to
    get an answer); ``close`` waits for deliveries in flight, bounded by their attempts.
    """

    def __init__(
        self,
        url: str,
        *,
        scheme: Scheme,
        secret: bytes,
        policy: SenderPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._scheme = scheme
        self._secret = secret
        self._policy = policy or POLICIES[scheme]
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[int | None] = []

    def send(self, event: str, payload: Mapping[str, Any]) -> None:
        """Queue one webhook (``event`` names it: Nuweb's key, Ticket Tailor's event type)."""
        body = self._body(event, payload)
        task = asyncio.get_running_loop().create_task(self._deliver(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _body(self, event: str, payload: Mapping[str, Any]) -> bytes:
        if self._scheme == "nuweb":
            return orjson.dumps(payload)
        envelope = {
            "id": "wh_" + secrets.token_hex(8),
            "created_at": int(self._clock()),
            "event": event,
            "resource_url": None,
            "payload": payload,
        }
        return orjson.dumps(envelope)

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._scheme == "nuweb":
            headers[NUWEB_HEADER] = nuweb_header(self._secret, body)
        else:
            at = int(self._clock())
            headers[TICKETTAILOR_HEADER] = tickettailor_header(self._secret, body, at=at)
        return headers

    async def _deliver(self, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        backoff = self._policy.first_backoff
        status: int | None = None
        for attempt in range(self._policy.attempts):
            if attempt:
                await asyncio.sleep(backoff)
                backoff *= 2
            status = await self._attempt(self._session, body)
            if status is not None and 200 <= status < 300:
                break
        self.outcomes.append(status)

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes) -> int | None:
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout)
        try:
            # Signed per attempt: Ticket Tailor's timestamp is the time of sending.
            async with session.post(
                self._url, data=body, headers=self._headers(body), timeout=timeout
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None
