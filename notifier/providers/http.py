"""The HTTP client every provider adapter reads through (docs/design.md §6).

It owns what all providers share: a per-request timeout, bounded retries with
exponential backoff and jitter on 5xx and network trouble, ``Retry-After`` on 429,
a shared request budget, and the rule that a credential never leaves the configured
origin. Every aiohttp/orjson failure is translated here into the ``ProviderError`` tree;
messages carry only redacted URLs and never a header value.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson
import structlog
from multidict import CIMultiDict
from yarl import URL

from notifier.errors import FatalProviderError, RetriableProviderError
from notifier.providers.budget import BACKGROUND as BACKGROUND, RequestBudget as RequestBudget
from notifier.providers.waits import (
    RetryPolicy as RetryPolicy,
    backoff_delay as backoff_delay,
    configure_limits as configure_limits,
    header_wait as header_wait,
    max_body_bytes as max_body_bytes,
    parse_retry_after as parse_retry_after,
)

__all__ = [
    "PAGE_FETCHED",
    "FetchResult",
    "ProviderHttpClient",
    "RequestBudget",
    "RetryPolicy",
    "backoff_delay",
    "configure_limits",
    "header_wait",
    "parse_retry_after",
    "redact_url",
]

log = structlog.get_logger(__name__)

SleepFn = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
WallClock = Callable[[], datetime]

# Called once per page fetched, in the current task only: whoever watches a long read (the
# progress display, notifier/progress.py) sets it; the client knows nothing of the display.
PAGE_FETCHED: ContextVar[Callable[[], None] | None] = ContextVar("page_fetched", default=None)

# Query parameters whose values are credentials somewhere among our providers.
SECRET_PARAMS = frozenset(
    {
        "token",
        "key",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "secret",
        "client_secret",
        "password",
    }
)
REDACTED = "***"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def redact_url(url: str | URL) -> str:
    """The URL with credential query values and any userinfo replaced by ``***``."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        if parsed.user is not None or parsed.password is not None:
            parsed = parsed.with_password(None).with_user(REDACTED)
        if not parsed.query:
            return str(parsed)
        pairs = [
            (name, REDACTED if name.lower() in SECRET_PARAMS else value)
            for name, value in parsed.query.items()
        ]
        return str(parsed.with_query(pairs))
    except (ValueError, TypeError):
        # Never echo something we could not parse: it may hold a credential.
        return "<unparseable url>"


