"""Scale-out on PostgreSQL (docs/design.md §10): three ``notifier run`` processes on one
database and one Kafka broker while door traffic flows; one replica SIGKILLed, then scaling
2 -> 3 -> 2 with no procedure. Every transition is delivered, no (ticket, event type) under
two ids, and a dead replica's sources are polled again within lease expiry + one poll interval
(+ one lease round, in which the survivors notice)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import pytest

from notifier.dev.broker import EmbeddedBroker, free_port
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from tests.integration.pipeline import create_topic
from tests.reliability.ground_truth import GroundTruth, check, read_kafka
from tests.reliability.harness import PARTITIONS, Driver, Service, Stack, until

SOURCES = 6
LEASE = 3.0
POLL = 0.5
ROUND = LEASE / 5  # the keeper's round (LeaseKeeper.interval)
CONFIG = """\
state:
  url: "{url}"
  lease: {lease}s
server:
  host: 127.0.0.1
  port: {port}
kafka:
  bootstrap_servers: ["{bootstrap}"]
  topic: {topic}
defaults:
  poll_interval: {poll}s
organizers:
  - id: venue
    name: Venue
    sources:
{sources}"""
SOURCE = """\
      - id: sg-{n}
        provider: shotgun
        organizer_id: {organizer}
        token: ${{SG_TOKEN_{n}}}
        base_url: {base_url}
        allow_insecure_http: true
        requests_per_minute: 100000
