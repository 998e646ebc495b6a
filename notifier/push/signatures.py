"""Each provider's webhook signature scheme, checked in constant time (pure).

Nuweb: header ``Signature``, lower-case hex HMAC-SHA256 of the raw body with the webhook's
secret; no timestamp, so a replay cannot be told from the signature
(https://docs.nuwebgroup.com/core-platform/technical/webhooks). Ticket Tailor: header
``Tickettailor-Webhook-Signature: t=<unix>,v1=<hex>``, hex HMAC-SHA256 of the timestamp
followed by the raw body with no separator; its documentation advises refusing signatures
older than five minutes (https://developers.tickettailor.com/docs/webhook/security).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final, Protocol

TICKETTAILOR_TOLERANCE_S: Final = 300.0
NUWEB_HEADER: Final = "Signature"
TICKETTAILOR_HEADER: Final = "Tickettailor-Webhook-Signature"


class SignatureCheck(Protocol):
    """Whether a delivery's headers carry a valid signature of ``body``."""

    def __call__(self, headers: Mapping[str, str], body: bytes, *, now: float) -> bool: ...


def _same(given: str, expected: str) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a header may hold anything.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _hex_hmac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def nuweb_check(secret: bytes) -> SignatureCheck:
    """Nuweb: ``Signature: hex(HMAC-SHA256(secret, body))``."""

    def check(headers: Mapping[str, str], body: bytes, *, now: float) -> bool:
        given = headers.get(NUWEB_HEADER)
        if not given:
            return False
        return _same(given.strip().lower(), _hex_hmac(secret, body))

    return check


def tickettailor_check(
    secret: bytes, *, tolerance: float = TICKETTAILOR_TOLERANCE_S
) -> SignatureCheck:
    """Ticket Tailor: ``t=<unix>,v1=<hex(HMAC-SHA256(secret, t + body))>``, at most
    ``tolerance`` seconds old (or early: a clock ahead by as much is refused too)."""

    def check(headers: Mapping[str, str], body: bytes, *, now: float) -> bool:
        parts = _tickettailor_parts(headers.get(TICKETTAILOR_HEADER, ""))
        if parts is None:
            return False
        timestamp, signatures = parts
        if abs(now - int(timestamp)) > tolerance:
            return False
        expected = _hex_hmac(secret, timestamp.encode() + body)
        # Every v1 is compared (no early exit), so timing says nothing of which one matched.
        matches = [_same(given.lower(), expected) for given in signatures]
        return any(matches)

    return check


def tickettailor_header(secret: bytes, body: bytes, *, at: int) -> str:
    """The header Ticket Tailor would send for ``body`` at unix time ``at`` (simulators)."""
    return f"t={at},v1={_hex_hmac(secret, str(at).encode() + body)}"


def nuweb_header(secret: bytes, body: bytes) -> str:
    """The ``Signature`` value Nuweb would send for ``body`` (simulators)."""
    return _hex_hmac(secret, body)


def _tickettailor_parts(header: str) -> tuple[str, list[str]] | None:
    timestamp: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not timestamp.isascii() or not timestamp.isdigit() or not signatures:
        return None
    if len(timestamp) > 12:  # beyond year 33,000: not a timestamp
        return None
    return timestamp, signatures


def signature_check(provider: str, secret: bytes) -> SignatureCheck:
    """The scheme of ``provider`` (one of the providers that push) with ``secret``."""
    checks = {"nuweb": nuweb_check, "tickettailor": tickettailor_check}
    return checks[provider](secret)
