"""Loopback stacks for the reliability scenarios: the Shotgun simulator and verifying webhook
receivers served in the test process, a config file pointing at them and at a broker, and
``notifier run`` as a real subprocess that can be SIGKILLed and restarted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import secrets
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from notifier.dev.broker import free_port
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from tests.reliability.ground_truth import GroundTruth

ORGANIZER_ID = 173027
SOURCE = "shotgun-main"
PARTITIONS = 4

CONFIG = """\
state:
  path: {state}
server:
  host: 127.0.0.1
  port: {port}
kafka:
  bootstrap_servers: ["{bootstrap}"]
  topic: {topic}
webhooks:
{webhooks}
defaults:
  poll_interval: {poll_interval}
organizers:
  - id: fabric
    name: Fabric
    sources:
      - id: {source}
        provider: shotgun
        organizer_id: {organizer}
        token: ${{SHOTGUN_TOKEN}}
        base_url: {shotgun_url}
        allow_insecure_http: true
        requests_per_minute: 100000
"""
WEBHOOK = """\
  - name: {name}
    url: {url}
    allow_insecure_http: true
    secret: ${{{env}}}
    timeout: {timeout}
    retry_schedule: [{schedule}]
{events}"""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One webhook endpoint of a stack: its name, event filter, timeout and retry schedule."""

    name: str
    events: tuple[str, ...] = ()
    timeout: str = "2s"
    schedule: tuple[str, ...] = ("0s", "200ms", "500ms", "1s", "1s", "1s", "1s", "1s")


@dataclass
class Stack:
    """Simulator + receivers + config file; ``secrets`` must never show up in any log."""

    sim: ShotgunSimulator
    sim_runner: web.AppRunner
    receivers: dict[str, Receiver]
    endpoints: dict[str, EndpointSpec]
    config: Path
    state: Path
    env: dict[str, str]
    port: int
    topic: str
    bootstrap: str
    tickets: list[int]
    log_dir: Path
    logs: list[Path] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        return list(self.env.values())

    async def close(self) -> None:
        for receiver in self.receivers.values():
            await receiver.stop()
        await self.sim_runner.cleanup()


async def start_stack(
    tmp_path: Path,
    *,
    bootstrap: str,
    topic: str,
    endpoints: Sequence[EndpointSpec] = (EndpointSpec("doors"),),
    poll_interval: str = "200ms",
    seed_tickets: int = 40,
    rng_seed: int = 1,
) -> Stack:
    sim = ShotgunSimulator()
    token = "sg." + secrets.token_urlsafe(24)
    tickets = sim.seed(ORGANIZER_ID, token, seed_tickets, rng_seed=rng_seed)
    sim_runner = await serve(sim)
    host, sim_port = sim_runner.addresses[0][:2]
    env = {"SHOTGUN_TOKEN": token}
    receivers: dict[str, Receiver] = {}
    blocks = []
    for spec in endpoints:
        secret = new_secret()
        variable = f"{spec.name.upper().replace('-', '_')}_SECRET"
        env[variable] = secret
        receiver = Receiver(secret)
        url = await receiver.start()
        receivers[spec.name] = receiver
        events = f"    events: [{', '.join(repr(e) for e in spec.events)}]\n" if spec.events else ""
        blocks.append(
            WEBHOOK.format(
                name=spec.name,
                url=url,
                env=variable,
                timeout=spec.timeout,
                schedule=", ".join(spec.schedule),
                events=events,
            )
        )
    port = free_port()
    state = tmp_path / "state.db"
    config = tmp_path / "notifier.yaml"
    config.write_text(
        CONFIG.format(
            state=state,
            port=port,
            bootstrap=bootstrap,
            topic=topic,
            webhooks="".join(blocks),
            poll_interval=poll_interval,
            source=SOURCE,
            organizer=ORGANIZER_ID,
            shotgun_url=f"http://{host}:{sim_port}",
        )
    )
    log_dir = tmp_path / "logs"
    log_dir.mkdir(exist_ok=True)
    return Stack(
        sim=sim,
        sim_runner=sim_runner,
        receivers=receivers,
        endpoints={spec.name: spec for spec in endpoints},
        config=config,
        state=state,
        env=env,
        port=port,
        topic=topic,
        bootstrap=bootstrap,
        tickets=tickets,
        log_dir=log_dir,
    )


