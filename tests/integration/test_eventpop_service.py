"""Eventpop token rotation through the service as configured: two organizers, two grants,
two runs on one state file (a restart), one grant revoked in the second run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from structlog.testing import capture_logs

from notifier.config.loader import load_config
from notifier.model import SourceId
from notifier.sealing import STATE_KEY_ENV
from notifier.service import open_runtime, run_once
from notifier.store.sqlite import SqliteStore
from tests.integration.eventpop_rig import CLIENT_ID, CLIENT_SECRET, Rig

CONFIG = """\
state:
  path: state.db
organizers:
  - id: bangkok
    name: Bangkok Live
    sources:
      - id: ep-bkk
        provider: eventpop
        organizer_id: 4242
        event_ids: [71001]
        access_token: ${{BKK_ACCESS}}
        client_id: ${{CLIENT_ID}}
        client_secret: ${{CLIENT_SECRET}}
        refresh_token: ${{BKK_REFRESH}}
        base_url: {base_url}
        allow_insecure_http: true
  - id: chiangmai
    name: Chiang Mai Live
    sources:
      - id: ep-cnx
        provider: eventpop
        organizer_id: 5151
        event_ids: [81001]
        access_token: ${{CNX_ACCESS}}
        client_id: ${{CLIENT_ID}}
        client_secret: ${{CLIENT_SECRET}}
        refresh_token: ${{CNX_REFRESH}}
        base_url: {base_url}
        allow_insecure_http: true
"""
ENV = {
    "BKK_ACCESS": "bkk-access-1",
    "BKK_REFRESH": "bkk-refresh-1",
    "CNX_ACCESS": "cnx-access-1",
    "CNX_REFRESH": "cnx-refresh-1",
    "CLIENT_ID": CLIENT_ID,
    "CLIENT_SECRET": CLIENT_SECRET,
}
LIFETIME = 7200.0


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    started = await Rig.start()
    sim = started.sim
    sim.add_organizer(
        4242, ENV["BKK_ACCESS"], refresh_token=ENV["BKK_REFRESH"], client_id=CLIENT_ID
    )
    sim.add_organizer(
        5151, ENV["CNX_ACCESS"], refresh_token=ENV["CNX_REFRESH"], client_id=CLIENT_ID
    )
    sim.add_event(4242, 71001)
    sim.add_event(5151, 81001)
    sim.create_ticket(71001)
    sim.create_ticket(81001)
    yield started
    await started.stop()


async def run(config_file: Path) -> int:
    runtime = await open_runtime(load_config(config_file, ENV))
    try:
        return await run_once(runtime)
    finally:
        await runtime.close()


async def test_rotation_survives_a_restart_and_a_revoked_grant_fails_only_its_source(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATE_KEY_ENV, Fernet.generate_key().decode())
    config_file = tmp_path / "notifier.yaml"
    config_file.write_text(CONFIG.format(base_url=rig.base_url))

    rig.clock.advance(LIFETIME)  # both configured access tokens have expired
    assert await run(config_file) == 0
    assert rig.sim.refreshes == 2  # each grant rotated once: the config's tokens are dead

    rig.clock.advance(LIFETIME)  # the restart finds the rotated access tokens expired too
    rig.sim.tokens.revoke_refresh_token(rig.sim.tokens.live_refresh_tokens()[0])  # Bangkok's
    rig.sim.create_ticket(81001)
    with capture_logs() as logs:
        assert await run(config_file) == 1  # one source failed
    assert rig.sim.refreshes == 3  # Chiang Mai refreshed with its stored token

    (failure,) = [entry for entry in logs if entry["event"] == "poll_failed"]
    assert "re-authorise" in failure["error"]
    for secret in (*ENV.values(), *rig.sim.tokens.live_refresh_tokens()):
        if secret not in (CLIENT_ID,):
            assert secret not in repr(logs)
    store = await SqliteStore(tmp_path / "state.db").open()
    try:
        cnx = await store.load(SourceId("ep-cnx"))
        assert len(cnx.tickets) == 2  # the second run read Chiang Mai's new ticket
    finally:
        await store.close()
