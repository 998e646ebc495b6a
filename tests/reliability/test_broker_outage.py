"""Scenario 2, broker outage (CI form, 10 s; the soak runs 60 s): events queue in the outbox
with their depth visible in /metrics, polling and webhooks carry on, and everything drains
to the restarted broker in per-ticket order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.outage import broker_outage

CI_OUTAGE = 10.0


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_broker_outage_queues_then_drains_everything(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """Broker stopped 10 s under live polling: nothing lost, order kept, polls continue."""
    figures = await broker_outage(tmp_path, outage=CI_OUTAGE, seed=11)
    for line in figures.lines():
        print(line)
        record_property("figures", line)
    assert figures.reports[0].unique == figures.reports[0].expected > 0
