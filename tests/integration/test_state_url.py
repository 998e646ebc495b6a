"""``state: {url: postgresql://…}`` selects PostgreSQL; ``path`` stays SQLite (design.md §10)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from notifier.config import load_config
from notifier.config.problems import InvalidConfigError
from notifier.model import SourceId
from notifier.store.opening import open_store
from notifier.store.postgres import PostgresStore
from notifier.store.sqlite import SqliteStore

ORGANIZERS = """\
organizers:
  - id: fabric
    name: Fabric
    sources:
      - {id: main, provider: shotgun, organizer_id: 1, token: t}
"""
PASSWORD = "s3cret-pg-password"


def config_file(tmp_path: Path, state: str) -> Path:
    path = tmp_path / "notifier.yaml"
    path.write_text(state + ORGANIZERS)
    return path


async def test_a_url_with_its_password_from_the_environment_opens_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    """The libpq URI with a socket directory (?host=/dir), the password by ${PGPASS}."""
    parts = urlsplit(postgres_url)  # postgresql://postgres:@/tN?host=/socket/dir
    url = f"postgresql://postgres:${{PGPASS}}@{parts.path}?{parts.query}"
    config = load_config(
        config_file(tmp_path, f'state: {{url: "{url}", lease: 4s}}\n'), {"PGPASS": PASSWORD}
    )
    assert config.state.url is not None
    assert PASSWORD in config.state.url
    assert config.state.lease.total_seconds() == 4
    store = await open_store(config.state, replica="r1")
    try:
        assert isinstance(store, PostgresStore)
        assert store.replica == "r1"
        assert (await store.load(SourceId("main"))).polled is False
    finally:
        await store.close()


async def test_a_path_or_nothing_is_sqlite(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, "state: {path: s.db}\n"), {})
    store = await open_store(config.state)
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "s.db").exists()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("state: {path: s.db, url: 'postgresql://u:${PGPASS}@db/n'}\n", "not both"),
        ("state: {url: 'mysql://u:${PGPASS}@db/n'}\n", "postgresql://"),
        ("state: {url: 'postgresql://db/n', lease: 0s}\n", "lease"),
    ],
    ids=["both", "other-scheme", "zero-lease"],
)
def test_bad_state_sections_are_refused_without_echoing_the_password(
    tmp_path: Path, state: str, message: str
) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        load_config(config_file(tmp_path, state), {"PGPASS": PASSWORD})
    report = str(caught.value)
    assert message in report
    assert PASSWORD not in report
