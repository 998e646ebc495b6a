"""The ``notifier`` command as an operator runs it: a real subprocess for ``run``, and
``main()`` in-process for the short-lived verbs."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest

from notifier.cli import main
from notifier.dev.broker import EmbeddedBroker, free_port
from notifier.dev.receiver import Receiver, Scripted
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from tests.integration.pipeline import ORGANIZER_ID, create_topic, new_secret

CONFIG = """\
state:
  path: state.db
server:
  host: 127.0.0.1
  port: {port}
kafka:
  bootstrap_servers: ["{bootstrap}"]
  topic: {topic}
webhooks:
  - name: doors
    url: {webhook_url}
    allow_insecure_http: true
    secret: ${{DOORS_SECRET}}
    retry_schedule: [0s]
defaults:
  poll_interval: 1s
organizers:
  - id: fabric
    name: Fabric
    sources:
      - id: shotgun-main
        provider: shotgun
        organizer_id: {organizer}
        token: ${{SHOTGUN_TOKEN}}
        base_url: {shotgun_url}
        allow_insecure_http: true
"""


@dataclass
class Setup:
    sim: ShotgunSimulator
    receiver: Receiver
    config: Path
    env: dict[str, str]
    port: int
    tickets: list[int]


@pytest.fixture
async def setup(
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Setup]:
    """A simulator and a receiver on loopback, and a config file that points at them."""
    sim = ShotgunSimulator()
    token = "cli." + secrets.token_urlsafe(16)
    tickets = sim.seed(ORGANIZER_ID, token, 20, rng_seed=3)
    runner = await serve(sim)
    host, sim_port = runner.addresses[0][:2]
    secret = new_secret()
    receiver = Receiver(secret)
    webhook_url = await receiver.start()
    topic = unique_topic("cli")
    create_topic(kafka_broker.bootstrap, topic)
    port = free_port()
    config = tmp_path / "notifier.yaml"
    config.write_text(
        CONFIG.format(
            port=port,
            bootstrap=kafka_broker.bootstrap,
            topic=topic,
            webhook_url=webhook_url,
            organizer=ORGANIZER_ID,
            shotgun_url=f"http://{host}:{sim_port}",
        )
    )
    env = {"SHOTGUN_TOKEN": token, "DOORS_SECRET": secret}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield Setup(sim, receiver, config, env, port, tickets)
    await receiver.stop()
    await runner.cleanup()


def _first_valid(setup: Setup) -> int:
    return next(
        t
        for t in setup.tickets
        if setup.sim.ticket(t)["ticket_status"] == "valid"
        and setup.sim.ticket(t)["ticket_scanned_at"] is None
    )


async def _ready(port: int, *, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the service never became ready")


async def test_run_serves_probes_delivers_and_stops_cleanly_on_sigterm(setup: Setup) -> None:
    """`notifier run` becomes ready, delivers a scan live, and exits 0 on SIGTERM;
    its JSON logs never contain the token or the webhook secret."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier.cli", "run", "-c", str(setup.config)],
        env={**os.environ, **setup.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await _ready(setup.port, within=20)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{setup.port}/metrics") as response,
        ):
            metrics = await response.text()
        assert "notifier_polls_total" in metrics
        await _wait_for_baseline(setup.config.parent / "state.db")
        setup.sim.scan(_first_valid(setup))
        (event,) = await setup.receiver.wait_for(1, timeout=20)
        assert event["type"] == "ticket.checked_in"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    text = output.decode()
    assert setup.env["SHOTGUN_TOKEN"] not in text
    assert setup.env["DOORS_SECRET"] not in text
    events = [orjson.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert "service_started" in events
    assert "service_stopped" in events


# Runs `notifier run` with a start-up that is stopped midway by a real SIGTERM; in a child
# process, so that a regression kills the child and not the test runner.
STOPPED_WHILE_STARTING = """
import asyncio, os, signal, sys
import notifier.cli
import notifier.service

async def stopped_while_opening(*_, **__):
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(30)  # the signal interrupts this long before it ends
    raise AssertionError("SIGTERM did not stop the start-up")

notifier.service.open_runtime = stopped_while_opening
sys.exit(notifier.cli.main(["--log-json", "run", "-c", sys.argv[1]]))
"""


async def test_sigterm_during_start_up_exits_cleanly(setup: Setup) -> None:
    """A pod stopped while it is still starting (before the event loop owns SIGTERM) exits 0."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-c", STOPPED_WHILE_STARTING, str(setup.config)],
        env={**os.environ, **setup.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode()


def _has_baseline(state: Path) -> bool:
    """The first commit has happened once the source has a cursor row."""
    if not state.exists():
        return False
    with sqlite3.connect(state) as db:
        try:
            return bool(db.execute("SELECT count(*) FROM sources").fetchone()[0])
        except sqlite3.OperationalError:  # the service has not created its tables yet
            return False


async def _wait_for_baseline(state: Path) -> None:
    deadline = time.monotonic() + 20
    while not await asyncio.to_thread(_has_baseline, state):
        if time.monotonic() > deadline:
            raise TimeoutError("no baseline commit")
        await asyncio.sleep(0.1)


def test_validate_reports_a_missing_variable_and_exits_1(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing environment variable names the file and the path, and refuses."""
    monkeypatch.delenv("SHOTGUN_TOKEN")
    assert main(["validate", "-c", str(setup.config)]) == 1
    err = capsys.readouterr().err
    assert str(setup.config) in err
    assert "organizers[0].sources[0].token" in err
    assert "SHOTGUN_TOKEN" in err


def test_validate_accepts_a_good_file(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid file is reported ok with its counts."""
    assert main(["validate", "-c", str(setup.config)]) == 0
    assert "ok (1 sources, 1 webhook endpoints)" in capsys.readouterr().out


async def test_once_exit_codes_follow_the_delivery_outcome(setup: Setup) -> None:
    """0 when all is delivered, 2 while a delivery is parked, 0 again after a replay."""
    assert await asyncio.to_thread(main, ["once", "-c", str(setup.config)]) == 0
    setup.receiver.responses.append(Scripted(status=500))
    setup.sim.scan(_first_valid(setup))
    assert await asyncio.to_thread(main, ["once", "-c", str(setup.config)]) == 2

    config = str(setup.config)
    assert await asyncio.to_thread(main, ["replay", "-c", config, "--endpoint", "doors"]) == 0
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 0
    assert [e["type"] for e in setup.receiver.events] == ["ticket.checked_in"]


async def test_deliveries_lists_parked_ones(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deliveries --failed` shows a parked delivery with its sink, type and error."""
    config = str(setup.config)
    await asyncio.to_thread(main, ["once", "-c", config])
    setup.receiver.responses.append(Scripted(status=500))
    setup.sim.scan(_first_valid(setup))
    await asyncio.to_thread(main, ["once", "-c", config])
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["deliveries", "-c", config, "--failed"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "parked" in line]
    assert "webhook:doors" in row
    assert "ticket.checked_in" in row
    assert "500" in row


async def test_dry_run_prints_events_and_commits_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints the would-be events and leaves state and outbox untouched."""
    config = str(setup.config)
    await asyncio.to_thread(main, ["once", "-c", config])
    setup.sim.scan(_first_valid(setup))
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["once", "-c", config, "--dry-run"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert orjson.loads(line)["type"] == "ticket.checked_in"
    assert setup.receiver.events == []
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 0
    assert [e["type"] for e in setup.receiver.events] == ["ticket.checked_in"]


def test_schema_prints_every_event_type(capsys: pytest.CaptureFixture[str]) -> None:
    """`notifier schema` covers the whole catalogue; --asyncapi is an AsyncAPI 3 document."""
    assert main(["schema"]) == 0
    schemas = orjson.loads(capsys.readouterr().out)
    assert "ticket.checked_in" in schemas["discriminator"]["mapping"]
    assert "ticket_type.sold_out" in schemas["discriminator"]["mapping"]
    assert main(["schema", "--asyncapi"]) == 0
    assert orjson.loads(capsys.readouterr().out)["asyncapi"].startswith("3.")


@pytest.mark.parametrize("provider", ["eventpop", "nuweb", "shotgun", "tickettailor"])
async def test_simulate_serves_each_provider(provider: str) -> None:
    """`notifier simulate NAME` announces where it serves, and answers there."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier.cli", "simulate", provider, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert f"{provider} simulator on http://127.0.0.1:{port}" in banner.decode()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            assert response.status in (401, 404)  # up, and refusing an anonymous request
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=15)


async def test_a_dry_run_on_a_fresh_config_creates_no_state_file(setup: Setup) -> None:
    """--dry-run writes nothing, not even an empty state database."""
    state = setup.config.parent / "state.db"
    command = ["once", "-c", str(setup.config), "--dry-run"]
    assert await asyncio.to_thread(main, command) == 0
    assert not state.exists()


async def _park_one(setup: Setup) -> str:
    """A baseline, then one scan whose delivery the receiver refuses: parked (schedule [0s])."""
    config = str(setup.config)
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 0
    setup.receiver.responses.append(Scripted(status=500))
    setup.sim.scan(_first_valid(setup))
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 2
    return config


async def test_once_ends_with_a_summary_line_whatever_its_exit_code(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last line says what was committed and what each sink still owes."""
    config = str(setup.config)
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "once: 0 events committed; kafka: 0 pending, 0 parked; "
        "webhook:doors: 0 pending, 0 parked (exit 0)"
    )
    setup.receiver.responses.append(Scripted(status=500))
    setup.sim.scan(_first_valid(setup))
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 2
    assert capsys.readouterr().out.splitlines()[-1] == (
        "once: 1 events committed; kafka: 0 pending, 0 parked; "
        "webhook:doors: 0 pending, 1 parked (exit 2)"
    )


async def test_once_summary_counts_a_failed_source(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A source that cannot be read is exit 1, and the summary line still comes."""
    monkeypatch.setenv("SHOTGUN_TOKEN", "not-the-token")
    assert await asyncio.to_thread(main, ["once", "-c", str(setup.config)]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("once: 0 events committed, 1 sources failed; ")
    assert last.endswith("(exit 1)")


@pytest.mark.parametrize("name", ["doors", "webhook:doors"])
async def test_deliveries_and_replay_take_both_names_of_an_endpoint(
    setup: Setup, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config's name and the SINK column's name select the same sink, in both commands."""
    config = await _park_one(setup)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["deliveries", "-c", config, "--endpoint", name]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "parked" in line]
    assert "webhook:doors" in row
    assert await asyncio.to_thread(main, ["replay", "-c", config, "--endpoint", name]) == 0
    assert "re-queued 1 deliveries for webhook:doors" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 0
    assert [e["type"] for e in setup.receiver.events] == ["ticket.checked_in"]


@pytest.mark.parametrize("command", ["deliveries", "replay"])
async def test_an_unknown_sink_name_is_refused_with_the_known_ones(
    setup: Setup, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo is exit 1 naming every accepted name, never an empty table."""
    argv = [command, "-c", str(setup.config), "--endpoint", "dors"]
    assert await asyncio.to_thread(main, argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no sink named 'dors' (known: doors, kafka, webhook:doors)" in captured.err


async def test_deliveries_shows_when_a_pending_delivery_is_next_tried(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """A delivery waiting on its retry schedule shows its next attempt time (UTC)."""
    config = str(setup.config)
    setup.config.write_text(
        setup.config.read_text().replace("retry_schedule: [0s]", "retry_schedule: [0s, 1h]")
    )
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 0
    setup.receiver.responses.append(Scripted(status=500))
    setup.sim.scan(_first_valid(setup))
    before = time.time()
    assert await asyncio.to_thread(main, ["once", "-c", config]) == 2
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["deliveries", "-c", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "NEXT ATTEMPT" in lines[0]
    (row,) = [line for line in lines if line.startswith("pending")]
    found = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row)
    assert found is not None, row
    moment = datetime.strptime(found.group(0), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    # 1 h with the schedule's ±20 % jitter, printed to the second
    assert before + 0.8 * 3600 - 1 <= moment.timestamp() <= time.time() + 1.2 * 3600


def _with_state(setup: Setup, state: str) -> None:
    setup.config.write_text(setup.config.read_text().replace("path: state.db", f"path: {state}"))


UNUSABLE_STATES = {
    "under /proc": ("/proc/x/state.db", "/proc does not accept new files"),
    "under a file": ("{tmp}/file/state.db", "{tmp}/file is not a directory"),
    "a directory": ("{tmp}", "{tmp} is a directory"),
}


@pytest.fixture(params=sorted(UNUSABLE_STATES))
def unusable_state(request: pytest.FixtureRequest, setup: Setup) -> str:
    """The config now points state.path somewhere unusable; returns the expected reason."""
    tmp = setup.config.parent
    (tmp / "file").write_text("a file, not a directory")
    path, reason = UNUSABLE_STATES[request.param]
    _with_state(setup, path.format(tmp=tmp))
    return reason.format(tmp=tmp)


def test_validate_refuses_an_unusable_state_path(
    setup: Setup, unusable_state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """exit 1, with the config file, the key and the reason on one line."""
    assert main(["validate", "-c", str(setup.config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"{setup.config}: state.path: ")
    assert unusable_state in line


async def test_once_refuses_an_unusable_state_path_in_one_line(
    setup: Setup, unusable_state: str
) -> None:
    """A real `notifier once`: exit 1, one line on stderr, no traceback, nothing polled."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier", "once", "-c", str(setup.config)],
        env={**os.environ, **setup.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    assert out == b""
    (line,) = err.decode().splitlines()
    assert unusable_state in line
    assert "state.path" in line
    assert setup.sim.requests_served == 0


async def test_run_refuses_an_unusable_state_path_in_one_line(
    setup: Setup, unusable_state: str
) -> None:
    """A real `notifier run` refuses before it starts: exit 1, one line, no traceback."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier", "run", "-c", str(setup.config)],
        env={**os.environ, **setup.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    assert out == b""
    (line,) = err.decode().splitlines()
    assert unusable_state in line
    assert f"{setup.config}: state.path: " in line


async def test_a_state_store_failure_at_start_is_one_line(setup: Setup) -> None:
    """A state file that passes the checks but is not a database: one line, exit 1."""
    (setup.config.parent / "state.db").write_bytes(b"not a sqlite database" * 100)
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier", "once", "-c", str(setup.config)],
        env={**os.environ, **setup.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    (line,) = err.decode().splitlines()
    assert line.startswith("notifier once: state store ")
    assert "Traceback" not in line


@pytest.mark.parametrize("command", [["deliveries"], ["replay", "--endpoint", "doors"]])
def test_reading_the_outbox_before_any_state_creates_none(
    setup: Setup, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the first commit there is nothing owed, and looking creates no database."""
    assert main([command[0], "-c", str(setup.config), *command[1:]]) == 0
    assert f"no state at {setup.config.parent / 'state.db'} yet" in capsys.readouterr().out
    assert not (setup.config.parent / "state.db").exists()
