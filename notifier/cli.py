"""The notifier command: run the service, check a config, inspect and replay deliveries,
and try everything locally (provider simulators, a Kafka broker, a webhook receiver, a demo).
Run "notifier COMMAND --help" for each command's options; docs/development.md shows the
local tools at work."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson
import structlog

from notifier import state_copy
from notifier.cli_outbox import add_outbox_commands
from notifier.config import load_config
from notifier.config.models import Config
from notifier.config.problems import Problem
from notifier.errors import ConfigError, NotifierError
from notifier.observability import configure_logging
from notifier.service import (
    Runtime,
    once_summary,
    open_runtime,
    poll_and_observe,
)
from notifier.store.location import state_path_problem

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 2
CONFIG_HELP = (
    "the YAML config file (relative paths in it, such as state.path, are read from its folder)"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(json=args.log_json)
    try:
        result: int = args.handler(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)  # it names the file, the key and the fix
        return EXIT_FAILED
    except NotifierError as exc:
        # Never a traceback: these are the failures the package raises on purpose (a state
        # store that cannot open, a broker that cannot start), each saying what went wrong.
        print(f"notifier {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log as JSON lines (--no-log-json: readable lines); default: JSON unless "
        "stderr is a terminal",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def config_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-c", "--config", type=Path, required=True, help=CONFIG_HELP)

    run = command(
        "run",
        _run,
        "run the service: poll every source on its schedule, deliver, serve /healthz, "
        "/readyz and /metrics; stops cleanly on SIGTERM or Ctrl-C",
    )
    config_option(run)
    once = command(
        "once",
        _once,
        "poll every source once, deliver what is due, print a summary line and exit: "
        "0 all delivered, 1 a source or the config failed, 2 deliveries still pending or parked",
    )
    config_option(once)
    once.add_argument(
        "--dry-run",
        action="store_true",
        help="print the events a poll would commit as JSON lines, write nothing "
        "(no state, no deliveries)",
    )
    validate = command(
        "validate",
        _validate,
        "check a config file: every field, the environment variables it uses, and that "
        "the state file can be created and written; exit 1 listing every problem",
    )
    config_option(validate)
    schema = command("schema", _schema, "print the JSON Schemas of the events (default)")
    kind = schema.add_mutually_exclusive_group()
    kind.add_argument(
        "--asyncapi", action="store_true", help="print an AsyncAPI 3 document instead"
    )
    kind.add_argument(
        "--config", action="store_true", help="print the config file's JSON Schema instead"
    )
    add_outbox_commands(command, config_option)
    _add_dev_commands(command)
    state_copy.register(commands)
    return parser


def _add_dev_commands(command: Callable[[str, object, str], argparse.ArgumentParser]) -> None:
    # The one import of the development package (notifier.dev) from the runtime: its
    # commands' arguments. What they run (simulators, broker, demo) is imported when one
    # runs, and says how to install the `demo` extra if it is missing.
    from notifier.dev.cli import add_dev_commands

    add_dev_commands(command)


def _load(path: Path) -> Config:
    return load_config(path, os.environ)


def _load_writable(path: Path) -> Config:
    """The config, refused like any invalid one if its state file cannot be used."""
    config = _load(path)
    problem = None if config.state.url else state_path_problem(config.state.path)
    if problem is not None:
        raise ConfigError(f"{path}: {Problem('state.path', problem)}")
    return config


def _validate(args: argparse.Namespace) -> int:
    config = _load_writable(args.config)
    sources = sum(1 for _ in config.sources())
    endpoints = sum(1 for _ in config.endpoints())
    print(f"{args.config}: ok ({sources} sources, {endpoints} webhook endpoints)")
    return EXIT_OK


def _once(args: argparse.Namespace) -> int:
    if args.dry_run:
        return asyncio.run(_dry_run(_load(args.config)))
    return asyncio.run(_with_runtime(_load_writable(args.config), _once_and_summarize))


async def _once_and_summarize(runtime: Runtime) -> int:
    summary = await once_summary(runtime)
    print(summary.line(), flush=True)
    return summary.exit_code


async def _with_runtime(config: Config, body: Callable[[Runtime], Awaitable[int]]) -> int:
    runtime = await open_runtime(config)
    try:
        return await body(runtime)
    finally:
        await runtime.close()


async def _dry_run(config: Config) -> int:
    """Poll against the stored state, print what would be committed, commit nothing."""
    from notifier.store.memory import MemoryStore

    # Then there is no state to read, nor to create.
    fresh = config.state.url is None and not config.state.path.exists()
    runtime = await open_runtime(config, store=MemoryStore() if fresh else None)
    failed = events = 0
    try:
        for scheduled in runtime.sources:
            try:
                report = await poll_and_observe(scheduled, dry_run=True)
            except NotifierError:
                failed += 1
                continue
            for event in report.events:
                events += 1
                sys.stdout.buffer.write(_event_line(event.attributes(), event.data))
    finally:
        await runtime.close()
    sys.stdout.flush()
    # On stderr: stdout stays pure JSON lines, for a pipe into jq.
    failures = f", {failed} sources failed" if failed else ""
    print(
        f"once --dry-run: {events} events would be committed{failures}; nothing written",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else EXIT_OK


def _event_line(attributes: dict[str, str], data: bytes) -> bytes:
    return orjson.dumps({**attributes, "data": orjson.loads(data)}) + b"\n"


def _run(args: argparse.Namespace) -> int:
    # Until the event loop takes SIGTERM over, it stops start-up the way Ctrl-C does (exit 0):
    # nothing is in flight yet, and Kubernetes may well stop a pod that has barely started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = _load_writable(args.config)
    return asyncio.run(_serve(config))


async def _serve(config: Config) -> int:
    from notifier.service import serve

    await serve(config)
    return EXIT_OK


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


if __name__ == "__main__":
    sys.exit(main())
