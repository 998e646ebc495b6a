"""Failure stays where it starts: one source fed a poisoned page under a real ``notifier run``
keeps failing on its own, with back-off, while the other source keeps producing events and
the process never exits. ``/readyz`` names the failing source and stays ready."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from notifier.dev.broker import free_port
from notifier.dev.receiver import Receiver
from notifier.dev.simulators.shotgun import ShotgunSimulator, serve
from tests.reliability.harness import Driver, assert_no_secrets, new_secret, until

POISON_NEXT = "https://host\\@evil.com/tickets?after=x"

CONFIG = """\
state:
  path: {state}
server:
  host: 127.0.0.1
  port: {port}
webhooks:
  - name: doors
    url: {webhook}
    secret: ${{DOORS_SECRET}}
    retry_schedule: [0s, 200ms, 500ms]
    allow_insecure_http: true
defaults:
  poll_interval: 200ms
organizers:
  - id: poisoned
    name: Poisoned
    sources:
      - id: sg-poisoned
        provider: shotgun
        organizer_id: 1001
        token: ${{POISONED_TOKEN}}
        base_url: {poisoned_url}
        allow_insecure_http: true
        requests_per_minute: 100000
  - id: healthy
    name: Healthy
    sources:
      - id: sg-healthy
        provider: shotgun
        organizer_id: 1002
        token: ${{HEALTHY_TOKEN}}
        base_url: {healthy_url}
        allow_insecure_http: true
        requests_per_minute: 100000
"""


async def _poisoning_proxy(upstream: str) -> web.AppRunner:
    """Forwards to a simulator and replaces every ``pagination.next`` with a link that
    ``yarl.URL`` refuses (a backslash in the authority): a ValueError before this fix."""

    async def handle(request: web.Request) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                upstream + request.path_qs,
                headers={"Authorization": request.headers.get("Authorization", "")},
            ) as answer,
        ):
            body = await answer.read()
            status = answer.status
        if status == 200:
            page = orjson.loads(body)
            if isinstance(page, dict) and (page.get("pagination") or {}).get("next"):
                page["pagination"]["next"] = POISON_NEXT
            body = orjson.dumps(page)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def _get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=5)
        ) as response,
    ):
        return response.status, json.loads(await response.text())


async def _metrics(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=5)
        ) as response,
    ):
        return await response.text()


@pytest.fixture
async def runners() -> AsyncIterator[list[web.AppRunner]]:
    started: list[web.AppRunner] = []
    yield started
    for runner in started:
        await runner.cleanup()


async def test_a_poisoned_page_stops_only_its_own_source(
    tmp_path: Path, runners: list[web.AppRunner]
) -> None:
    poisoned_sim = ShotgunSimulator(page_size=5)  # 20 tickets: page 1 has a next link
    poisoned_token = "sg." + secrets.token_urlsafe(24)
    poisoned_sim.seed(1001, poisoned_token, 20, rng_seed=3)
    healthy_sim = ShotgunSimulator()
    healthy_token = "sg." + secrets.token_urlsafe(24)
    tickets = healthy_sim.seed(1002, healthy_token, 20, rng_seed=4)
    runners.append(await serve(poisoned_sim))
    runners.append(await _poisoning_proxy(_url(runners[-1])))
    proxy_url = _url(runners[-1])
    runners.append(await serve(healthy_sim))
    healthy_url = _url(runners[-1])

    secret = new_secret()
    receiver = Receiver(secret)
    webhook = await receiver.start()
    port = free_port()
    config = tmp_path / "notifier.yaml"
    config.write_text(
        CONFIG.format(
            state=tmp_path / "state.db",
            port=port,
            webhook=webhook,
            poisoned_url=proxy_url,
            healthy_url=healthy_url,
        )
    )
    env = {"DOORS_SECRET": secret, "POISONED_TOKEN": poisoned_token, "HEALTHY_TOKEN": healthy_token}
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "notifier.cli",
            "--log-json",
            "run",
            "-c",
            str(config),
            env={**os.environ, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    driver = Driver(healthy_sim, tickets, rng=random.Random(5))

    def failures_of_poisoned() -> int:
        return sum(
            1
            for line in log_path.read_text(errors="replace").splitlines()
            if '"poll_failed"' in line and '"sg-poisoned"' in line
        )

    try:

        async def poisoned_failed_twice() -> bool:
            assert process.returncode is None, log_path.read_text()[-3000:]
            return failures_of_poisoned() >= 2

        await until(poisoned_failed_twice, within=60)
        # The healthy source's baseline is in; now its door traffic must keep flowing.
        for round_ in range(3):
            before = len(receiver.events)
            for _ in range(5):
                driver.step()

            async def delivered(count: int = before) -> bool:
                assert process.returncode is None, log_path.read_text()[-3000:]
                return len(receiver.events) >= count + 5

            await until(delivered, within=30)
            assert process.returncode is None, f"round {round_}: the service exited"

        async def poisoned_failed_again() -> bool:  # still failing, still retried, still alive
            assert process.returncode is None, log_path.read_text()[-3000:]
            return failures_of_poisoned() >= 4

        await until(poisoned_failed_again, within=60)

        status, ready = await _get_json(port, "/readyz")
        assert status == 200, ready  # one organizer's bad page never makes the pod unready
        failing = ready["failing_sources"]
        assert isinstance(failing, list)
        assert [entry["source"] for entry in failing] == ["sg-poisoned"]
        assert failing[0]["error"] == "FatalProviderError"
        metrics = await _metrics(port)
        assert (
            'notifier_poll_errors_total{error_type="FatalProviderError",source="sg-poisoned"}'
            in (metrics)
        )
        assert 'source="sg-healthy"' not in "".join(
            line for line in metrics.splitlines() if line.startswith("notifier_poll_errors_total")
        )
        assert process.returncode is None
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
        await receiver.stop()
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text
    # Refused as a page error, by the adapter reading its cursor from the link or by the
    # client resolving it, whichever meets it first.
    assert "malformed next link" in text or "not a valid URL" in text
    assert_no_secrets([("log", text), ("readyz", json.dumps(ready))], list(env.values()))
