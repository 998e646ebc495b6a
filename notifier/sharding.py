"""Which replica polls which organizer: rendezvous (highest-random-weight) hashing (docs/deploy.md).

Every (organizer, shard) pair gets a weight from a stable hash, and the organizer belongs to
the shard with the highest weight. A shard's weight never depends on how many shards there
are, so going from n to n+1 shards moves only the organizers whose new top weight is the new
shard's (about 1/(n+1) of them), and removing a shard moves only that shard's organizers.

Pure: no I/O, no clock, no ``hash()`` (salted per process); the environment arrives as a
mapping from the caller.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Final

COUNT_VAR: Final = "NOTIFIER_SHARD_COUNT"
ORDINAL_VAR: Final = "NOTIFIER_SHARD_ORDINAL"
POD_NAME_VAR: Final = "POD_NAME"

# A StatefulSet pod is `<statefulset name>-<ordinal>`; the name is a DNS label.
_POD_NAME: Final = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-(?P<ordinal>0|[1-9][0-9]*)")
_DIGITS: Final = re.compile(r"[0-9]+")
_PERSON: Final = b"notifier-shard"  # blake2b personalisation: these weights are ours alone


def _weight(organizer_id: str, shard: int) -> int:
    key = f"{organizer_id}\x00{shard}".encode()
    digest = hashlib.blake2b(key, digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big")


def _check_count(shard_count: int) -> None:
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")


def shard_of(organizer_id: str, shard_count: int) -> int:
    """The shard (0 .. shard_count-1) that owns this organizer."""
    _check_count(shard_count)
    # Ties (a 64-bit collision) go to the lower shard, so the answer is still deterministic.
    return max(range(shard_count), key=lambda shard: (_weight(organizer_id, shard), -shard))


def owns(organizer_id: str, *, ordinal: int, shard_count: int) -> bool:
    """Whether the replica with this ordinal polls this organizer."""
    _check_count(shard_count)
    if not 0 <= ordinal < shard_count:
        raise ValueError(f"ordinal {ordinal} is outside 0..{shard_count - 1}")
    return shard_of(organizer_id, shard_count) == ordinal


def ordinal_from_pod_name(name: str) -> int:
    """The ordinal of a StatefulSet pod name: ``notifier-2`` -> 2."""
    match = _POD_NAME.fullmatch(name)
    if match is None:
        raise ValueError(
            f"pod name {name!r} does not end in a StatefulSet ordinal — expected "
            "'<statefulset>-<n>', e.g. 'notifier-2'"
        )
    return int(match["ordinal"])


def shard_from_env(env: Mapping[str, str]) -> tuple[int, int] | None:
    """``(ordinal, shard_count)`` from the environment; None (own everything) without a count.

    The ordinal is ``NOTIFIER_SHARD_ORDINAL`` when set, else parsed from ``POD_NAME``.
    """
    count_text = env.get(COUNT_VAR, "").strip()
    ordinal_text = env.get(ORDINAL_VAR, "").strip()
    if not count_text:
        if ordinal_text:
            raise ValueError(f"{ORDINAL_VAR} is set but {COUNT_VAR} is not — set both")
        return None
    count = _parse_int(COUNT_VAR, count_text)
    _check_count(count)
    ordinal = _ordinal(env, ordinal_text)
    if ordinal >= count:
        raise ValueError(f"shard ordinal {ordinal} is outside 0..{count - 1} ({COUNT_VAR}={count})")
    return ordinal, count


def _ordinal(env: Mapping[str, str], ordinal_text: str) -> int:
    if ordinal_text:
        return _parse_int(ORDINAL_VAR, ordinal_text)
    pod_name = env.get(POD_NAME_VAR, "").strip()
    if not pod_name:
        raise ValueError(
            f"{COUNT_VAR} is set but neither {ORDINAL_VAR} nor {POD_NAME_VAR} is — "
            "set one to give this replica its ordinal"
        )
    return ordinal_from_pod_name(pod_name)


def _parse_int(name: str, text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"{name} must be a non-negative integer, got {text!r}")
    return int(text)
