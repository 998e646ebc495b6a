"""Every figure in turn: ``python -m bench.all [--smoke]`` (``make bench`` runs the full size).

Each script keeps its own default sizes; pass sizes to a script itself to change them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench import delivery, intake, latency, memory, replicas, requests_per_poll, scale
from bench.common import Row, machine, parse_args

SCRIPTS: tuple[Callable[[Sequence[str] | None], list[Row]], ...] = (
    requests_per_poll.main,
    latency.main,
    intake.main,
    memory.main,
    delivery.main,
    scale.main,
    replicas.main,
)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv, __doc__ or "")
    sys.stdout.write(f"# checkin-notifier benchmarks\n\n{machine()}\n")
    rows: list[Row] = []
    for script in SCRIPTS:
        rows += script(["--smoke"] if args.smoke else [])
    missed = [row.figure for row in rows if row.met is False]
    sys.stdout.write(f"\n{len(missed)} target(s) missed" + (": " if missed else "") + "\n")
    for figure in missed:
        sys.stdout.write(f"- {figure}\n")
    return rows


if __name__ == "__main__":
    main()
