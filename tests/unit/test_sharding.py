"""Rendezvous sharding of organizers across StatefulSet replicas (docs/design.md §9)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from notifier.sharding import ordinal_from_pod_name, owns, shard_from_env, shard_of

ORGANIZERS = [f"organizer-{i}" for i in range(10_000)]
organizer_ids = st.text(min_size=1, max_size=40)
shard_counts = st.integers(min_value=1, max_value=32)


def _assignment(shard_count: int) -> dict[str, int]:
    return {organizer: shard_of(organizer, shard_count) for organizer in ORGANIZERS}


@pytest.mark.parametrize("shard_count", [3, 5, 8])
def test_shards_are_balanced_within_ten_percent(shard_count: int) -> None:
    """10,000 organizers spread over n shards leave each within ±10 % of the mean."""
    sizes = Counter(_assignment(shard_count).values())
    mean = len(ORGANIZERS) / shard_count
    assert sorted(sizes) == list(range(shard_count))
    assert all(abs(size - mean) <= 0.1 * mean for size in sizes.values()), sizes


@pytest.mark.parametrize("shard_count", [1, 2, 3, 5, 8])
def test_adding_a_shard_moves_organizers_only_to_the_new_shard(shard_count: int) -> None:
    """Going from n to n+1 shards moves organizers only onto the new shard."""
    before, after = _assignment(shard_count), _assignment(shard_count + 1)
    moved = {organizer for organizer in ORGANIZERS if before[organizer] != after[organizer]}
    assert {after[organizer] for organizer in moved} == {shard_count}


@pytest.mark.parametrize("shard_count", [1, 2, 3, 5, 8])
def test_adding_a_shard_moves_about_one_in_n_plus_one(shard_count: int) -> None:
    """Going from n to n+1 shards moves about 1/(n+1) of the organizers (±10 % of that)."""
    before, after = _assignment(shard_count), _assignment(shard_count + 1)
    moved = sum(before[organizer] != after[organizer] for organizer in ORGANIZERS)
    expected = len(ORGANIZERS) / (shard_count + 1)
    assert abs(moved - expected) <= 0.1 * expected, moved


@pytest.mark.parametrize("shard_count", [2, 3, 5, 8])
def test_removing_a_shard_moves_only_its_organizers(shard_count: int) -> None:
    """Going from n+1 to n shards moves exactly the removed shard's organizers."""
    before, after = _assignment(shard_count + 1), _assignment(shard_count)
    moved = {organizer for organizer in ORGANIZERS if before[organizer] != after[organizer]}
    assert moved == {organizer for organizer in ORGANIZERS if before[organizer] == shard_count}


def test_shard_of_is_stable_across_processes() -> None:
    """A fresh interpreter (another hash seed) assigns the same shards."""
    script = (
        "from notifier.sharding import shard_of;"
        "print([shard_of(f'organizer-{i}', 7) for i in range(50)])"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, a constant script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert result.stdout.strip() == str([shard_of(f"organizer-{i}", 7) for i in range(50)])


def test_shard_of_has_known_values() -> None:
    """The assignment is pinned: changing the hash would silently reshuffle every shard."""
    pinned = {"fabric": 2, "koko": 1, "printworks": 0, "ministry": 1, "egg": 0}
    assert {name: shard_of(name, 3) for name in pinned} == pinned


@given(organizer_ids, shard_counts)
def test_exactly_one_ordinal_owns_each_organizer(organizer_id: str, shard_count: int) -> None:
    """owns() is true for exactly one ordinal in 0..n-1."""
    owners = [
        ordinal
        for ordinal in range(shard_count)
        if owns(organizer_id, ordinal=ordinal, shard_count=shard_count)
    ]
    assert owners == [shard_of(organizer_id, shard_count)]


@given(organizer_ids)
def test_a_single_shard_owns_everything(organizer_id: str) -> None:
    """With one shard, ordinal 0 owns every organizer."""
    assert owns(organizer_id, ordinal=0, shard_count=1)


@pytest.mark.parametrize("shard_count", [0, -1])
def test_shard_count_below_one_is_rejected(shard_count: int) -> None:
    """A shard count below 1 is a ValueError, not an empty range."""
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("fabric", shard_count)


@pytest.mark.parametrize("ordinal", [-1, 3])
def test_owns_rejects_an_ordinal_outside_the_shards(ordinal: int) -> None:
    """owns() refuses an ordinal that is not one of the shards."""
    with pytest.raises(ValueError, match=re.escape("outside 0..2")):
        owns("fabric", ordinal=ordinal, shard_count=3)


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [("notifier-0", 0), ("notifier-2", 2), ("checkin-notifier-17", 17), ("a-b-c-3", 3)],
)
def test_ordinal_is_parsed_from_a_statefulset_pod_name(name: str, ordinal: int) -> None:
    """The trailing number of `<statefulset>-<n>` is the ordinal."""
    assert ordinal_from_pod_name(name) == ordinal


@pytest.mark.parametrize(
    "name", ["notifier", "notifier-", "-2", "notifier-x", "notifier-02", "notifier-2a", ""]
)
def test_a_pod_name_without_an_ordinal_is_a_clear_error(name: str) -> None:
    """A name that is not `<statefulset>-<n>` raises a ValueError saying what was expected."""
    with pytest.raises(ValueError, match=re.escape("<statefulset>-<n>")):
        ordinal_from_pod_name(name)


def test_no_shard_count_means_owning_everything() -> None:
    """Without NOTIFIER_SHARD_COUNT there is no sharding, even with a pod name."""
    assert shard_from_env({"POD_NAME": "notifier-1"}) is None


def test_shard_is_read_from_pod_name_and_count() -> None:
    """POD_NAME gives the ordinal when NOTIFIER_SHARD_ORDINAL is unset."""
    assert shard_from_env({"NOTIFIER_SHARD_COUNT": "3", "POD_NAME": "notifier-2"}) == (2, 3)


def test_explicit_ordinal_beats_pod_name() -> None:
    """NOTIFIER_SHARD_ORDINAL wins over POD_NAME."""
    env = {"NOTIFIER_SHARD_COUNT": "3", "NOTIFIER_SHARD_ORDINAL": "1", "POD_NAME": "notifier-2"}
    assert shard_from_env(env) == (1, 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NOTIFIER_SHARD_COUNT": "3"}, "neither NOTIFIER_SHARD_ORDINAL nor POD_NAME"),
        ({"NOTIFIER_SHARD_COUNT": "3", "POD_NAME": "notifier-3"}, "outside 0..2"),
        ({"NOTIFIER_SHARD_COUNT": "three", "POD_NAME": "notifier-0"}, "non-negative integer"),
        ({"NOTIFIER_SHARD_COUNT": "0", "POD_NAME": "notifier-0"}, "at least 1"),
        ({"NOTIFIER_SHARD_COUNT": "2", "NOTIFIER_SHARD_ORDINAL": "-1"}, "non-negative integer"),
        ({"NOTIFIER_SHARD_ORDINAL": "1"}, "NOTIFIER_SHARD_COUNT is not"),
        ({"NOTIFIER_SHARD_COUNT": "2", "POD_NAME": "web"}, "<statefulset>-<n>"),
    ],
)
def test_inconsistent_shard_environment_is_a_clear_error(env: dict[str, str], message: str) -> None:
    """A half-set or out-of-range shard environment raises a ValueError naming the problem."""
    with pytest.raises(ValueError, match=re.escape(message)):
        shard_from_env(env)
