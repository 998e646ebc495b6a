"""Eventpop's single-use rotating refresh tokens: kept in the state store, sealed at rest,
used after a restart, shared by the sources of one grant; a refused refresh fails its
own source only and names the remedy. Real simulator, real SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from structlog.testing import capture_logs

from notifier.errors import FatalProviderError
from notifier.providers.eventpop import GrantBook
from notifier.sealing import Sealer
from notifier.store.sqlite import SqliteStore
from tests.integration.eventpop_rig import CLIENT_ID, ORGANIZER, Rig

TOKEN, REFRESH = "ep-access-7f3a", "ep-refresh-91c2"
LIFETIME = 7200.0  # the simulator's access tokens expire after two hours, as Eventpop's


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    started = await Rig.start()
    started.sim.add_organizer(ORGANIZER, TOKEN, refresh_token=REFRESH, client_id=CLIENT_ID)
    event = started.sim.add_event(ORGANIZER, 71001)
    started.sim.create_ticket(event)
    yield started
    await started.stop()


async def open_store(path: Path) -> SqliteStore:
    return await SqliteStore(path).open()


async def test_the_rotated_token_is_used_after_a_restart(rig: Rig, tmp_path: Path) -> None:
    """Two adapter lifetimes on one state file: the second refreshes with the token the
    first received, not the config's (which the first refresh killed)."""
    state = tmp_path / "state.db"
    store = await open_store(state)
    first = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook(store))
    rig.clock.advance(LIFETIME)  # the config's access token has expired
    assert len((await first.poll(None)).tickets) == 1
    assert rig.sim.refreshes == 1
    assert REFRESH not in rig.sim.tokens.live_refresh_tokens()  # single use
    await first.close()
    await store.close()

    store = await open_store(state)  # the restart: same config, same state file
    second = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook(store))
    assert len((await second.poll(None)).tickets) == 1  # the stored access token works
    rig.clock.advance(LIFETIME)
    assert len((await second.poll(None)).tickets) == 1  # refreshed with the stored token
    assert rig.sim.refreshes == 2
    await store.close()


async def test_without_the_store_a_restart_is_refused_with_the_remedy(rig: Rig) -> None:
    """The failure the store prevents: the config's refresh token is dead after a refresh."""
    first = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook())
    rig.clock.advance(LIFETIME)
    await first.poll(None)
    second = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook())
    with pytest.raises(FatalProviderError, match="re-authorise") as refused:
        await second.poll(None)
    assert "refresh_token" in str(refused.value)
    assert REFRESH not in str(refused.value)


async def test_two_sources_of_one_grant_rotate_it_once(rig: Rig, tmp_path: Path) -> None:
    """Two sources on one grant: one refresh per expiry, and neither kills the other."""
    rig.sim.add_event(ORGANIZER, 71002)
    rig.sim.create_ticket(71002)
    store = await open_store(tmp_path / "state.db")
    grants = GrantBook(store)
    one = rig.provider("ep-a", TOKEN, REFRESH, event_ids=[71001], grants=grants)
    two = rig.provider("ep-b", TOKEN, REFRESH, event_ids=[71002], grants=grants)
    cursors: dict[str, str | None] = {"a": None, "b": None}
    for expiry in range(1, 4):
        rig.clock.advance(LIFETIME)
        for name, provider in (("a", one), ("b", two)):
            result = await provider.poll(cursors[name])
            cursors[name] = result.cursor
        assert rig.sim.refreshes == expiry
    await store.close()


async def test_a_process_sharing_the_store_adopts_the_rotated_token(
    rig: Rig, tmp_path: Path
) -> None:
    """Two processes on one state file: the second, whose refresh token the first spent,
    takes the stored pair instead of failing."""
    state = tmp_path / "state.db"
    store_a, store_b = await open_store(state), await open_store(state)
    a = rig.provider("ep-a", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook(store_a))
    b = rig.provider("ep-b", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook(store_b))
    assert len((await b.poll(None)).tickets) == 1  # b has read the (empty) store already
    rig.clock.advance(LIFETIME)
    await a.poll(None)  # a rotates: b's refresh token is dead now
    assert len((await b.poll(None)).tickets) == 1
    assert rig.sim.refreshes == 1
    await store_a.close()
    await store_b.close()


async def test_a_refused_refresh_fails_only_its_own_source(rig: Rig, tmp_path: Path) -> None:
    """A revoked grant fails its source with the remedy; another grant's source goes on."""
    rig.sim.add_organizer(5151, "other-access", refresh_token="other-refresh", client_id=CLIENT_ID)
    other_event = rig.sim.add_event(5151, 81001)
    rig.sim.create_ticket(other_event)
    store = await open_store(tmp_path / "state.db")
    grants = GrantBook(store)
    revoked = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=grants)
    healthy = rig.provider(
        "ep-other",
        "other-access",
        "other-refresh",
        organizer=5151,
        event_ids=[81001],
        grants=grants,
    )
    rig.sim.tokens.revoke_refresh_token(REFRESH)  # the user withdrew the app's access
    rig.clock.advance(LIFETIME)
    with pytest.raises(FatalProviderError, match="re-authorise the application") as refused:
        await revoked.poll(None)
    assert REFRESH not in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert len((await healthy.poll(None)).tickets) == 1
    await store.close()


def _every_byte(path: Path) -> bytes:
    """The database file and its write-ahead log, as a thief copying the volume gets them."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_tokens_are_never_logged_and_sealed_at_rest_with_a_key(
    rig: Rig, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    store = await open_store(state)
    grants = GrantBook(store, Sealer(Fernet.generate_key()))
    provider = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=grants)
    with capture_logs() as logs:
        rig.clock.advance(LIFETIME)
        await provider.poll(None)
        rig.clock.advance(LIFETIME)
        await provider.poll(None)
    assert any(entry["event"] == "token_refreshed" for entry in logs)
    await store.close()
    secrets = [TOKEN, REFRESH, *rig.sim.tokens.live_refresh_tokens()]
    assert len(secrets) == 3
    logged = repr(logs)
    on_disk = _every_byte(state)
    for secret in secrets:
        assert secret not in logged
        assert secret.encode() not in on_disk
    with sqlite3.connect(state) as db:
        (value,) = db.execute("SELECT value FROM credentials").fetchone()
    assert value.startswith("fernet:")


async def test_without_a_key_tokens_are_stored_as_they_are(rig: Rig, tmp_path: Path) -> None:
    """No NOTIFIER_STATE_KEY: stored readable (docs/deploy.md says so), still used."""
    state = tmp_path / "state.db"
    store = await open_store(state)
    provider = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook(store))
    rig.clock.advance(LIFETIME)
    await provider.poll(None)
    await store.close()
    (live,) = rig.sim.tokens.live_refresh_tokens()
    assert live.encode() in _every_byte(state)


async def test_a_sealed_store_without_its_key_says_which_key_is_needed(
    rig: Rig, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    store = await open_store(state)
    sealed = GrantBook(store, Sealer(Fernet.generate_key()))
    provider = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=sealed)
    rig.clock.advance(LIFETIME)
    await provider.poll(None)
    restarted = rig.provider("ep", TOKEN, REFRESH, event_ids=[71001], grants=GrantBook(store))
    with pytest.raises(FatalProviderError, match="NOTIFIER_STATE_KEY"):
        await restarted.poll(None)
    await store.close()
