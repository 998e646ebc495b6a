"""Provider timestamps in, aware UTC datetimes out (docs/design.md §3).

Providers send ISO 8601 with or without a zone, Shotgun's ``YYYY-MM-DD HH:MM:SS.ffffff``
(no zone, UTC) and unix seconds as numbers or numeric strings. Naive values are UTC:
no provider we poll documents another zone. This module is on the hot path of every
parser (a sweep reads ~1M tickets), so the common case is one C call.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["format_nuweb_time", "format_shotgun_time", "parse_timestamp"]

# A numeric string is unix seconds. Checked before ISO parsing because
# ``fromisoformat`` would read an eight-digit number as a basic-format date.
_NUMERIC = re.compile(r"[+-]?\d+(?:\.\d*)?")


def parse_timestamp(value: object) -> datetime | None:
    """Parse a provider timestamp into an aware UTC datetime; ``None``/``""`` mean no time.

    Raises ``ValueError`` for anything else that is not a timestamp (including booleans,
    which are ints to Python but never times on the wire).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_unix(value)
    raise ValueError("not a timestamp: " + type(value).__name__)


def format_shotgun_time(dt: datetime) -> str:
    """Format as Shotgun does (``2025-05-20 12:47:26.622033``, UTC, no zone); naive is UTC."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.isoformat(sep=" ", timespec="microseconds")


def format_nuweb_time(dt: datetime) -> str:
    """Nuweb's documented filter format, ``2021-01-01T00:00:00.000000Z``; naive is UTC.

    Here rather than in the adapter: the Nuweb simulator writes the same format and must
    not depend on the adapter it checks.
    """
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_text(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        # Some providers send "" where they mean null; treating it as "no time" keeps a
        # whole page from failing over one blank field.
        return None
    # An extended ISO date has "-" at index 4; a number never does, so most values skip
    # the regex.
    if text[4:5] != "-" and _NUMERIC.fullmatch(text):
        return _from_unix(float(text))
    try:
        # Appending the zone and parsing once is ~10x faster than ``.replace(tzinfo=UTC)``
        # on CPython 3.11, and zone-less times are by far the common case.
        parsed = datetime.fromisoformat(text + "+00:00")
    except ValueError:
        parsed = datetime.fromisoformat(text)  # it had a zone of its own
    if parsed.tzinfo is None:  # a bare date drops the appended zone
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. year 1 with a positive offset
        raise ValueError("timestamp out of range") from exc


def _from_unix(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError("not a finite unix time")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError("unix time out of range") from exc
