"""The long form of the reliability scenarios, run by hand (never by pytest or CI):

    .venv/bin/python -m tests.reliability.soak --kills 1000 --outage 60

``--kills N`` runs scenario 1 with N SIGKILLs of ``notifier run``; ``--outage S`` runs
scenario 2 with the broker down for S seconds. Either can be 0 to skip it. Figures are
printed at the end, in the shape docs/reliability.md reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

from notifier.dev.broker import EmbeddedBroker
from notifier.observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__)
    parser.add_argument("--kills", type=int, default=1000, help="SIGKILLs in scenario 1 (0: skip)")
    parser.add_argument(
        "--outage", type=float, default=60.0, help="broker outage seconds (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING)  # the figures are the output, not every request
    return asyncio.run(_soak(args.kills, args.outage, args.seed))


async def _soak(kills: int, outage: float, seed: int) -> int:
    from tests.reliability.crash import crash_campaign

    print(f"soak: seed {seed}, {kills} kills, {outage:.0f} s broker outage", flush=True)
    # Kept after the run (state file and every process log), for a post-mortem.
    scratch = tempfile.mkdtemp(prefix="notifier-soak-")
    print(f"soak: state and logs under {scratch}", flush=True)
    if kills:
        started = time.monotonic()

        def progress(done: int) -> None:
            if done % 25 == 0:
                rate = (time.monotonic() - started) / done
                print(f"  {done}/{kills} kills ({rate:.2f} s each)", flush=True)

        with EmbeddedBroker() as broker:
            (Path(scratch) / "crash").mkdir()
            figures = await crash_campaign(
                Path(scratch) / "crash",
                bootstrap=broker.bootstrap,
                topic="soak-crash",
                kills=kills,
                seed=seed,
                progress=progress,
            )
        print("scenario 1 (crash anywhere):")
        for line in figures.lines():
            print("  " + line)
    if outage:
        from tests.reliability.outage import broker_outage

        path = Path(scratch) / "outage"
        path.mkdir()
        result = await broker_outage(path, outage=outage, seed=seed)
        print("scenario 2 (broker outage):")
        for line in result.lines():
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
