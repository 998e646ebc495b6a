"""apply_pii: holder fields included, keyed-hashed or removed before the commit."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, strategies as st

from notifier.diff import diff_tickets
from notifier.envelope import to_outbox_event
from notifier.events import HolderPayload, TicketEvent
from notifier.model import Holder, TicketId
from notifier.pii import PiiPolicy, apply_pii, hash_value
from tests.strategies import ALICE, BOB, CONTEXT, record, state_of

KEY = b"k1-secret"
OTHER_KEY = b"k2-secret"
DIGEST = re.compile(r"hmac-sha256:[0-9a-f]{64}")
SCAN = datetime(2025, 6, 1, 21, 0, tzinfo=UTC)


def transfer(old: Holder = ALICE, new: Holder = BOB) -> TicketEvent:
    """A holder_changed event: holder, before and after all carry holder fields."""
    previous = {TicketId("T1"): state_of(record(holder=old))}
    (event,) = diff_tickets(previous, [record(holder=new)], context=CONTEXT).events
    return event


def holders_of(event: TicketEvent) -> list[HolderPayload | None]:
    assert event.before is not None
    return [event.holder, event.before.holder, event.after.holder]


def strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) in a decoded JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def test_include_passes_the_event_through() -> None:
    """``include`` returns the event unchanged."""
    event = transfer()
    assert apply_pii(event, "include", key=KEY) is event


def test_hash_replaces_every_holder_field() -> None:
    """``hash`` turns every holder field of holder, before and after into an HMAC digest."""
    for holder in holders_of(apply_pii(transfer(), "hash", key=KEY)):
        assert holder is not None
        for value in holder.model_dump().values():
            assert DIGEST.fullmatch(value)


def test_hash_keeps_absent_fields_absent() -> None:
    """A holder field that is null stays null under ``hash``."""
    event = apply_pii(transfer(new=Holder(email="bob@example.com")), "hash", key=KEY)
    assert event.after.holder.first_name is None
    assert event.after.holder.email == hash_value("bob@example.com", KEY)


def test_hash_is_the_same_for_the_same_key() -> None:
    """The same value under the same key hashes the same, so consumers can join on it."""
    assert apply_pii(transfer(), "hash", key=KEY) == apply_pii(transfer(), "hash", key=KEY)


def test_hash_differs_for_another_key() -> None:
    """Another key gives another digest."""
    assert hash_value("alice@example.com", KEY) != hash_value("alice@example.com", OTHER_KEY)


def test_hash_matches_hmac_sha256_of_the_normalized_value() -> None:
    """The digest is HMAC-SHA256 of the trimmed, lower-cased value, in hex."""
    expected = hmac.new(KEY, b"alice@example.com", hashlib.sha256).hexdigest()
    assert hash_value("alice@example.com", KEY) == f"hmac-sha256:{expected}"


def test_hash_normalizes_case_and_surrounding_whitespace() -> None:
    """`` Alice@Example.COM `` and ``alice@example.com`` hash the same."""
    assert hash_value("  Alice@Example.COM\t", KEY) == hash_value("alice@example.com", KEY)


def test_omit_removes_the_holder_and_empties_snapshot_holders() -> None:
    """``omit`` drops the top-level holder and leaves empty holders in before/after."""
    event = apply_pii(transfer(), "omit", key=KEY)
    assert event.holder is None
    assert event.before is not None
    assert event.before.holder == HolderPayload()
    assert event.after.holder == HolderPayload()


def test_policy_keeps_the_other_tracked_fields() -> None:
    """Only holder fields change: status, check-in and sequence survive any policy."""
    previous = {TicketId("T1"): state_of(record())}
    (event,) = diff_tickets(previous, [record(checked_in_at=SCAN)], context=CONTEXT).events
    for policy in ("hash", "omit"):
        masked = apply_pii(event, policy, key=KEY)
        assert masked.after.checked_in_at == SCAN
        assert masked.after.status == event.after.status
        assert masked.sequence == event.sequence


def test_policy_keeps_the_event_id() -> None:
    """The outbox id does not depend on the PII policy."""
    event = transfer()
    ids = {to_outbox_event(apply_pii(event, p, key=KEY)).id for p in ("include", "hash", "omit")}
    assert len(ids) == 1


_phones = st.from_regex(r"\+[0-9]{7,12}", fullmatch=True)


@given(st.emails(), _phones, st.emails(), st.sampled_from(["hash", "omit"]))
def test_no_raw_email_or_phone_reaches_the_payload(
    email: str, phone: str, new_email: str, policy: PiiPolicy
) -> None:
    """Under hash and omit, no serialized string contains a holder's email or phone."""
    old = Holder(first_name="A", email=email, phone=phone)
    event = apply_pii(transfer(old, Holder(email=new_email, phone=phone)), policy, key=KEY)
    texts = list(strings(json.loads(to_outbox_event(event).data)))
    for secret in (email, phone, new_email):
        assert not any(secret in text for text in texts)


@given(st.emails())
def test_include_keeps_the_raw_email(email: str) -> None:
    """Under include the email is in the payload (the leak check above can see it)."""
    event = transfer(new=Holder(email=email))
    assert email in strings(json.loads(to_outbox_event(event).data))
