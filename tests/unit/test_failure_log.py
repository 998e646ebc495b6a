"""Delivery failures: one line per sink per interval, carrying the count of what it stands for."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from notifier.sinks.failure_log import FailureLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(logs: list[structlog.typing.EventDict]) -> list[tuple[str, str, int]]:
    return [
        (line["event"], line["sink"], line.get("failures", line.get("unreported_failures", -1)))
        for line in logs
    ]


def test_an_outage_is_one_line_per_interval_with_its_count() -> None:
    clock = Clock()
    failures = FailureLog(interval=60.0, clock=clock)
    with capture_logs() as logs:
        for _ in range(3000):  # a backlog failing in batches, a few per second
            failures.failed("kafka", failed=8, parked=0, error="broker down")
            clock.now += 0.0625  # exact in binary: the window edges fall on whole batches
    # 3000 batches over 187.5 s: a line at 0, 60, 120 and 180 s; each later line counts the
    # 960 batches since the previous one; the 119 after the last are not yet told.
    assert [line["event"] for line in logs] == ["delivery_failed"] * 4
    assert [line["failures"] for line in logs] == [8, 8 * 960, 8 * 960, 8 * 960]
    assert all(line["last_error"] == "broker down" for line in logs)


def test_sinks_are_counted_apart() -> None:
    clock = Clock()
    failures = FailureLog(interval=60.0, clock=clock)
    with capture_logs() as logs:
        failures.failed("webhook:crm", failed=1, parked=0, error="503")
        failures.failed("webhook:doors", failed=2, parked=1, error="timeout")
        failures.failed("webhook:crm", failed=5, parked=0, error="503")
    assert _lines(logs) == [
        ("delivery_failed", "webhook:crm", 1),
        ("delivery_failed", "webhook:doors", 2),
    ]
    assert logs[1]["parked"] == 1


def test_recovery_reports_what_was_not_yet_told() -> None:
    clock = Clock()
    failures = FailureLog(interval=60.0, clock=clock)
    with capture_logs() as logs:
        failures.failed("kafka", failed=3, parked=0, error="down")
        failures.failed("kafka", failed=4, parked=0, error="down")
        failures.succeeded("kafka")
        failures.succeeded("kafka")  # nothing open: silent
        failures.failed("kafka", failed=1, parked=0, error="down")  # a new outage: at once
    assert _lines(logs) == [
        ("delivery_failed", "kafka", 3),
        ("delivery_recovered", "kafka", 4),
        ("delivery_failed", "kafka", 1),
    ]
