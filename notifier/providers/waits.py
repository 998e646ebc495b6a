"""How long a provider may make us wait, and how hard one request tries (pure).

Every wait a provider states (``Retry-After``, ``X-Available-In-Seconds``,
``X-Rate-Limit-Reset``) goes through ``header_wait``: non-finite or negative values are
ignored and the rest capped, so no header can park a source for years. The caps are
process-wide, set once from the config's ``limits:`` before any poll starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# docs/reliability.md "Bounded resources": no provider header may make a source wait longer
# than this, and no answer may hold more than this many (decompressed) body bytes.
DEFAULT_MAX_HEADER_WAIT = 900.0
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class _Limits:
    max_header_wait: float = DEFAULT_MAX_HEADER_WAIT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


# One process serves one config: the service sets these from it before any poll starts
# (``configure_limits``), so the adapters' own pacers read the same cap as the client.
_LIMITS = _Limits()


def configure_limits(
    *, max_header_wait: float | None = None, max_body_bytes: int | None = None
) -> None:
    """Set the process-wide caps (``limits:`` in the config); None keeps the current one."""
    if max_header_wait is not None:
        if not (math.isfinite(max_header_wait) and max_header_wait >= 0):
            raise ValueError("max_header_wait must be a finite number of seconds >= 0")
        _LIMITS.max_header_wait = max_header_wait
    if max_body_bytes is not None:
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        _LIMITS.max_body_bytes = max_body_bytes


def max_body_bytes() -> int:
    return _LIMITS.max_body_bytes


def header_wait(seconds: float | None) -> float | None:
    """A wait a provider header states, made safe: None when non-finite or negative (no
    answer: ``1e400``, ``-5``, ``nan``), else capped at the configured maximum (a header
    saying ``1e9`` must not park a source for 31 years)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, _LIMITS.max_header_wait)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now=now)
    return header_wait(seconds)


def _seconds_until_http_date(text: str, *, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # A date already past means "now"; one far ahead is capped like a number.
        return header_wait(max((when - now).total_seconds(), 0.0))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Delay before retry number ``attempt`` (1-based): capped exponential, "equal jitter".

    ``jitter`` is a draw from [0, 1): half the delay is fixed so retries never bunch at
    zero, the other half spreads clients that failed together.
    """
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + ceiling / 2 * jitter


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries; ``max_attempts`` counts the first try."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    timeout: float = 30.0
    # Where a provider says how long to wait: Nuweb answers 429 without Retry-After but
    # with X-Available-In-Seconds.
    retry_after_headers: tuple[str, ...] = ("Retry-After",)