# Body bytes -> payload; ValueError when the bytes are not JSON (orjson.loads is one).
Decoder = Callable[[bytes], object]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A decoded JSON body and how many HTTP requests it took (retries included)."""

    payload: object
    attempts: int
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


def _origin(url: URL) -> tuple[str, str, int | None]:
    scheme = (url.scheme or "").lower()
    return scheme, (url.host or "").lower(), url.explicit_port or _DEFAULT_PORTS.get(scheme)


class ProviderHttpClient:
    """GETs JSON from one provider origin with retries, budget and origin pinning.

    ``session`` may be shared; when omitted the client opens its own (lazily, inside the
    running loop) and closes it in ``close``. ``sleep``, ``now`` and ``rng`` are
    injectable so tests run without real waits.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        policy: RetryPolicy | None = None,
        budget: RequestBudget | None = None,
        sleep: SleepFn = asyncio.sleep,
        now: WallClock | None = None,
        rng: random.Random | None = None,
        on_budget_wait: Callable[[float], None] | None = None,
        on_response: Callable[[str], None] | None = None,
    ) -> None:
        self._base = URL(base_url)
        self._on_budget_wait = on_budget_wait
        # Told every answer's status ("200", "429", ...) or "error" when none came: metrics.
        self._on_response = on_response or (lambda _status: None)
        if not self._base.absolute or self._base.scheme not in _DEFAULT_PORTS:
            raise ValueError("base_url must be an absolute http(s) URL")
        self._origin = _origin(self._base)
        self._session = session
        self._owns_session = session is None
        self.policy = policy or RetryPolicy()
        self._budget = budget
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self.requests = 0

    @property
    def base_url(self) -> str:
        return str(self._base)

    def resolve(self, url: str) -> URL:
        """An absolute URL on the configured origin: paths join the base, others are checked.

        A link that does not parse (``https://host\\@evil.com/``, a bad port) is the page's
        fault: a ``FatalProviderError``, never the ``ValueError`` yarl raises.
        """
        try:
            target = URL(url)
            if not target.absolute:
                base = str(self._base.with_query(None).with_fragment(None)).rstrip("/")
                target = URL(base + "/" + url.lstrip("/"))
            origin = _origin(target)
        except (ValueError, TypeError, UnicodeError) as exc:
            raise FatalProviderError(
                "refusing a link that is not a valid URL (" + type(exc).__name__ + ")"
            ) from exc
        if origin != self._origin:
            raise FatalProviderError(
                "refusing to follow a link to another origin: " + redact_url(target)
            )
        return target

    async def fetch_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        decode: Decoder = orjson.loads,
    ) -> FetchResult:
        """GET ``url`` (a path or a same-origin absolute URL) and decode its JSON body.

        ``decode`` turns the body into the payload; it raises ``ValueError`` for JSON that
        does not parse (retried, as a truncated body) and may raise ``FatalProviderError``
        for JSON of the wrong shape. Raises ``RetriableProviderError`` once the policy's
        attempts are spent on 429 / 5xx / network errors / malformed JSON,
        ``FatalProviderError`` on 401 / 403, other 4xx, redirects and foreign origins.
        """
        target = self.resolve(url)
        if params:
            try:
                target = target.update_query(dict(params))
            except (ValueError, TypeError) as exc:
                raise FatalProviderError("query parameters do not form a valid URL") from exc
        return await self._with_retries(_Request("GET", target, headers, None, decode))

    async def post_form(
        self,
        url: str,
        data: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """POST a form (an OAuth token grant) with the same origin and retry rules as GETs."""
        return await self._with_retries(_Request("POST", self.resolve(url), headers, dict(data)))

    async def _with_retries(self, request: _Request) -> FetchResult:
        attempt = 1
        while True:
            try:
                payload, response_headers = await self._attempt(request)
            except RetriableProviderError as exc:
                if attempt >= self.policy.max_attempts:
                    raise
                await self._pause(attempt, exc, request.url)
                attempt += 1
            else:
                on_page = PAGE_FETCHED.get()
                if on_page is not None:
                    on_page()
                return FetchResult(
                    payload=payload,
                    attempts=attempt,
                    url=redact_url(request.url),
                    headers=response_headers,
                )

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _pause(self, attempt: int, exc: RetriableProviderError, target: URL) -> None:
        delay = self._delay(attempt, exc)
        log.warning(
            "provider_http_retry",
            url=redact_url(target),
            status=exc.status,
            attempt=attempt,
            delay=round(delay, 3),
        )
        await self._sleep(delay)

    def _delay(self, attempt: int, exc: RetriableProviderError) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_retry_after)
        return backoff_delay(
            attempt,
            base=self.policy.base_delay,
            cap=self.policy.max_delay,
            jitter=self._rng.random(),
        )

    async def _attempt(self, request: _Request) -> tuple[object, CIMultiDict[str]]:
        if self._budget is not None:
            waited = await self._budget.acquire(background=BACKGROUND.get())
            if waited and self._on_budget_wait is not None:
                self._on_budget_wait(waited)
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        self.requests += 1
        target = request.url
        try:
            # Redirects are not followed: a Location elsewhere would carry the credential.
            async with session.request(
                request.method,
                target,
                headers=request.headers,
                data=request.form,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                self._on_response(str(response.status))
                body = await _read_capped(response, target)
                received = CIMultiDict(response.headers)
                return self._interpret(request, response.status, received, body), received
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError: aiohttp refusing a header or a URL of the answer it cannot read.
            self._on_response("error")
            raise RetriableProviderError(
                "network error (" + type(exc).__name__ + ") on " + redact_url(target)
            ) from exc

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        """The first wait a provider states, in the headers the policy names, in order."""
        for name in self.policy.retry_after_headers:
            wait = parse_retry_after(headers.get(name), now=self._now())
            if wait is not None:
                return wait
        return None

    def _interpret(
        self, request: _Request, status: int, headers: Mapping[str, str], body: bytes
    ) -> object:
        target = request.url
        if 200 <= status < 300:
            return _decode(body, request)
        where = " from " + redact_url(target)
        if status == 429 or status == 408 or status >= 500:
            retry_after = self._retry_after(headers)
            if retry_after is not None:
                retry_after = min(retry_after, self.policy.max_retry_after)
            raise RetriableProviderError(
                "HTTP " + str(status) + where, status=status, retry_after=retry_after
            )
        if status in (401, 403):
            raise FatalProviderError(
                "credentials refused: HTTP " + str(status) + where, status=status
            )
        raise FatalProviderError("unexpected HTTP " + str(status) + where, status=status)


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: URL
    headers: Mapping[str, str] | None
    form: dict[str, str] | None
    decode: Decoder = orjson.loads


async def _read_capped(response: aiohttp.ClientResponse, target: URL) -> bytes:
    """The body, refused once it exceeds the cap. aiohttp decompresses transparently, so
    bytes are counted as they come out of the decoder: a gzip bomb is stopped at the cap,
    not after inflating it into memory."""
    cap = max_body_bytes()
    declared = response.content_length
    if declared is not None and declared > cap and not response.headers.get("Content-Encoding"):
        raise FatalProviderError(_too_large(cap, target))
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise FatalProviderError(_too_large(cap, target))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(cap: int, target: URL) -> str:
    return f"response body over the {cap}-byte limit from " + redact_url(target)


def _decode(body: bytes, request: _Request) -> object:
    try:
        return request.decode(body)
    except RecursionError as exc:
        # A decoder walking a deeply nested page: the page's fault, and retrying repeats it.
        raise FatalProviderError("page nested too deeply from " + redact_url(request.url)) from exc
    except ValueError as exc:
        # A truncated body is usually a dropped connection: worth another try.
        raise RetriableProviderError("malformed JSON from " + redact_url(request.url)) from exc
