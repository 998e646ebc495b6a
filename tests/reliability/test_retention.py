"""Retention keeps the store bounded: delivered events and their deliveries leave after
``retention.delivered``; parked ones stay until replayed or ``retention.parked``; pending
ones always stay. Tickets of an event that ended ``retention.ended_events`` ago leave the
store and the poller's memory, and a later read of them (a reconcile sweep) neither stores
them again nor announces them as new."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.config.models import Config
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from notifier.model import SourceId
from notifier.retention import prune_once
from notifier.service import open_runtime, run_service
from notifier.store.base import DeliveryStatus, Outcome, Routed
from notifier.store.memory import MemoryStore
from notifier.store.sqlite import SqliteStore
from tests.integration.test_kafka_sink import make_event
from tests.reliability.harness import until

DAY = 86_400.0
T0 = 1_800_000_000.0
SOURCE = SourceId("main-hall")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "memory"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SqliteStore | MemoryStore, Clock]]:
    clock = Clock()
    opened: SqliteStore | MemoryStore
    if request.param == "sqlite":
        opened = await SqliteStore(tmp_path / "state.db", clock=clock).open()
    else:
        opened = MemoryStore(clock=clock)
    yield opened, clock
    await opened.close()


async def test_delivered_events_leave_parked_wait_pending_stay(
    store: tuple[SqliteStore | MemoryStore, Clock],
) -> None:
    outbox, clock = store
    names = ["delivered", "parked", "pending", "half", "replayed"]
    events = {name: make_event(name) for name in names}
    await outbox.commit(
        SOURCE,
        tickets={},
        events=[Routed(event=e, sinks=("kafka", "webhook:crm")) for e in events.values()],
        cursor="c1",
    )
    rows = {(d.sink, d.event.subject): d.position for d in await outbox.deliveries()}

    def outcome(name: str, status: DeliveryStatus, sink: str) -> Outcome:
        return Outcome(rows[(sink, name)], status)

    await outbox.record(
        "kafka", [outcome(name, DeliveryStatus.DELIVERED, "kafka") for name in names]
    )
    await outbox.record(
        "webhook:crm",
        [
            outcome("delivered", DeliveryStatus.DELIVERED, "webhook:crm"),
            outcome("parked", DeliveryStatus.PARKED, "webhook:crm"),
            outcome("replayed", DeliveryStatus.PARKED, "webhook:crm"),
            # "pending" stays pending for the webhook; "half" too
        ],
    )

    async def left() -> set[str]:
        return {d.event.subject for d in await outbox.deliveries()}

    async def prune(days: float) -> tuple[int, int]:
        now = T0 + days * DAY
        pruned = await outbox.prune_outbox(
            delivered_before=now - 7 * DAY, parked_before=now - 30 * DAY, batch=2
        )
        return pruned.events, pruned.deliveries

    assert await prune(6.9) == (0, 0)  # nothing is old enough yet
    assert await prune(7.1) == (1, 2)  # the event delivered everywhere, and its 2 rows
    assert await left() == {"parked", "pending", "half", "replayed"}

    # The operator replays one parked delivery; once delivered it goes at the next pass.
    clock.now = T0 + 10 * DAY
    assert await outbox.requeue("webhook:crm", event_id=events["replayed"].id) == 1
    await outbox.record(
        "webhook:crm", [outcome("replayed", DeliveryStatus.DELIVERED, "webhook:crm")]
    )
    assert await prune(10.1) == (1, 2)
    assert await left() == {"parked", "pending", "half"}

    assert await prune(29.9) == (0, 0)  # parked: kept for replay up to 30 days
    assert await prune(30.1) == (1, 2)
    assert await left() == {"pending", "half"}  # still owed to a sink: never deleted
    assert await prune(365) == (0, 0)


async def test_a_prune_in_many_batches_removes_everything_due(tmp_path: Path) -> None:
    clock = Clock()
    outbox = await SqliteStore(tmp_path / "state.db", clock=clock).open()
    try:
        events = [make_event(f"T{n}") for n in range(2500)]
        await outbox.commit(
            SOURCE,
            tickets={},
            events=[Routed(event=e, sinks=("kafka",)) for e in events],
            cursor="c",
        )
        rows = await outbox.deliveries(sink="kafka")
        await outbox.record("kafka", [Outcome(d.position, DeliveryStatus.DELIVERED) for d in rows])
        size_full = await outbox.file_bytes()
        pruned = await outbox.prune_outbox(
            delivered_before=T0 + 1, parked_before=T0 + 1, batch=1000
        )
        assert (pruned.events, pruned.deliveries) == (2500, 2500)
        assert await outbox.deliveries() == []
        assert size_full > 0
    finally:
        await outbox.close()


CONFIG: dict[str, object] = {
    "defaults": {"poll_interval": "100ms", "reconcile_interval": "300ms"},
    "retention": {"interval": "100ms", "ended_events": "720h"},
}


async def test_tickets_of_long_ended_events_leave_store_and_memory(tmp_path: Path) -> None:
    sim = ShotgunSimulator(page_size=50)
    token = "sg." + secrets.token_urlsafe(24)
    sim.add_organizer(3003, token)
    long_ago = datetime.now(UTC) - timedelta(days=60)
    old_event = sim.add_event(3003, start_time=long_ago, end_time=long_ago + timedelta(hours=8))
    live_event = sim.add_event(3003)
    old = [sim.create_ticket(old_event) for _ in range(10)]
    live = [sim.create_ticket(live_event) for _ in range(10)]
    runner = await serve(sim)
    url = "http://127.0.0.1:" + str(runner.addresses[0][1])
    config = Config.model_validate(
        {
            **CONFIG,
            "state": {"path": str(tmp_path / "state.db")},
            "organizers": [
                {
                    "id": "acme",
                    "name": "Acme",
                    "sources": [
                        {
                            "id": "main-hall",
                            "provider": "shotgun",
                            "organizer_id": 3003,
                            "token": token,
                            "base_url": url,
                            "requests_per_minute": 100000,
                            "allow_insecure_http": True,
                        }
                    ],
                }
            ],
        }
    )
    runtime = await open_runtime(config)
    store = runtime.store
    assert isinstance(store, SqliteStore)
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(runtime, stop))
    poller = runtime.sources[0].poller
    try:

        async def old_tickets_gone() -> bool:
            snapshot = await store.load(SOURCE, as_fingerprints=True)
            return snapshot.settled and set(snapshot.fingerprints) == {str(t) for t in live}

        await until(old_tickets_gone, within=30)
        assert set(poller._fingerprints or {}) == {str(t) for t in live}
        # A change to a forgotten ticket is not news; one to a live ticket is.
        sim.scan(old[0])
        sim.scan(live[0])
        sim.create_ticket(old_event)

        async def live_scan_committed() -> bool:
            return str(live[0]) in _outbox_subjects(tmp_path / "state.db")

        await until(live_scan_committed, within=30)
        sweeps = sim.requests_served
        await until(lambda: _served_more(sim, sweeps + 10), within=30)  # a few sweeps later
        # Nothing about the ended event, not even "issued" for its new ticket.
        assert _outbox_subjects(tmp_path / "state.db") == {str(live[0])}
        snapshot = await store.load(SOURCE, as_fingerprints=True)
        assert set(snapshot.fingerprints) == {str(t) for t in live}
        assert snapshot.retired_events == {str(old_event)}
        await prune_once(
            store, runtime.config.retention
        )  # the outbox pass runs too; nothing here is 7 days old
        assert _outbox_subjects(tmp_path / "state.db") == {str(live[0])}
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
        await runtime.close()
        await runner.cleanup()


async def _served_more(sim: ShotgunSimulator, count: int) -> bool:
    return sim.requests_served >= count


def _outbox_subjects(path: Path) -> set[str]:
    """Read straight from the state file, as an operator's sqlite3 shell would."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return {subject for (subject,) in db.execute("SELECT subject FROM outbox")}
    finally:
        db.close()


async def test_the_state_file_levels_off_under_retention(tmp_path: Path) -> None:
    """The soak of bench/retention_soak.py at a small size (its full run: a million events,
    docs/reliability.md): once the retention periods have passed, the file stops growing
    while events keep coming."""
    from bench.retention_soak import soak

    days = await soak(
        tmp_path / "soak.db",
        events=30_000,
        days=12,
        delivered_days=2,
        parked_days=4,
        ended_days=3,
    )
    sizes = [size for *_, size in days]
    committed = [row[1] for row in days]
    # From day 6 on (every period has passed) events double, the file grows < 5 %.
    assert committed[-1] >= 2 * committed[5]
    assert max(sizes[5:]) <= sizes[5] * 1.05
    # Without retention the first two days' rate would have grown it to ``unbounded``.
    unbounded = sizes[1] / committed[1] * committed[-1]
    assert sizes[-1] < unbounded / 3
    outbox = [row[2] for row in days]
    assert max(outbox[3:]) <= outbox[2] * 1.05  # the outbox stops at ~2 days of events
