"""The holder-data policy applied to every payload before commit (docs/design.md §7 ``pii``).

``hash`` is a keyed HMAC-SHA256 rather than a bare hash: emails and phone numbers are
guessable, so an unkeyed digest would be reversible by anyone with a list of addresses,
while a keyed one still lets consumers that share the key join on it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal, TypeVar

from notifier import events as ev

PiiPolicy = Literal["include", "hash", "omit"]
_Event = TypeVar("_Event", bound=ev._TicketEvent)


def apply_pii(event: _Event, policy: PiiPolicy, *, key: bytes = b"") -> _Event:
    """Return the event with every holder field included, keyed-hashed or removed."""
    if policy == "include":
        return event
    return event.model_copy(
        update={
            "holder": _holder(event.holder, policy, key),
            "before": _snapshot(event.before, policy, key),
            "after": _snapshot(event.after, policy, key),
        }
    )


def hash_value(value: str, key: bytes) -> str:
    """Keyed digest of one PII value, normalized so the same address always joins."""
    digest = hmac.new(key, value.strip().lower().encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


def _holder(
    holder: ev.HolderPayload | None, policy: PiiPolicy, key: bytes
) -> ev.HolderPayload | None:
    if holder is None or policy == "omit":
        return None
    return ev.HolderPayload(
        **{
            name: None if value is None else hash_value(value, key)
            for name, value in holder.model_dump().items()
        }
    )


def _snapshot(
    snapshot: ev.TicketSnapshot | None, policy: PiiPolicy, key: bytes
) -> ev.TicketSnapshot | None:
    if snapshot is None:
        return None
    holder = _holder(snapshot.holder, policy, key) or ev.HolderPayload()
    return snapshot.model_copy(update={"holder": holder})
