"""The local tools a newcomer tries first, each run as a real ``notifier`` subprocess on
127.0.0.1: ``simulate`` (fixed token, door traffic), ``dev broker`` and ``dev receiver``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks import Webhook

from notifier.dev.broker import free_port
from tests.integration.pipeline import new_secret

SHOTGUN_ORGANIZER = 173027  # the organizer `notifier simulate shotgun` seeds


class Child:
    """A running ``notifier`` subprocess whose output is read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def line_matching(self, pattern: str, *, within: float = 20.0) -> re.Match[str]:
        """The first output line (read so far or next) matching ``pattern``."""
        for line in self.lines:
            if found := re.search(pattern, line):
                return found
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"exited before {pattern!r}: {self.lines}")
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if found := re.search(pattern, line):
                    return found

    async def lines_matching(self, pattern: str, count: int) -> list[str]:
        """The first ``count`` output lines matching ``pattern``, reading more as needed."""
        assert self.process.stdout is not None
        async with asyncio.timeout(20):
            while len(found := [x for x in self.lines if re.search(pattern, x)]) < count:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"exited before {count} x {pattern!r}: {self.lines}")
                self.lines.append(raw.decode().rstrip("\n"))
        return found[:count]

    async def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and the rest of its output."""
        self.process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(self.process.communicate(), timeout=20)
        assert self.process.returncode is not None
        return self.process.returncode, "\n".join(self.lines) + "\n" + rest.decode()


@contextlib.asynccontextmanager
async def notifier(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Child]:
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier", "--no-log-json", *args],
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield Child(process)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), timeout=10)


async def _tickets_status(base_url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{base_url}/tickets",
            params={"organizer_id": str(SHOTGUN_ORGANIZER)},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        return response.status


async def test_simulate_accepts_the_given_token_only_and_never_prints_it() -> None:
    """--token fixes the credential: it is accepted, another is refused, and not shown."""
    token = "fixed." + secrets.token_urlsafe(12)
    port = free_port()
    async with notifier("simulate", "shotgun", "--port", str(port), "--token", token) as child:
        url = (await child.line_matching(r"simulator on (http://\S+)")).group(1)
        assert url == f"http://127.0.0.1:{port}"
        await child.line_matching(r"base_url: ")
        assert await _tickets_status(url, token) == 200
        assert await _tickets_status(url, token + "x") == 401
        code, output = await child.stop()
    assert code == 0
    assert token not in output
    assert "${NOTIFIER_SIMULATOR_TOKEN}" in output  # the printed source reads it from there


async def test_simulate_reads_the_token_from_the_environment() -> None:
    """NOTIFIER_SIMULATOR_TOKEN is the default token; a generated one is printed instead."""
    token = "env." + secrets.token_urlsafe(12)
    env = {"NOTIFIER_SIMULATOR_TOKEN": token}
    async with notifier("simulate", "shotgun", "--port", "0", env=env) as child:
        url = (await child.line_matching(r"simulator on (http://\S+)")).group(1)
        assert await _tickets_status(url, token) == 200
        _, output = await child.stop()
    assert token not in output

    without = {**os.environ}
    without.pop("NOTIFIER_SIMULATOR_TOKEN", None)
    async with notifier("simulate", "shotgun", "--port", "0", env=without) as child:
        url = (await child.line_matching(r"simulator on (http://\S+)")).group(1)
        generated = (await child.line_matching(r"^token: (\S+) \(generated")).group(1)
        assert await _tickets_status(url, generated) == 200
        await child.stop()


CONFIG = """\
state:
  path: state.db
organizers:
  - id: fabric
    name: Fabric
    sources:
      - id: shotgun-main
        provider: shotgun
        organizer_id: {organizer}
        token: ${{NOTIFIER_SIMULATOR_TOKEN}}
        base_url: {url}
        allow_insecure_http: true
