"""The benchmarks still run: each script's ``main(["--smoke"])`` completes and prints its table.

Benchmarks are not tests (their figures are not asserted: this machine's load decides
them); these runs only prove the scripts work, at tiny sizes, in a few seconds each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from bench import delivery, intake, latency, memory, requests_per_poll, scale
from bench.common import Row

Main = Callable[[Sequence[str] | None], list[Row]]

SCRIPTS: list[tuple[str, Main]] = [
    ("Figure 1", requests_per_poll.main),
    ("Figure 2", latency.main),
    ("Figure 3", intake.main),
    ("Figure 4", memory.main),
    ("Figure 5", delivery.main),
    ("Figure 6", scale.main),
]


# Over ~5 s each on two shared cores: left out of `make test-fast` (pytest -m "not slow").
SLOW = frozenset({"Figure 1", "Figure 2", "Figure 6"})


@pytest.mark.parametrize(
    ("title", "main"),
    [
        pytest.param(title, main, id=title, marks=[pytest.mark.slow] if title in SLOW else [])
        for title, main in SCRIPTS
    ],
)
def test_smoke_run_prints_its_table(
    title: str, main: Main, capsys: pytest.CaptureFixture[str]
) -> None:
    """A smoke run returns rows with a figure each and prints them under the figure's title."""
    rows = main(["--smoke"])
    out = capsys.readouterr().out
    assert rows
    assert title in out
    assert "| figure | ours | naive baseline | ratio | target | met |" in out
    assert all(row.figure in out for row in rows)
