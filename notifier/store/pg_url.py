"""PostgreSQL connection URIs: which ones select the PostgreSQL store, and how to name one
in a log line or an error without its password."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES: Final = ("postgresql", "postgres")
_SECRET_PARAMS: Final = frozenset({"password", "sslpassword"})


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def redact(url: str) -> str:
    """The URI with any password (in the authority or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable PostgreSQL URI>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    query = urlencode(
        [
            (key, "***" if key in _SECRET_PARAMS else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