"""


async def _once(config: Path, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier", "once", "-c", str(config)],
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def _committed(output: str) -> int:
    found = re.search(r"once: (\d+) events committed", output)
    assert found is not None, output
    return int(found.group(1))


async def test_activity_plays_door_traffic_that_notifier_once_sees(tmp_path: Path) -> None:
    """With --activity the simulator changes by itself: a second `once` commits events."""
    env = {"NOTIFIER_SIMULATOR_TOKEN": "door." + secrets.token_urlsafe(12)}
    args = ["simulate", "shotgun", "--port", "0", "--tickets", "30", "--seed", "7"]
    async with notifier(*args, "--activity", "1200", env=env) as child:
        url = (await child.line_matching(r"simulator on (http://\S+)")).group(1)
        config = tmp_path / "notifier.yaml"
        config.write_text(CONFIG.format(organizer=SHOTGUN_ORGANIZER, url=url))
        code, output = await _once(config, env)  # the baseline: nothing to report yet
        assert code == 0, output
        assert _committed(output) == 0
        # 20 actions a second: a few change tickets before the next poll.
        await child.line_matching(r"> shotgun (scans|undoes|refunds|transfers|resells|cancels)")
        await asyncio.sleep(1.0)
        code, output = await _once(config, env)
        assert code == 0, output
        assert _committed(output) > 0
        await child.stop()


async def test_the_same_seed_plays_the_same_traffic() -> None:
    """--seed makes the door traffic repeatable, action by action."""

    async def first_actions(seed: str) -> list[str]:
        args = ["simulate", "eventpop", "--port", "0", "--tickets", "20", "--seed", seed]
        async with notifier(*args, "--activity", "3000", env={}) as child:
            actions = await child.lines_matching(r"^  > ", 6)
            await child.stop()
        return actions

    assert await first_actions("11") == await first_actions("11")


def test_a_negative_activity_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from notifier.cli import main

    assert main(["simulate", "shotgun", "--activity", "-1"]) == 1
    assert "--activity" in capsys.readouterr().err


async def test_dev_broker_serves_a_kafka_client_until_sigterm() -> None:
    """`notifier dev broker` prints its bootstrap address; a real Kafka client round-trips a
    record through it; SIGTERM stops it with exit 0 and the port closes."""
    port = free_port()
    async with notifier("dev", "broker", "--port", str(port)) as child:
        bootstrap = (await child.line_matching(r"kafka broker on (\S+)")).group(1)
        assert bootstrap == f"127.0.0.1:{port}"
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await asyncio.wait_for(producer.send_and_wait("dev-check", b"hello"), timeout=20)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "dev-check", bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=20)
        finally:
            await consumer.stop()
        assert record.value == b"hello"
        code, _ = await child.stop()
    assert code == 0
    assert not await _listening(port)


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def test_python_m_notifier_broker_is_the_dev_broker() -> None:
    """`python -m notifier.dev.broker` does the job of `notifier dev broker`, not nothing."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier.dev.broker", "--help"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    assert "usage: notifier dev broker" in output.decode()


def _signed(secret: str, payload: bytes, *, msg_id: str) -> dict[str, str]:
    moment = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, moment, payload),
        "content-type": "application/json",
    }


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status


async def test_dev_receiver_verifies_signatures_and_prints_events() -> None:
    """A correctly signed delivery is answered 200 and printed; a bad signature gets 401 and
    is not printed; the secret never appears in the output."""
    secret = new_secret()
    port = free_port()
    env = {"NOTIFIER_WEBHOOK_SECRET": secret}
    async with notifier("dev", "receiver", "--port", str(port), env=env) as child:
        url = (await child.line_matching(r"receiver on (http://\S+)")).group(1)
        event = {"id": "evt_1", "type": "ticket.checked_in", "data": {"ticket_id": "T1"}}
        body = orjson.dumps(event)
        assert await _post(url, body, _signed(secret, body, msg_id="evt_1")) == 200
        printed = (await child.line_matching(r'^(\{.*"evt_1".*)$')).group(1)
        assert orjson.loads(printed) == event
        forged = _signed(new_secret(), body, msg_id="evt_2")
        assert await _post(url, body, forged) == 401
        await child.line_matching(r"refused evt_2: bad signature \(answered 401\)")
        code, output = await child.stop()
    assert code == 0
    assert secret not in output
    assert output.count('"evt_') == 1  # the forged one was not printed as an event


async def test_dev_receiver_takes_the_secret_option_and_refuses_a_malformed_one() -> None:
    """--secret works like the variable; a secret that is not whsec_+base64 is exit 1."""
    secret = new_secret()
    async with notifier("dev", "receiver", "--port", "0", "--secret", secret, env={}) as child:
        url = (await child.line_matching(r"receiver on (http://\S+)")).group(1)
        body = b'{"id": "evt_9"}'
        assert await _post(url, body, _signed(secret, body, msg_id="evt_9")) == 200
        await child.stop()
    async with notifier("dev", "receiver", "--secret", "not-a-secret", env={}) as child:
        output, _ = await asyncio.wait_for(child.process.communicate(), timeout=20)
    assert child.process.returncode == 1
    assert "--secret: must start with 'whsec_'" in output.decode()
    assert "Traceback" not in output.decode()


def _every_action(parser: object) -> Sequence[tuple[str, object]]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    found: list[tuple[str, object]] = [(parser.prog, parser)]
    for action in parser._actions:
        found.append((parser.prog, action))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_every_action(sub))
    return found


def test_every_option_is_explained_in_plain_text() -> None:
    """Every option of every command (-c included) has a help text, none with RST markup."""
    import argparse

    from notifier.cli import _parser

    for prog, item in _every_action(_parser()):
        if isinstance(item, argparse.ArgumentParser):
            assert "``" not in (item.description or ""), prog
            continue
        assert isinstance(item, argparse.Action)
        if isinstance(item, argparse._SubParsersAction):
            continue
        assert item.help, f"{prog} {item.option_strings or item.dest} has no help"
        assert "``" not in item.help, f"{prog} {item.option_strings}"


async def test_dev_broker_on_a_taken_port_says_so() -> None:
    """A port already in use is exit 1 with the reason, not a silent broker that never starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with notifier("dev", "broker", "--port", str(port)) as child:
            output, _ = await asyncio.wait_for(child.process.communicate(), timeout=20)
    assert child.process.returncode == 1
    assert f"--port {port}: cannot listen: Address already in use" in output.decode()