class Service:
    """One ``notifier run -c FILE`` subprocess, its JSON log going to a file of the stack."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.process: asyncio.subprocess.Process | None = None
        self.log: Path | None = None

    async def start(self) -> asyncio.subprocess.Process:
        stack = self._stack
        self.log = stack.log_dir / f"run-{len(stack.logs):05d}.log"
        stack.logs.append(self.log)
        with self.log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "notifier.cli",
                "--log-json",
                "run",
                "-c",
                str(stack.config),
                env={**os.environ, **stack.env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        return self.process

    def logged(self, marker: str) -> bool:
        return self.log is not None and marker.encode() in self.log.read_bytes()

    async def started(self, within: float = 30.0) -> None:
        """Wait until the service logged ``service_started`` (its store and sinks are open)."""
        await until(lambda: self._alive_and_logged("service_started"), within=within, step=0.02)

    async def _alive_and_logged(self, marker: str) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"the service exited {self.process.returncode}: {self.tail()}")
        return self.logged(marker)

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self, within: float = 30.0) -> int:
        """SIGTERM (drain and exit 0), SIGKILL if it does not exit in time."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            await self.kill()
            raise

    def tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return "<no log>"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


async def until(
    condition: Callable[[], Awaitable[bool]], *, within: float, step: float = 0.1
) -> None:
    """Re-check ``condition`` until it holds; TimeoutError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


def _query(state: Path, sql: str) -> int:
    if not state.exists():
        return 0
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        db.close()


def has_baseline(state: Path) -> bool:
    return _query(state, "SELECT count(*) FROM sources") > 0


def outstanding(state: Path) -> int:
    """Deliveries not yet acknowledged (pending), read straight from the state file."""
    return _query(state, "SELECT count(*) FROM deliveries WHERE status = 'pending'")


def parked(state: Path) -> int:
    return _query(state, "SELECT count(*) FROM deliveries WHERE status = 'parked'")


async def metric(port: int, name: str) -> float | None:
    """One unlabelled sample from the service's ``/metrics``; None if unreachable."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=2)
            ) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Driver:
    """Makes ticket changes on the simulator and records each expected event.

    Every ticket changes each tracked field at most once (issued -> checked_in ->
    refunded | canceled), so however polls interleave with the changes (several changes
    between two polls, a crash between them), the expected events are exactly these, in
    this order: the diff walks check-in before status.
    """

    def __init__(
        self, sim: ShotgunSimulator, tickets: Iterable[int], *, rng: random.Random
    ) -> None:
        self.sim = sim
        self.truth = GroundTruth()
        self.rng = rng
        self.ops = 0
        self._events = sorted({sim.ticket(t)["event_id"] for t in tickets})
        self._unscanned = [
            t
            for t in tickets
            if sim.ticket(t)["ticket_status"] == "valid"
            and sim.ticket(t)["ticket_scanned_at"] is None
        ]
        self._open = [t for t in tickets if sim.ticket(t)["ticket_status"] == "valid"]

    def step(self) -> None:
        """One random change: a new ticket, a scan, a refund or a cancellation."""
        roll = self.rng.random()
        self.ops += 1
        if roll < 0.3 or not self._open:
            ticket = self.sim.create_ticket(self.rng.choice(self._events))
            self.truth.record(ticket, "ticket.issued")
            self._unscanned.append(ticket)
            self._open.append(ticket)
        elif roll < 0.7 and self._unscanned:
            ticket = self._unscanned.pop(self.rng.randrange(len(self._unscanned)))
            self.sim.scan(ticket)
            self.truth.record(ticket, "ticket.checked_in")
        else:
            ticket = self._open.pop(self.rng.randrange(len(self._open)))
            if ticket in self._unscanned:
                self._unscanned.remove(ticket)
            if self.rng.random() < 0.5:
                self.sim.refund(ticket)
                self.truth.record(ticket, "ticket.refunded")
            else:
                self.sim.cancel(ticket)
                self.truth.record(ticket, "ticket.canceled")

    async def run(self, stop: asyncio.Event, *, every: float = 0.05) -> None:
        """Keep changing tickets, one every ``every`` seconds (on average), until ``stop``."""
        while not stop.is_set():
            self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0, 2 * every))


def webhook_has_all(receiver: Receiver, truth: GroundTruth, only: set[str] | None) -> bool:
    got = {(str(e["subject"]), str(e["type"])) for e in receiver.events}
    want = {(t, ty) for t, ty in truth.pairs() if only is None or ty in only}
    return want <= got


def assert_no_secrets(texts: Iterable[tuple[str, str]], secrets_: Iterable[str]) -> int:
    """No secret appears in any text (name, text); returns how many texts were scanned."""
    values = [s for s in secrets_ if s]
    count = 0
    for name, text in texts:
        count += 1
        for value in values:
            assert value not in text, f"a secret leaked into {name}"
            # the base64 key of a whsec_ secret is what signs; it must not leak either
            if value.startswith("whsec_"):
                assert value[len("whsec_") :] not in text, f"a webhook key leaked into {name}"
    return count


def log_texts(paths: Iterable[Path]) -> list[tuple[str, str]]:
    return [(path.name, path.read_text(errors="replace")) for path in paths if path.exists()]
