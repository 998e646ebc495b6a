"""Scenario 1, crash anywhere: ``notifier run`` SIGKILLed at random points and restarted
while a driver changes tickets; then one clean run drains and the deliveries are checked.

Shared by the CI test (``test_crash_recovery.py``, 50 kills) and the soak (``soak.py``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.integration.pipeline import create_topic
from tests.reliability.ground_truth import CheckReport, check, from_webhook, read_kafka
from tests.reliability.harness import (
    PARTITIONS,
    Driver,
    EndpointSpec,
    Service,
    Stack,
    assert_no_secrets,
    has_baseline,
    log_texts,
    outstanding,
    start_stack,
    until,
    webhook_has_all,
)

CRM_EVENTS = ("ticket.checked_in", "ticket.refunded")
ENDPOINTS = (EndpointSpec("doors"), EndpointSpec("crm", events=CRM_EVENTS))
# Some kills land while the process imports, opens the store or starts its sinks; the rest
# land while it polls and delivers, measured from its ``service_started`` log line.
EARLY_KILL_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class CrashFigures:
    kills: int
    early_kills: int
    ops: int
    reports: list[CheckReport]
    elapsed: float
    drain_seconds: float
    logs_scanned: int

    def lines(self) -> list[str]:
        head = (
            f"{self.kills} SIGKILLs ({self.early_kills} during start-up), {self.ops} driver "
            f"changes, {self.elapsed:.0f} s in all, final drain {self.drain_seconds:.1f} s, "
            f"{self.logs_scanned} process logs scanned for secrets"
        )
        return [head, *(report.line() for report in self.reports)]


async def crash_campaign(
    tmp_path: Path,
    *,
    bootstrap: str,
    topic: str,
    kills: int,
    seed: int,
    kill_after: tuple[float, float] = (0.05, 0.5),
    progress: Callable[[int], None] | None = None,
) -> CrashFigures:
    """Run the campaign and check it; raises AssertionError on any loss or phantom."""
    started = time.monotonic()
    create_topic(bootstrap, topic)
    stack = await start_stack(tmp_path, bootstrap=bootstrap, topic=topic, endpoints=ENDPOINTS)
    rng = random.Random(seed)
    try:
        await _baseline(stack)
        driver = Driver(stack.sim, stack.tickets, rng=rng)
        stop = asyncio.Event()
        changes = asyncio.create_task(driver.run(stop))
        early = 0
        try:
            for done in range(kills):
                early += await _one_life(stack, rng, kill_after)
                if progress is not None:
                    progress(done + 1)
        finally:
            stop.set()
            await changes
        drain_started = time.monotonic()
        await _drain(stack, driver)
        drain_seconds = time.monotonic() - drain_started
        reports = _check_all(stack, driver)
        scanned = assert_no_secrets(log_texts(stack.logs), stack.secrets)
    finally:
        await stack.close()
    return CrashFigures(
        kills=kills,
        early_kills=early,
        ops=driver.ops,
        reports=reports,
        elapsed=time.monotonic() - started,
        drain_seconds=drain_seconds,
        logs_scanned=scanned,
    )


async def _baseline(stack: Stack) -> None:
    """One life until the first commit: the driver's changes must come after the baseline."""
    service = Service(stack)
    await service.start()
    try:
        await until(lambda: asyncio.to_thread(has_baseline, stack.state), within=30)
    finally:
        await service.kill()


async def _one_life(stack: Stack, rng: random.Random, kill_after: tuple[float, float]) -> int:
    """Start the service and SIGKILL it at a random point; 1 if it died during start-up."""
    service = Service(stack)
    await service.start()
    try:
        if rng.random() < EARLY_KILL_SHARE:
            await asyncio.sleep(rng.uniform(0.05, 1.2))
            return 0 if service.logged("service_started") else 1
        await service.started()
        await asyncio.sleep(rng.uniform(*kill_after))
        return 0
    finally:
        await service.kill()


async def _drain(stack: Stack, driver: Driver) -> None:
    """A last, uninterrupted life until every endpoint has everything and nothing is pending."""
    service = Service(stack)
    await service.start()

    async def complete() -> bool:
        for name, receiver in stack.receivers.items():
            only = set(stack.endpoints[name].events) or None
            if not webhook_has_all(receiver, driver.truth, only):
                return False
        return await asyncio.to_thread(outstanding, stack.state) == 0

    try:
        # The earlier lives may already have delivered everything: without this wait the
        # drain could SIGTERM a process still importing, before it can stop cleanly.
        await service.started()
        await until(complete, within=90, step=0.2)
    except TimeoutError:
        raise AssertionError(_not_drained(stack, driver, service)) from None
    finally:
        code = await service.terminate()
    assert code == 0, service.tail()


def _not_drained(stack: Stack, driver: Driver, service: Service) -> str:
    lines = [f"not drained: {outstanding(stack.state)} deliveries pending"]
    for name, receiver in stack.receivers.items():
        only = set(stack.endpoints[name].events) or None
        got = {(str(e["subject"]), str(e["type"])) for e in receiver.events}
        want = {(t, ty) for t, ty in driver.truth.pairs() if only is None or ty in only}
        missing = sorted(want - got)
        lines.append(f"webhook:{name} misses {len(missing)}: {missing[:10]}")
        for ticket, _ in missing[:3]:
            lines.append(
                f"  driver did {driver.truth.expected[ticket]} on {ticket}: "
                f"{stack.sim.ticket(int(ticket))}"
            )
    lines.append(service.tail(10))
    return "\n".join(lines)


def _check_all(stack: Stack, driver: Driver) -> list[CheckReport]:
    kafka = read_kafka(stack.bootstrap, stack.topic, partitions=PARTITIONS)
    reports = [check(driver.truth, kafka, channel="kafka", ordered_arrival=True)]
    for name, receiver in stack.receivers.items():
        only = set(stack.endpoints[name].events) or None
        reports.append(
            check(
                driver.truth,
                from_webhook(receiver.events),
                channel=f"webhook:{name}",
                ordered_arrival=False,
                only=only,
            )
        )
    return reports
