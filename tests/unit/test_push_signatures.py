"""Provider webhook signatures: what each scheme accepts and refuses (pure)."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, strategies as st

from notifier.push.signatures import (
    NUWEB_HEADER,
    TICKETTAILOR_HEADER,
    nuweb_check,
    nuweb_header,
    signature_check,
    tickettailor_check,
    tickettailor_header,
)

NOW = 1_780_000_000
secrets_ = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)


def test_nuweb_signature_is_hex_hmac_of_the_raw_body() -> None:
    """Computed independently of the module: hex HMAC-SHA256(secret, body)."""
    body = b'{"attendee_check_in": {"scans": []}}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert nuweb_check(b"s3cret")({NUWEB_HEADER: expected}, body, now=NOW)
    assert nuweb_check(b"s3cret")({NUWEB_HEADER: expected.upper()}, body, now=NOW)


def test_tickettailor_signature_is_hex_hmac_of_timestamp_then_body() -> None:
    """HMAC-SHA256(secret, "<t>" + body) with no separator, as Ticket Tailor documents."""
    body = b'{"event": "ORDER.UPDATED"}'
    digest = hmac.new(b"k", f"{NOW}".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={NOW},v1={digest}"
    assert tickettailor_check(b"k")({TICKETTAILOR_HEADER: header}, body, now=NOW + 10)
    with_separator = hmac.new(b"k", f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    bad = f"t={NOW},v1={with_separator}"
    assert not tickettailor_check(b"k")({TICKETTAILOR_HEADER: bad}, body, now=NOW)


@given(secret=secrets_, body=bodies)
def test_a_signed_nuweb_body_verifies(secret: bytes, body: bytes) -> None:
    assert nuweb_check(secret)({NUWEB_HEADER: nuweb_header(secret, body)}, body, now=NOW)


@given(secret=secrets_, body=bodies, flip=st.integers(min_value=0))
def test_one_changed_byte_of_a_nuweb_body_fails(secret: bytes, body: bytes, flip: int) -> None:
    header = nuweb_header(secret, body)
    tampered = bytearray(body or b"\0")
    tampered[flip % len(tampered)] ^= 0x01
    assert not nuweb_check(secret)({NUWEB_HEADER: header}, bytes(tampered), now=NOW)


@given(secret=secrets_, other=secrets_, body=bodies)
def test_another_secret_fails(secret: bytes, other: bytes, body: bytes) -> None:
    if secret == other:
        other = other + b"x"
    nuweb = {NUWEB_HEADER: nuweb_header(other, body)}
    tailor = {TICKETTAILOR_HEADER: tickettailor_header(other, body, at=NOW)}
    assert not nuweb_check(secret)(nuweb, body, now=NOW)
    assert not tickettailor_check(secret)(tailor, body, now=NOW)


@given(secret=secrets_, body=bodies, age=st.integers(min_value=-300, max_value=300))
def test_tickettailor_accepts_five_minutes_either_way(secret: bytes, body: bytes, age: int) -> None:
    header = {TICKETTAILOR_HEADER: tickettailor_header(secret, body, at=NOW)}
    assert tickettailor_check(secret)(header, body, now=NOW + age)


@given(secret=secrets_, body=bodies, age=st.integers(min_value=301, max_value=10**9))
def test_tickettailor_refuses_older_or_further_ahead(secret: bytes, body: bytes, age: int) -> None:
    header = {TICKETTAILOR_HEADER: tickettailor_header(secret, body, at=NOW)}
    assert not tickettailor_check(secret)(header, body, now=NOW + age)
    assert not tickettailor_check(secret)(header, body, now=NOW - age)


def test_a_rotated_tickettailor_header_with_several_v1_verifies_if_one_matches() -> None:
    body = b"{}"
    good = tickettailor_header(b"k", body, at=NOW).split(",v1=")[1]
    header = {TICKETTAILOR_HEADER: f"t={NOW},v1={'0' * 64},v1={good}"}
    assert tickettailor_check(b"k")(header, body, now=NOW)


@given(header=st.text(max_size=200))
def test_any_malformed_header_is_refused_never_raises(header: str) -> None:
    """Whatever arrives in the header, the answer is False (or a genuine match)."""
    body = b"{}"
    assert not signature_check("nuweb", b"k")({NUWEB_HEADER: header}, body, now=NOW)
    assert not signature_check("tickettailor", b"k")({TICKETTAILOR_HEADER: header}, body, now=NOW)


def test_a_missing_header_is_refused() -> None:
    assert not nuweb_check(b"k")({}, b"{}", now=NOW)
    assert not tickettailor_check(b"k")({}, b"{}", now=NOW)