"""


@dataclass
class Cluster:
    stack: Stack
    url: str
    drivers: list[Driver]

    def config_for(self, replica: int) -> Path:
        """One config file per replica: the same state and sources, its own health port."""
        text = self.stack.config.read_text().replace("port: 0\n", f"port: {free_port()}\n")
        path = self.stack.config.with_name(f"replica-{replica}.yaml")
        path.write_text(text)
        return path


async def start_cluster(tmp_path: Path, *, url: str, bootstrap: str, topic: str) -> Cluster:
    sim = ShotgunSimulator()
    env: dict[str, str] = {}
    blocks: list[str] = []
    tickets: list[list[int]] = []
    runner = await serve(sim)
    host, port = runner.addresses[0][:2]
    for n in range(SOURCES):
        token = "sg." + secrets.token_urlsafe(16)
        env[f"SG_TOKEN_{n}"] = token
        tickets.append(sim.seed(9000 + n, token, 12, rng_seed=n))
        blocks.append(SOURCE.format(n=n, organizer=9000 + n, base_url=f"http://{host}:{port}"))
    config = tmp_path / "notifier.yaml"
    config.write_text(
        CONFIG.format(
            url=url,
            lease=LEASE,
            port=0,
            bootstrap=bootstrap,
            topic=topic,
            poll=POLL,
            sources="".join(blocks),
        )
    )
    (tmp_path / "logs").mkdir()
    stack = Stack(
        sim=sim,
        sim_runner=runner,
        receivers={},
        endpoints={},
        config=config,
        state=tmp_path / "unused.db",
        env=env,
        port=0,
        topic=topic,
        bootstrap=bootstrap,
        tickets=[t for group in tickets for t in group],
        log_dir=tmp_path / "logs",
    )
    rng = random.Random(7)
    drivers = [Driver(sim, group, rng=random.Random(rng.random())) for group in tickets]
    return Cluster(stack=stack, url=url, drivers=drivers)


async def replica(cluster: Cluster, n: int) -> Service:
    # A copy of the stack naming this replica's config; the log list stays shared.
    service = Service(replace(cluster.stack, config=cluster.config_for(n)))
    await service.start()
    await service.started()
    return service


async def query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def owners(url: str) -> dict[str, str | None]:
    rows = await query(
        url, "SELECT source, CASE WHEN expires_at > clock_timestamp() THEN owner END FROM leases"
    )
    return {row[0]: row[1] for row in rows}


def pid_of(owner: str | None) -> int | None:
    return None if owner is None else int(owner.rsplit("-", 2)[1])


async def held_by(url: str, services: Sequence[Service]) -> dict[int, int]:
    pids = {s.process.pid for s in services if s.process is not None}
    counts = dict.fromkeys(pids, 0)
    for owner in (await owners(url)).values():
        pid = pid_of(owner)
        if pid in counts:
            counts[pid] += 1
    return counts


async def fair(url: str, services: Sequence[Service]) -> bool:
    counts = await held_by(url, services)
    return sum(counts.values()) == SOURCES and max(counts.values()) - min(counts.values()) <= 1


async def committed_after(url: str, sources: Sequence[str], moment: float) -> bool:
    rows = await query(
        url,
        "SELECT count(*) FROM sources WHERE source = ANY($1) AND committed_at > $2",
        list(sources),
        moment,
    )
    return int(rows[0][0]) == len(sources)


async def drained(url: str) -> bool:
    rows = await query(url, "SELECT count(*) FROM deliveries WHERE status = 'pending'")
    return int(rows[0][0]) == 0


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_failover_and_scaling_lose_nothing(
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    postgres_url: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    topic = unique_topic("scale")
    create_topic(kafka_broker.bootstrap, topic)
    cluster = await start_cluster(
        tmp_path, url=postgres_url, bootstrap=kafka_broker.bootstrap, topic=topic
    )
    url = postgres_url
    services: list[Service] = []
    stop = asyncio.Event()
    traffic: list[asyncio.Task[None]] = []
    try:
        services = [await replica(cluster, n) for n in range(3)]
        await until(lambda: fair(url, services), within=20, step=0.2)
        # Baselines first: the traffic's changes must come after each source's first read.
        everything = [f"sg-{n}" for n in range(SOURCES)]
        await until(lambda: committed_after(url, everything, 0.0), within=20, step=0.2)
        traffic = [asyncio.create_task(d.run(stop, every=0.15)) for d in cluster.drivers]
        await asyncio.sleep(2.0)

        # -- one replica SIGKILLed: its sources are polled again after its lease expires
        victim = services.pop(0)
        assert victim.process is not None
        lost = [s for s, o in (await owners(url)).items() if pid_of(o) == victim.process.pid]
        assert lost, "the victim held nothing"
        killed_at = time.time()
        await victim.kill()
        await until(lambda: committed_after(url, lost, killed_at), within=LEASE + 10, step=0.05)
        takeover = time.time() - killed_at
        await until(lambda: fair(url, services), within=10, step=0.2)

        # -- 2 -> 3: the newcomer takes its share from the others, no procedure
        services.append(await replica(cluster, 3))
        await until(lambda: fair(url, services), within=10, step=0.2)
        await asyncio.sleep(1.5)

        # -- 3 -> 2: SIGTERM releases at once; the others take over within a round or two
        leaving = services.pop(0)
        left_with = [
            s
            for s, o in (await owners(url)).items()
            if leaving.process is not None and pid_of(o) == leaving.process.pid
        ]
        terminated_at = time.time()
        assert await leaving.terminate() == 0, leaving.tail()
        await until(lambda: committed_after(url, left_with, terminated_at), within=10, step=0.05)
        handover = time.time() - terminated_at
        await until(lambda: fair(url, services), within=10, step=0.2)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        for task in traffic:
            await task
    try:
        # The last changes are polled and delivered by the two remaining replicas.
        truth = GroundTruth()
        for driver in cluster.drivers:
            for ticket, types in driver.truth.expected.items():
                truth.expected[ticket].extend(types)
        settled_at = time.time()
        await until(lambda: committed_after(url, everything, settled_at + POLL), within=15)
        await until(lambda: drained(url), within=30, step=0.2)
        delivered = await asyncio.to_thread(
            read_kafka, kafka_broker.bootstrap, topic, partitions=PARTITIONS
        )
        report = check(truth, delivered, channel="kafka", ordered_arrival=True)
    finally:
        for service in services:
            with contextlib.suppress(TimeoutError):
                await service.terminate()
        await cluster.stack.close()
    line = (
        f"{report.line()}; takeover after SIGKILL {takeover:.2f} s "
        f"(lease {LEASE:.0f} s + poll {POLL} s + round {ROUND:.1f} s), "
        f"handover after SIGTERM {handover:.2f} s"
    )
    print(line)
    record_property("figures", line)
    assert report.expected > 30
    assert report.unique == report.expected
    assert takeover <= LEASE + POLL + ROUND + 0.5  # 0.5 s: a poll's own duration on a busy CI
    assert handover <= 2 * ROUND + POLL + 0.5
