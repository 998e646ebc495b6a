"""What every benchmark shares: the ``--smoke`` flag, timing, RSS, percentiles, the table.

Each script builds a list of ``Row`` (our figure, the naive baseline's figure measured in
the same run, their ratio and the target) and prints it with ``print_table``. A benchmark
is not a test: ``--smoke`` runs a tiny size in a few seconds, only to prove it still works.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a result table.

    ``ratio`` is ours / baseline unless given; ``met`` is None when there is no target.
    """

    figure: str
    ours: float
    baseline: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    ratio: float | None = None

    def ratio_text(self) -> str:
        ratio = self.ratio
        if ratio is None and self.baseline:
            ratio = self.ours / self.baseline
        return "" if ratio is None else _number(ratio, ratio=True)


def parse_args(
    argv: Sequence[str] | None,
    description: str,
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--smoke`` plus the script's own size options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="a tiny size, a few seconds")
    if configure is not None:
        configure(parser)
    return parser.parse_args(argv)


def quiet_logs() -> None:
    """Warnings only: the service logs every poll and delivery, which would skew timings."""
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Stopwatch:
    seconds: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Stopwatch]:
    """``with timed() as t: ...`` then ``t.seconds`` (wall) and ``t.cpu`` (this process).

    On a shared machine the wall time of CPU-bound work depends on the neighbours; the
    process CPU time of single-threaded work is the per-core figure.
    """
    watch = Stopwatch()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started
        watch.cpu = time.process_time() - cpu


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> str:
    """Date, cores, CPU model and Python: the context every figure needs."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc={os.cpu_count()}, {model}, "
        f"Python {platform.python_version()}"
    )


def print_table(title: str, rows: Sequence[Row], *, notes: Sequence[str] = ()) -> None:
    """A Markdown table (pasted as is into docs/benchmarks.md)."""
    out = sys.stdout
    out.write(f"\n### {title}\n\n{machine()}\n\n")
    out.write("| figure | ours | naive baseline | ratio | target | met |\n")
    out.write("| --- | ---: | ---: | ---: | --- | --- |\n")
    for row in rows:
        baseline = "" if row.baseline is None else f"{_number(row.baseline)} {row.unit}"
        met = "" if row.met is None else ("met" if row.met else "MISSED")
        out.write(
            f"| {row.figure} | {_number(row.ours)} {row.unit} | {baseline} | "
            f"{row.ratio_text()} | {row.target} | {met} |\n"
        )
    for note in notes:
        out.write(f"\n{note}\n")
    out.flush()


def _number(value: float, *, ratio: bool = False) -> str:
    if value != value:  # NaN
        return "n/a"
    if ratio:
        return f"{value:.3g}x" if value >= 0.01 else f"1/{1 / value:,.0f}" if value else "0"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"
