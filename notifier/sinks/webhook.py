"""Signed webhook delivery to one endpoint (docs/design.md §4, Webhooks).

Each event is POSTed as a structured-mode CloudEvent (``application/cloudevents+json``) and
signed per Standard Webhooks with the ``standardwebhooks`` library: ``webhook-id`` is the
event id, so every retry and replay carries the same id and receivers can dedupe.

This sink makes one attempt per event and says what happened; the dispatcher owns the
retry schedule (``notifier.sinks.retry.next_delay``) and the pacing: after 429/502/503/504
the sink's ``Throttle`` widens and ``not_before()`` tells the dispatcher when this endpoint
may be called again, while ``batch_limit()`` drops to 1 so a struggling endpoint gets one
request at a time. Each sink has its own concurrency limit and timeout, so a slow or dead
endpoint only ever holds up its own deliveries (when sinks share one ``ClientSession``, its
connector limit must cover the sum of their ``concurrency``, or hanging endpoints could take
every pooled connection).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import aiohttp
import orjson
import structlog
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError
from yarl import URL

from notifier import __version__
from notifier.envelope import OutboxEvent
from notifier.errors import (
    ConfigError,
    DeliveryError,
    FatalDeliveryError,
    RetriableDeliveryError,
)
from notifier.sinks.filters import matches
from notifier.sinks.retry import (
    SLOW_DOWN_STATUSES,
    Throttle,
    ThrottlePolicy,
    parse_retry_after,
    throttle_after_response,
)

log = structlog.get_logger(__name__)

CONTENT_TYPE: Final = "application/cloudevents+json"
USER_AGENT: Final = f"checkin-notifier/{__version__}"
# Enough of an error page to tell a proxy's 502 from the app's own error, never a whole body.
RESPONSE_EXCERPT_BYTES: Final = 512


def _utc_now() -> datetime:
    return datetime.now(UTC)


def structured_body(event: OutboxEvent) -> bytes:
    """The CloudEvents structured JSON: context attributes plus ``data`` as embedded JSON.

    ``orjson.Fragment`` splices the stored data bytes in verbatim, so the body carries
    exactly the bytes committed to the outbox, without a parse and re-serialization.
    """
    return orjson.dumps({**event.attributes(), "data": orjson.Fragment(event.data)})


def signed_headers(
    signers: Sequence[Webhook], event: OutboxEvent, body: bytes, *, at: datetime
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed as of ``at`` (whole seconds, UTC).

    One signature per secret, space-separated, as the specification allows: while a secret
    is rotated, a receiver that knows either the old or the new one accepts the delivery.
    """
    seconds = int(at.timestamp())
    # sign() reads the datetime's fields as UTC, so hand it an explicitly UTC moment
    moment = datetime.fromtimestamp(seconds, UTC)
    payload = body.decode()
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": " ".join(signer.sign(event.id, moment, payload) for signer in signers),
    }


def outcome_for(status: int, retry_after: float | None, *, sink: str) -> DeliveryError | None:
    """What a response status means for the outbox (pure)."""
    if 200 <= status < 300:
        return None
    if status == 410:
        return FatalDeliveryError(f"webhook {sink} answered 410 Gone", status=status)
    if status in SLOW_DOWN_STATUSES:
        return RetriableDeliveryError(
            f"webhook {sink} asked to slow down ({status})", status=status, retry_after=retry_after
        )
    return RetriableDeliveryError(f"webhook {sink} answered {status}", status=status)


