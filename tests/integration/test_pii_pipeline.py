"""The PII policy holds on every channel: no raw email, phone or name leaves under hash/omit."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from notifier.dev.broker import EmbeddedBroker
from notifier.dev.simulators.shotgun import ShotgunSimulator
from notifier.pii import hash_value
from tests.integration.pipeline import (
    ORGANIZER_ID,
    Pipeline,
    running_pipeline,
)

HASH_KEY = "pii-key-" + "k" * 24
HOLDER = {
    "first_name": "Ines",
    "last_name": "Garnier",
    "email": "ines.garnier@example.org",
    "phone": "+33612345678",
}


async def _pipeline(
    kafka_broker: EmbeddedBroker, topic: str, tmp_path: Path, policy: str
) -> AsyncIterator[tuple[Pipeline, int]]:
    sim = ShotgunSimulator()
    token = "tok." + secrets.token_urlsafe(12)
    sim.add_organizer(ORGANIZER_ID, token)
    event = sim.add_event(ORGANIZER_ID)
    ticket = sim.create_ticket(
        event,
        first_name=HOLDER["first_name"],
        last_name=HOLDER["last_name"],
        email=HOLDER["email"],
        phone=HOLDER["phone"],
    )
    async for pipeline in running_pipeline(
        kafka_broker,
        topic,
        tmp_path,
        sim=sim,
        token=token,
        tickets=[ticket],
        defaults={"pii": policy, "pii_hash_key": HASH_KEY},
    ):
        yield pipeline, ticket


@pytest.fixture(params=["hash", "omit"])
async def private(
    request: pytest.FixtureRequest,
    kafka_broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
) -> AsyncIterator[tuple[Pipeline, int, str]]:
    """A pipeline under each privacy policy, with one ticket of a known holder."""
    async for pipeline, ticket in _pipeline(
        kafka_broker, unique_topic("pii"), tmp_path, request.param
    ):
        yield pipeline, ticket, request.param


def _leaks(text: str) -> list[str]:
    return [value for value in HOLDER.values() if value in text]


async def test_no_holder_data_leaves_on_any_channel(
    private: tuple[Pipeline, int, str],
) -> None:
    """A transfer (holder before and after) reaches Kafka and the webhook with no raw PII,
    and no log line carries it either."""
    pipeline, ticket, policy = private
    await pipeline.once()
    with capture_logs() as logs:
        pipeline.sim.transfer(ticket, "Paul", "Durand", "paul.durand@example.org", "+33700000000")
        pipeline.sim.scan(ticket)
        assert await pipeline.once() == 0
    kafka = pipeline.kafka_events(2)
    assert len(kafka) == 2
    for event in kafka:
        assert _leaks(str(event.get_data())) == []
    assert len(pipeline.receiver.requests) == 2
    for request in pipeline.receiver.requests:
        assert _leaks(request.body.decode()) == []
    assert _leaks(repr(logs)) == []
    holder: Any = pipeline.receiver.events[-1]["data"]["holder"]
    if policy == "omit":
        assert holder is None
    else:
        assert holder["email"] == hash_value("paul.durand@example.org", HASH_KEY.encode())
