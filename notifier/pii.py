"""The holder-data policy, applied to every payload and to the state at rest (docs/design.md §7
``pii``).

One place decides what is personal, so an adapter cannot leak by forgetting it:

- **Holder fields** (``holder``, ``before.holder``, ``after.holder``): under ``hash`` each
  becomes a keyed digest, under ``omit`` they are removed.
- **Details**: any key of ``PERSONAL_KEYS`` (or starting with ``PERSONAL_PREFIXES``), at
  any depth of ``details``, is digested under ``hash`` and removed under ``omit``.
- **State at rest** (``state_holder``): under ``hash`` and ``omit`` alike the store keeps
  the keyed digests of the holder fields, never the fields, so a copy of the database
  reveals no more than the events: transfers are still detected (a new holder has new
  digests) without anything guessable being stored.

``hash`` is a keyed HMAC-SHA256 rather than a bare hash: emails and phone numbers are
guessable, so an unkeyed digest would be reversible by anyone with a list of addresses,
while a keyed one still lets consumers that share the key join on it. Both ``hash`` and
``omit`` therefore need ``defaults.pii_hash_key`` (the configuration refuses either
without it).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any, Literal, TypeVar

from notifier import events as ev
from notifier.model import Holder, TicketRecord

PiiPolicy = Literal["include", "hash", "omit"]
_Event = TypeVar("_Event", bound=ev._TicketEvent)

DIGEST_PREFIX = "hmac-sha256:"

# Detail keys that name, reach or identify a person, or open the door. Keys are compared
# normalized (lower case, letters and digits only), so ``customerId``, ``customer_id`` and
# ``Customer-ID`` are one key. Each says why it is here (docs/operations.md, "Privacy").
PERSONAL_KEYS: Mapping[str, str] = {
    # A person's name. (A bare ``name`` is not here: in details it names a zone, a ticket
    # type or an event far more often than a person; each provider's holder name has its
    # own key below.)
    "firstname": "the holder's given name",
    "lastname": "the holder's family name",
    "fullname": "the holder's whole name",
    "namedholder": "Nuweb: the name the ticket is issued to",
    # How to reach a person.
    "email": "the holder's email address",
    "phone": "the holder's phone number",
    "mobile": "the holder's phone number",
    # Bearer codes: whoever holds one walks in with the ticket.
    "barcode": "the code the door scans (Ticket Tailor, Nuweb)",
    "barcodeurl": "a link to the scannable code (Ticket Tailor)",
    "qrcodeurl": "a link to the scannable code (Ticket Tailor)",
    "historicbarcodes": "Nuweb: earlier codes of a transferred ticket",
    "ticketscancode": "Shotgun: the code the door scans",
    "scancode": "a code the door scans",
    "nfcid": "Nuweb: the wristband that opens the door",
    # Assumption: Eventpop's reference code is printed on the ticket and finds it at the
    # door (``/tickets/search?reference_code=``), so it is treated as a bearer code.
    "referencecode": "Eventpop: the ticket's printed code, accepted to find it at the door",
    # Identifiers of a person, the same on every ticket they ever hold.
    "userid": "Shotgun: the buyer's account",
    "contactid": "Shotgun: the holder's contact record",
    "customerid": "Nuweb: the buyer's customer record",
    # Assumption: Nuweb documents ``scannedBy`` without its form; it may name the member
    # of staff who scanned, so it is treated as personal.
    "scannedby": "Nuweb: who scanned the ticket, possibly a member of staff by name",
}
# Whole families of provider fields about a person (Shotgun's contact_birthday,
# contact_postal_code, ...; Nuweb's customerName, customerEmail; buyer and attendee details).
PERSONAL_PREFIXES = ("contact", "customer", "buyer", "attendee", "holder")

_NORMALIZE = re.compile(r"[^a-z0-9]")
# The holder of a state whose digests were made under another key or policy: unknown, so
# the next read adopts the provider's holder silently (docs/operations.md, "Privacy").
UNKNOWN_HOLDER = Holder(first_name="pii:unknown")


def is_personal_key(key: str) -> bool:
    """Whether a details key is personal or a bearer code (see ``PERSONAL_KEYS``)."""
    normal = _NORMALIZE.sub("", key.lower())
    return normal in PERSONAL_KEYS or normal.startswith(PERSONAL_PREFIXES)


def apply_pii(event: _Event, policy: PiiPolicy, *, key: bytes = b"") -> _Event:
    """Return the event with holder fields and personal details included, keyed-hashed or
    removed. Values already digested (a state kept at rest) are left as they are."""
    if policy == "include":
        return event
    return event.model_copy(
        update={
            "holder": _holder(event.holder, policy, key),
            "before": _snapshot(event.before, policy, key),
            "after": _snapshot(event.after, policy, key),
            "details": protect_details(event.details, policy, key),
        }
    )


def hash_value(value: str, key: bytes) -> str:
    """Keyed digest of one PII value, normalized so the same address always joins."""
    mac = _keyed(key).copy()
    mac.update(value.strip().lower().encode())
    return DIGEST_PREFIX + mac.hexdigest()


@lru_cache(maxsize=16)
def _keyed(key: bytes) -> hmac.HMAC:
    # Copying a keyed HMAC is about half the cost of keying one per value, which counts
    # when a restart digests every holder of a million tickets once.
    return hmac.new(key, digestmod="sha256")


def protect_details(details: Mapping[str, Any], policy: PiiPolicy, key: bytes) -> dict[str, Any]:
    """``details`` with every personal key (at any depth) digested or removed."""
    if policy == "include":
        return dict(details)
    protected = _walk(details, policy, key)
    assert isinstance(protected, dict)
    return protected


def state_form(policy: PiiPolicy, key: bytes) -> str:
    """What the stored holders are under this policy and key: ``include`` (as read) or the
    keyed digests of one key. The key shows only as a digest of a constant: it cannot be
    recovered from it, but a changed key is recognized."""
    if policy == "include":
        return "include"
    return DIGEST_PREFIX + hmac.digest(key, b"checkin-notifier pii state", "sha256").hex()[:16]


def state_holder(holder: Holder, policy: PiiPolicy, key: bytes) -> Holder:
    """The holder as the state keeps it: as read under ``include``, else field digests."""
    if policy == "include":
        return holder
    return Holder(
        first_name=_digest(holder.first_name, key),
        last_name=_digest(holder.last_name, key),
        email=_digest(holder.email, key),
        phone=_digest(holder.phone, key),
    )


def state_record(record: TicketRecord, policy: PiiPolicy, key: bytes) -> TicketRecord:
    """The record with its holder in state form, for the diff against stored states."""
    if policy == "include":
        return record
    return replace(record, holder=state_holder(record.holder, policy, key))


def rebase_holder(stored: Holder, read: Holder, policy: PiiPolicy, key: bytes) -> Holder:
    """A stored holder in the form ``read`` (already in state form) can be compared with.

    A holder stored as read (before the policy was ``hash`` or ``omit``) is digested now:
    the comparison stays exact. A holder whose digests cannot be compared (made under
    another key, or digests while the policy is now ``include``) is taken to be ``read``:
    the switch itself is not a transfer.
    """
    if stored == UNKNOWN_HOLDER:
        return read
    digested = [v.startswith(DIGEST_PREFIX) for v in _values(stored)]
    if policy == "include":
        return read if any(digested) else stored
    if all(digested):
        return stored
    return state_holder(stored, policy, key)


def migrated_holder(stored: Holder, from_form: str, policy: PiiPolicy, key: bytes) -> Holder:
    """A stored holder rewritten from state form ``from_form`` to this policy's and key's.

    A holder kept as read is digested (exact: its transfers are still seen). Digests made
    under another key, or while the policy is now ``include``, cannot be carried over: the
    holder becomes ``UNKNOWN_HOLDER`` and the ticket's next read adopts the holder it shows.
    """
    if from_form == state_form(policy, key) or stored == UNKNOWN_HOLDER:
        return stored
    digested = any(value.startswith(DIGEST_PREFIX) for value in _values(stored))
    # From 'include', digests can only come from an interrupted move to this same form.
    if not digested or (from_form == "include" and policy != "include"):
        return state_holder(stored, policy, key)
    return UNKNOWN_HOLDER


def _values(holder: Holder) -> list[str]:
    fields = (holder.first_name, holder.last_name, holder.email, holder.phone)
    return [value for value in fields if value is not None]


def _digest(value: str | None, key: bytes) -> str | None:
    if value is None or value.startswith(DIGEST_PREFIX):
        return value
    return hash_value(value, key)


def _walk(node: object, policy: PiiPolicy, key: bytes) -> object:
    if isinstance(node, Mapping):
        walked: dict[str, Any] = {}
        for name, value in node.items():
            if not is_personal_key(str(name)):
                walked[name] = _walk(value, policy, key)
            elif policy == "hash":
                walked[name] = _digest_all(value, key)
        return walked
    if isinstance(node, list | tuple):
        return [_walk(item, policy, key) for item in node]
    return node


def _digest_all(node: object, key: bytes) -> object:
    """Every scalar of a personal value digested: a number (an id) as its decimal text."""
    if node is None:
        return None
    if isinstance(node, Mapping):
        return {name: _digest_all(value, key) for name, value in node.items()}
    if isinstance(node, list | tuple):
        return [_digest_all(item, key) for item in node]
    return _digest(node if isinstance(node, str) else str(node), key)


def _holder(
    holder: ev.HolderPayload | None, policy: PiiPolicy, key: bytes
) -> ev.HolderPayload | None:
    if holder is None or policy == "omit":
        return None
    return ev.HolderPayload(
        **{name: _digest(value, key) for name, value in holder.model_dump().items()}
    )


def _snapshot(
    snapshot: ev.TicketSnapshot | None, policy: PiiPolicy, key: bytes
) -> ev.TicketSnapshot | None:
    if snapshot is None:
        return None
    holder = _holder(snapshot.holder, policy, key) or ev.HolderPayload()
    return snapshot.model_copy(update={"holder": holder})