class WebhookSink:
    """Delivers events to one webhook endpoint; see the module docstring for the contract.

    ``events`` holds filter patterns (see ``notifier.sinks.filters``; empty = every event);
    ``organizer`` restricts an endpoint declared under one organizer to that organizer's
    events. ``clock`` gives the signature timestamp (aware datetime); ``monotonic`` is the
    clock of ``not_before()`` (``time.monotonic``, the same as the asyncio loop's ``time()``).
    A ``session`` passed in is shared and left open by ``close``.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | tuple[str, ...],
        events: Sequence[str] = (),
        organizer: str | None = None,
        timeout: float = 15.0,
        concurrency: int = 8,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        throttle_policy: ThrottlePolicy | None = None,
    ) -> None:
        if concurrency < 1 or timeout <= 0:
            raise ConfigError(f"webhook {name}: concurrency must be >= 1 and timeout > 0")
        self._name = name
        self._url = url
        # A tuple while a secret is rotated: every delivery is signed with each of them.
        secrets = (secret,) if isinstance(secret, str) else secret
        if not secrets:
            raise ConfigError(f"webhook {name}: at least one secret is needed")
        self._signers = tuple(_make_signer(name, each) for each in secrets)
        self._patterns = tuple(events)
        self._organizer = organizer
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self._limit = asyncio.Semaphore(concurrency)
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._monotonic = monotonic
        self._policy = throttle_policy or ThrottlePolicy()
        self._throttle = Throttle()

    def __repr__(self) -> str:
        # the URL may carry credentials in its userinfo or query; the secret never appears
        return f"WebhookSink(name={self._name!r}, url={_redacted(self._url)!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def throttle(self) -> Throttle:
        """The endpoint's current pace (for metrics and the dispatcher)."""
        return self._throttle

    def not_before(self) -> float:
        """``monotonic()`` reading before which this endpoint should get no new request."""
        return self._throttle.not_before

    def batch_limit(self) -> int:
        """How many events the dispatcher should hand over at once: 1 while slowed down."""
        return 1 if self._throttle.throttled else self._concurrency

    def wants(self, event: OutboxEvent) -> bool:
        if self._organizer is not None and event.organizer != self._organizer:
            return False
        return matches(self._patterns, event.type)

    async def deliver(self, batch: Sequence[OutboxEvent]) -> list[DeliveryError | None]:
        """One attempt per event, up to ``concurrency`` in flight; outcomes in batch order."""
        session = self._ensure_session()
        return list(await asyncio.gather(*(self._attempt(session, event) for event in batch)))

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        # created lazily: a ClientSession belongs to the running loop, which __init__ may lack
        if self._session is None:
            # the semaphore is the real bound; the connector must never be a tighter one
            connector = aiohttp.TCPConnector(limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _attempt(
        self, session: aiohttp.ClientSession, event: OutboxEvent
    ) -> DeliveryError | None:
        async with self._limit:
            body = structured_body(event)
            headers = signed_headers(self._signers, event, body, at=self._clock())
            try:
                status, retry_after, excerpt = await self._post(session, body, headers)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return self._unreachable(event, exc)
            return self._answered(event, status, retry_after, excerpt)

    async def _post(
        self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]
    ) -> tuple[int, float | None, bytes]:
        # redirects are not followed: a signed event must not be forwarded to another host
        async with session.post(
            self._url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
        ) as response:
            # Read at most the cap, whatever the status: a short reply read to its end lets
            # the connection be reused, and a huge one cannot exhaust memory.
            excerpt = await response.content.read(RESPONSE_EXCERPT_BYTES)
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
            return response.status, retry_after, excerpt

    def _answered(
        self, event: OutboxEvent, status: int, retry_after: float | None, excerpt: bytes
    ) -> DeliveryError | None:
        self._update_throttle(status, retry_after)
        outcome = outcome_for(status, retry_after, sink=self._name)
        if outcome is None:
            log.debug("webhook_delivered", sink=self._name, event_id=event.id, status=status)
        else:
            # Per event, so debug: the dispatcher reports failures once per sink per interval.
            log.debug(
                "webhook_rejected",
                sink=self._name,
                event_id=event.id,
                status=status,
                retry_after=retry_after,
                fatal=isinstance(outcome, FatalDeliveryError),
                response_excerpt=excerpt.decode(errors="replace"),
            )
        return outcome

    def _unreachable(self, event: OutboxEvent, exc: BaseException) -> DeliveryError:
        self._update_throttle(None, None)
        kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
        log.debug(
            "webhook_unreachable",
            sink=self._name,
            event_id=event.id,
            reason=kind,
            error=type(exc).__name__,
        )
        error = RetriableDeliveryError(f"webhook {self._name} unreachable ({kind})")
        # the equivalent of `raise ... from exc` for an error that is returned, not raised
        error.__cause__ = exc
        return error

    def _update_throttle(self, status: int | None, retry_after: float | None) -> None:
        was_throttled = self._throttle.throttled
        self._throttle = throttle_after_response(
            self._throttle,
            self._policy,
            status=status,
            now=self._monotonic(),
            retry_after=retry_after,
        )
        if self._throttle.throttled != was_throttled:
            log.info(
                "webhook_pace_changed",
                sink=self._name,
                throttled=self._throttle.throttled,
                interval=self._throttle.interval,
            )


def _make_signer(name: str, secret: str) -> Webhook:
    # a malformed key raises binascii.Error (a ValueError); its message never echoes the key
    try:
        return Webhook(secret)
    except (ValueError, EmptyWebhookSecretError) as exc:
        raise ConfigError(f"webhook {name}: secret must be a whsec_ base64 key") from exc


def _redacted(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_user(None).with_password(None).with_query(None).with_fragment(None))
