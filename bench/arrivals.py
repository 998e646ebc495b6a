"""Figure 2's measuring parts: when each change was made, and when it arrived where.

A change (a scan, a void) is timed when the script makes it in a simulator; its arrival
when an aiokafka consumer reads its record from the topic, or the verifying webhook
receiver accepts it. Shared by the polled rows (``latency``) and the push rows
(``latency_push``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


@dataclass
class Scans:
    """Change times by ticket id, and the arrival times seen for each path."""

    at: dict[str, float] = field(default_factory=dict)
    arrivals: dict[str, dict[str, float]] = field(default_factory=dict)

    def arrived(self, path: str, ticket_id: str) -> None:
        self.arrivals.setdefault(path, {}).setdefault(ticket_id, time.time())

    def latencies(self, path: str) -> list[float]:
        seen = self.arrivals.get(path, {})
        return [seen[t] - self.at[t] for t in self.at if t in seen]

    def complete(self, paths: Sequence[str]) -> bool:
        return all(len(self.arrivals.get(path, {})) >= len(self.at) for path in paths)


async def make_changes(
    change: Callable[[str], None],
    ids: Sequence[str],
    scans: Scans,
    *,
    rate: float,
    seconds: float,
) -> None:
    """One change every 60/rate s (on a fixed schedule, not drifting) for ``seconds``."""
    period = 60.0 / rate
    start = time.monotonic()
    for count, ticket in enumerate(ids[: int(seconds / period)]):
        await asyncio.sleep(max(0.0, start + count * period - time.monotonic()))
        change(ticket)
        scans.at[ticket] = time.time()


async def consume(
    bootstrap: str,
    topic: str,
    scans: Scans,
    stop: asyncio.Event,
    *,
    types: Collection[str] = (),
) -> None:
    """Note the arrival of each record (of ``types``, when given) until ``stop``."""
    wanted = {kind.encode() for kind in types}
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            for records in batches.values():
                for record in records:
                    if record.key is None:
                        continue
                    if wanted and dict(record.headers).get("ce_type") not in wanted:
                        continue
                    scans.arrived("kafka", record.key.decode().rsplit(":", 1)[1])
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()


async def wait_until(condition: Callable[[], bool], within: float) -> None:
    """Re-check ``condition`` every 50 ms for up to ``within`` seconds (then carry on)."""
    for _ in range(round(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
