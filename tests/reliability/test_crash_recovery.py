"""Scenario 1, crash anywhere (CI form): at least 50 SIGKILLs of ``notifier run`` at random
points while tickets change; nothing lost, nothing invented, duplicates only as exact
redeliveries, per-ticket order kept on Kafka. The long form is ``python -m
tests.reliability.soak``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from notifier.dev.broker import EmbeddedBroker
from tests.reliability.crash import crash_campaign

CI_KILLS = 50


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_sigkill_at_random_points_loses_nothing(
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """50 SIGKILLs + restarts: every transition reaches Kafka and each subscribed webhook."""
    figures = await crash_campaign(
        tmp_path,
        bootstrap=kafka_broker.bootstrap,
        topic=unique_topic("crash"),
        kills=CI_KILLS,
        seed=20240501,
    )
    for line in figures.lines():
        print(line)
        record_property("figures", line)
    assert figures.kills >= CI_KILLS
    kafka = figures.reports[0]
    assert kafka.unique == kafka.expected > 100
