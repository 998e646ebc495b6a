"""``notifier deliveries`` and ``notifier replay``: what the outbox still owes, and re-queueing.

Both take a sink by the same names: a webhook endpoint's name from the config (``doors``),
the sink name the table prints (``webhook:doors``), or ``kafka``. An unknown name is refused
with the known ones, so a typo never looks like an empty outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from notifier.config import load_config
from notifier.config.models import Config
from notifier.errors import ConfigError
from notifier.service import KAFKA_SINK, webhook_sink_name
from notifier.store.base import Delivery, DeliveryStatus

Command = Callable[[str, object, str], argparse.ArgumentParser]

_SINK_HELP = (
    "one sink: a webhook endpoint's name from the config (e.g. doors), the name shown in "
    "the SINK column (webhook:doors), or kafka"
)


def add_outbox_commands(
    command: Command, config_option: Callable[[argparse.ArgumentParser], None]
) -> None:
    deliveries = command(
        "deliveries",
        _deliveries,
        "list the deliveries still owed (pending, with their next attempt) and parked ones",
    )
    config_option(deliveries)
    deliveries.add_argument("--failed", action="store_true", help="parked deliveries only")
    deliveries.add_argument("--endpoint", metavar="SINK", help=_SINK_HELP + "; default: all")
    replay = command(
        "replay",
        _replay,
        "re-queue parked deliveries of one sink; they are sent again with the same event ids "
        "by the next run or once",
    )
    config_option(replay)
    replay.add_argument("--endpoint", metavar="SINK", required=True, help=_SINK_HELP)
    replay.add_argument(
        "--since",
        type=datetime.fromisoformat,
        metavar="TIME",
        help="only events committed at or after this ISO 8601 time, e.g. 2026-05-01T20:00:00Z",
    )
    replay.add_argument("--event-id", metavar="ID", help="only the event with this id")
    replay.add_argument(
        "--enable",
        action="store_true",
        help="also re-enable the sink if a 410 Gone disabled it",
    )


def sink_names(config: Config) -> dict[str, str]:
    """Every name a user may give for a sink, mapped to the sink's name in the outbox."""
    names: dict[str, str] = {}
    if config.kafka is not None:
        names[KAFKA_SINK] = KAFKA_SINK
    for _, endpoint in config.endpoints():
        names[endpoint.name] = names[webhook_sink_name(endpoint.name)] = webhook_sink_name(
            endpoint.name
        )
    return names


def resolve_sink(config: Config, config_path: Path, name: str) -> str:
    """The outbox sink ``name`` stands for; a ConfigError listing the known names if none."""
    names = sink_names(config)
    if name not in names:
        raise ConfigError(
            f"{config_path}: no sink named {name!r} "
            f"(known: {', '.join(sorted(names)) or 'none: the config has no kafka or webhooks'})"
        )
    return names[name]


def _deliveries(args: argparse.Namespace) -> int:
    config = load_config(args.config, os.environ)
    sink = resolve_sink(config, args.config, args.endpoint) if args.endpoint else None
    statuses = (
        [DeliveryStatus.PARKED] if args.failed else [DeliveryStatus.PENDING, DeliveryStatus.PARKED]
    )
    if not config.state.path.exists():
        # Reading must not create an empty database where the service would put its state.
        print(f"no state at {config.state.path} yet: nothing committed, nothing owed")
        return 0
    rows, disabled = asyncio.run(_read(config, sink, statuses))
    now = time.time()
    print(
        f"{'STATUS':8} {'SINK':24} {'ATTEMPTS':>8} {'NEXT ATTEMPT':20} {'TYPE':28} "
        f"{'EVENT ID':32} LAST ERROR"
    )
    for d in sorted(rows, key=lambda row: row.position):
        print(
            f"{d.status.value:8} {d.sink:24} {d.attempts:>8} "
            f"{next_attempt(d, now, disabled=d.sink in disabled):20} {d.event.type:28} "
            f"{d.event.id:32} {d.last_error or ''}"
        )
    for name, reason in disabled.items():
        print(f"disabled: {name}: {reason} (notifier replay --enable re-enables it)")
    return 0


def next_attempt(delivery: Delivery, now: float, *, disabled: bool = False) -> str:
    """When the dispatcher will try this delivery again, as the table shows it."""
    if delivery.status is DeliveryStatus.PARKED:
        return "- (parked)"
    if disabled:
        return "- (sink disabled)"
    if delivery.next_attempt_at <= now:
        return "due now"
    moment = datetime.fromtimestamp(delivery.next_attempt_at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _read(
    config: Config, sink: str | None, statuses: list[DeliveryStatus]
) -> tuple[list[Delivery], dict[str, str]]:
    from notifier.store.sqlite import SqliteStore

    store = await SqliteStore(config.state.path).open()
    try:
        rows = [d for s in statuses for d in await store.deliveries(sink=sink, status=s)]
        return rows, await store.disabled_sinks()
    finally:
        await store.close()


def _replay(args: argparse.Namespace) -> int:
    config = load_config(args.config, os.environ)
    sink = resolve_sink(config, args.config, args.endpoint)
    if not config.state.path.exists():
        print(f"no state at {config.state.path} yet: nothing to re-queue")
        return 0
    count = asyncio.run(_requeue(config, sink, args))
    print(f"re-queued {count} deliveries for {sink}")
    return 0


async def _requeue(config: Config, sink: str, args: argparse.Namespace) -> int:
    from notifier.store.sqlite import SqliteStore

    store = await SqliteStore(config.state.path).open()
    try:
        since = args.since.timestamp() if args.since else None
        count = await store.requeue(sink, since=since, event_id=args.event_id)
        if args.enable:
            await store.enable_sink(sink)
    finally:
        await store.close()
    return count
