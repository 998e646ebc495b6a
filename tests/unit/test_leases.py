"""The lease policy (notifier/leases.py): exact fair shares, and which surplus to release."""

from __future__ import annotations

from hypothesis import given, strategies as st

from notifier.leases import fair_share, plan
from notifier.model import SourceId

names = st.lists(st.text("abcdef0123", min_size=1, max_size=6), min_size=1, max_size=8, unique=True)


@given(total=st.integers(0, 500), live=names)
def test_shares_add_up_to_every_source_and_differ_by_at_most_one(
    total: int, live: list[str]
) -> None:
    shares = [fair_share(total, live, me) for me in live]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_a_replica_not_yet_seen_counts_itself() -> None:
    """Before its first heartbeat is visible, a new replica still takes its share."""
    assert fair_share(10, ["a", "b"], "c") + fair_share(10, ["a", "b", "c"], "a") == 7


def test_below_the_share_claims_the_difference() -> None:
    step = plan(held=[SourceId("s1")], total=9, live=["a", "b", "c"], me="a")
    assert (step.release, step.claim) == ((), 2)


@given(held=st.sets(st.integers(0, 99), max_size=60), live=names)
def test_above_the_share_releases_exactly_the_surplus(held: set[int], live: list[str]) -> None:
    sources = {SourceId(f"s{n}") for n in held}
    me = live[0]
    step = plan(held=sources, total=100, live=live, me=me)
    share = fair_share(100, live, me)
    assert step.claim == max(0, share - len(sources))
    assert set(step.release) <= sources
    assert len(sources) - len(step.release) == min(len(sources), share)


def test_the_same_surplus_is_released_every_round() -> None:
    """Stable: a replica does not shuffle which sources it keeps from one round to the next."""
    held = [SourceId(f"s{n}") for n in range(10)]
    first = plan(held=held, total=10, live=["a", "b"], me="a")
    again = plan(held=list(reversed(held)), total=10, live=["b", "a"], me="a")
    assert first.release == again.release
    assert len(first.release) == 5
