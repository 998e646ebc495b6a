"""The ``notifier`` command (docs/design.md §8)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

import orjson
import structlog

from notifier.config import load_config
from notifier.config.models import Config
from notifier.errors import ConfigError, NotifierError
from notifier.observability import configure_logging, health_app
from notifier.push.server import start_ingest_server
from notifier.service import (
    Runtime,
    ingest_routes,
    open_runtime,
    poll_and_observe,
    run_once,
    run_service,
    webhook_sink_name,
)
from notifier.sharding import shard_from_env
from notifier.store.base import DeliveryStatus

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 2
# Each provider simulator module offers run_<name>_simulator(port, tickets=...).
SIMULATORS = ("eventpop", "nuweb", "shotgun", "tickettailor")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(json=args.log_json)
    try:
        result: int = args.handler(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notifier", description=__doc__)
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON log lines (default: JSON unless stderr is a terminal)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("run", _run, "run the service").add_argument("-c", "--config", type=Path, required=True)
    once = command("once", _once, "poll every source once, deliver what is due, exit")
    once.add_argument("-c", "--config", type=Path, required=True)
    once.add_argument("--dry-run", action="store_true", help="print events, write nothing")
    validate = command("validate", _validate, "check a config file")
    validate.add_argument("-c", "--config", type=Path, required=True)
    schema = command("schema", _schema, "print the event JSON Schemas")
    kind = schema.add_mutually_exclusive_group()
    kind.add_argument("--asyncapi", action="store_true", help="an AsyncAPI 3 document")
    kind.add_argument("--config", action="store_true", help="the config file's JSON Schema")
    simulate = command("simulate", _simulate, "serve one provider simulator")
    simulate.add_argument("provider", choices=sorted(SIMULATORS))
    simulate.add_argument("--port", type=int, default=8765)
    simulate.add_argument("--tickets", type=int, default=200)
    demo = command("demo", _demo, "simulators + broker + webhook receiver + notifier, live")
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    demo.add_argument("--tickets", type=int, default=200)
    deliveries = command("deliveries", _deliveries, "list pending and parked deliveries")
    deliveries.add_argument("-c", "--config", type=Path, required=True)
    deliveries.add_argument("--failed", action="store_true", help="parked deliveries only")
    deliveries.add_argument("--endpoint", help="one webhook endpoint")
    replay = command("replay", _replay, "re-queue parked webhook deliveries (same event ids)")
    replay.add_argument("-c", "--config", type=Path, required=True)
    replay.add_argument("--endpoint", required=True)
    replay.add_argument("--since", type=datetime.fromisoformat, help="ISO time of commit")
    replay.add_argument("--event-id")
    replay.add_argument("--enable", action="store_true", help="also re-enable the endpoint")
    return parser


def _load(path: Path) -> Config:
    return load_config(path, os.environ)


def _validate(args: argparse.Namespace) -> int:
    config = _load(args.config)
    sources = sum(1 for _ in config.sources())
    endpoints = sum(1 for _ in config.endpoints())
    print(f"{args.config}: ok ({sources} sources, {endpoints} webhook endpoints)")
    return EXIT_OK


def _once(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if args.dry_run:
        return asyncio.run(_dry_run(config))
    return asyncio.run(_with_runtime(config, run_once))


async def _with_runtime(config: Config, body: Callable[[Runtime], Awaitable[int]]) -> int:
    runtime = await open_runtime(config)
    try:
        return await body(runtime)
    finally:
        await runtime.close()


async def _dry_run(config: Config) -> int:
    """Poll against the stored state, print what would be committed, commit nothing."""
    from notifier.store.memory import MemoryStore

    fresh = not config.state.path.exists()  # then there is no state to read, nor to create
    runtime = await open_runtime(config, store=MemoryStore() if fresh else None)
    failed = False
    try:
        for scheduled in runtime.sources:
            try:
                report = await poll_and_observe(scheduled, dry_run=True)
            except NotifierError:
                failed = True
                continue
            for event in report.events:
                sys.stdout.buffer.write(_event_line(event.attributes(), event.data))
    finally:
        await runtime.close()
    return EXIT_FAILED if failed else EXIT_OK


def _event_line(attributes: dict[str, str], data: bytes) -> bytes:
    return orjson.dumps({**attributes, "data": orjson.loads(data)}) + b"\n"


def _run(args: argparse.Namespace) -> int:
    # Until the event loop takes SIGTERM over, it stops start-up the way Ctrl-C does (exit 0):
    # nothing is in flight yet, and Kubernetes may well stop a pod that has barely started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = _load(args.config)
    _shard()  # a misconfigured shard is a configuration error, before anything starts
    return asyncio.run(_serve(config))


def _shard() -> tuple[int, int] | None:
    """This replica's (ordinal, count) from the StatefulSet's environment, if sharded."""
    try:
        return shard_from_env(os.environ)
    except ValueError as exc:
        raise ConfigError(f"sharding: {exc}") from None


async def _serve(config: Config) -> int:
    from aiohttp import web

    runtime = await open_runtime(config, shard=_shard())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = health_app(alive=runtime.alive, ready=lambda: _ready(runtime))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.server.host, config.server.port).start()
    routes = ingest_routes(runtime)
    server = config.server
    ingest = (
        await start_ingest_server(routes, host=server.ingest_host, port=server.ingest_port)
        if routes
        else None
    )
    log.info(
        "service_started",
        sources=len(runtime.sources),
        sinks=len(runtime.sinks),
        port=config.server.port,
    )
    try:
        await run_service(runtime, stop)
    finally:
        if ingest is not None:
            await ingest.cleanup()
        await runner.cleanup()
        await runtime.close()
        log.info("service_stopped")
    return EXIT_OK


async def _ready(runtime: Runtime) -> dict[str, bool]:
    checks = {"config": True, "store": True}
    try:
        await runtime.store.pending_count()
    except NotifierError:
        checks["store"] = False
    for sink in runtime.sinks:
        ping = getattr(sink, "ping", None)
        if ping is not None:
            checks[sink.name] = bool(await ping())
    return checks


def _schema(args: argparse.Namespace) -> int:
    from notifier.schema import asyncapi_document, config_schema, event_schemas

    if args.asyncapi:
        document = asyncapi_document()
    elif args.config:
        document = config_schema()
    else:
        document = event_schemas()
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"notifier.simulators.{args.provider}")
    runner = getattr(module, f"run_{args.provider}_simulator")
    asyncio.run(runner(args.port, tickets=args.tickets))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from notifier.demo import run_demo

    return asyncio.run(run_demo(duration=args.duration, tickets=args.tickets))


def _deliveries(args: argparse.Namespace) -> int:
    config = _load(args.config)
    return asyncio.run(_list_deliveries(config, failed=args.failed, endpoint=args.endpoint))


async def _list_deliveries(config: Config, *, failed: bool, endpoint: str | None) -> int:
    from notifier.store.sqlite import SqliteStore

    store = await SqliteStore(config.state.path).open()
    try:
        sink = webhook_sink_name(endpoint) if endpoint else None
        statuses = (
            [DeliveryStatus.PARKED] if failed else [DeliveryStatus.PENDING, DeliveryStatus.PARKED]
        )
        rows = [d for s in statuses for d in await store.deliveries(sink=sink, status=s)]
        disabled = await store.disabled_sinks()
    finally:
        await store.close()
    print(f"{'STATUS':8} {'SINK':24} {'ATTEMPTS':>8} {'TYPE':28} {'EVENT ID':32} LAST ERROR")
    for d in sorted(rows, key=lambda row: row.position):
        print(
            f"{d.status.value:8} {d.sink:24} {d.attempts:>8} {d.event.type:28} "
            f"{d.event.id:32} {d.last_error or ''}"
        )
    for name, reason in disabled.items():
        print(f"disabled: {name}: {reason}")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    config = _load(args.config)
    names = {endpoint.name for _, endpoint in config.endpoints()}
    if args.endpoint not in names:
        raise ConfigError(
            f"{args.config}: no webhook endpoint named {args.endpoint!r} "
            f"(known: {', '.join(sorted(names)) or 'none'})"
        )
    return asyncio.run(_requeue(config, args))


async def _requeue(config: Config, args: argparse.Namespace) -> int:
    from notifier.store.sqlite import SqliteStore

    store = await SqliteStore(config.state.path).open()
    sink = webhook_sink_name(args.endpoint)
    try:
        since = args.since.timestamp() if args.since else None
        count = await store.requeue(sink, since=since, event_id=args.event_id)
        if args.enable:
            await store.enable_sink(sink)
    finally:
        await store.close()
    print(f"re-queued {count} deliveries for {args.endpoint}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
