"""WebhookSink against real aiohttp receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from structlog.testing import capture_logs

from notifier.dev.receiver import Receiver, Scripted
from notifier.envelope import OutboxEvent
from notifier.errors import ConfigError, FatalDeliveryError, RetriableDeliveryError
from notifier.sinks.base import Sink
from notifier.sinks.webhook import WebhookSink

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
DATA = {"ticket_id": "T-1", "organizer": "fabric", "after": {"status": "valid"}, "sequence": 1}


def make_event(
    n: int = 1, *, event_type: str = "ticket.checked_in", organizer: str = "fabric"
) -> OutboxEvent:
    return OutboxEvent(
        id=f"evt-{n:04d}",
        type=event_type,
        ce_source=f"/shotgun/{organizer}/shotgun-main",
        subject=f"T-{n}",
        time=datetime(2025, 3, 1, 20, 15, tzinfo=UTC),
        partition_key=f"shotgun:shotgun-main:T-{n}",
        organizer=organizer,
        source_id="shotgun-main",
        data=orjson.dumps({**DATA, "ticket_id": f"T-{n}"}),
    )


SinkFactory = Callable[..., WebhookSink]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(SECRET)
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture
async def make_sink() -> AsyncIterator[SinkFactory]:
    made: list[WebhookSink] = []

    def factory(url: str, *, name: str = "crm", **kwargs: Any) -> WebhookSink:
        kwargs.setdefault("secret", SECRET)
        sink = WebhookSink(name, url, **kwargs)
        made.append(sink)
        return sink

    yield factory
    for sink in made:
        await sink.close()


async def started(*, secret: str = SECRET) -> tuple[Receiver, str]:
    rec = Receiver(secret)
    return rec, await rec.start()


# --- the happy path: signed, structured CloudEvents ------------------------------------


async def test_sink_satisfies_the_protocol(make_sink: SinkFactory, receiver: Receiver) -> None:
    """WebhookSink is a Sink without casts."""
    sink: Sink = make_sink(receiver.url)
    assert sink.name == "crm"


async def test_delivered_event_verifies_independently(
    make_sink: SinkFactory, receiver: Receiver
) -> None:
    """The request verifies with a fresh standardwebhooks.Webhook and carries the event id."""
    event = make_event()
    assert await make_sink(receiver.url).deliver([event]) == [None]
    (request,) = receiver.requests
    assert Webhook(SECRET).verify(request.body, request.headers) == receiver.events[0]
    assert request.headers["webhook-id"] == event.id
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/cloudevents+json"


async def test_body_is_a_structured_cloudevent(make_sink: SinkFactory, receiver: Receiver) -> None:
    """The cloudevents SDK parses the body with the event's id, type, source and data."""
    event = make_event()
    await make_sink(receiver.url).deliver([event])
    (request,) = receiver.requests
    parsed = from_http_event(HTTPMessage(headers=request.headers, body=request.body))
    assert parsed.get_id() == event.id
    assert parsed.get_type() == event.type
    assert parsed.get_source() == event.ce_source
    assert parsed.get_subject() == event.subject
    assert parsed.get_extension("partitionkey") == event.partition_key
    assert parsed.get_data() == orjson.loads(event.data)


async def test_data_is_embedded_json_not_a_string(
    make_sink: SinkFactory, receiver: Receiver
) -> None:
    """``data`` is a JSON object inside the envelope, next to the context attributes."""
    event = make_event()
    await make_sink(receiver.url).deliver([event])
    assert receiver.events == [{**event.attributes(), "data": orjson.loads(event.data)}]


async def test_tampered_body_fails_verification(make_sink: SinkFactory, receiver: Receiver) -> None:
    """Changing one byte of a delivered body breaks its signature."""
    await make_sink(receiver.url).deliver([make_event()])
    (request,) = receiver.requests
    tampered = request.body.replace(b"T-1", b"T-2")
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)


async def test_wrong_secret_fails_verification(make_sink: SinkFactory) -> None:
    """An endpoint holding another secret answers 401, reported as retriable with its status."""
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    rec, url = await started(secret=other)
    try:
        (outcome,) = await make_sink(url).deliver([make_event()])
    finally:
        await rec.stop()
    assert isinstance(outcome, RetriableDeliveryError)
    assert outcome.status == 401
    assert rec.events == []


async def test_stale_timestamp_fails_verification(
    make_sink: SinkFactory, receiver: Receiver
) -> None:
    """A signature made 10 minutes ago is rejected by the receiver and by the library."""
    stale = datetime.now(UTC) - timedelta(minutes=10)
    sink = make_sink(receiver.url, clock=lambda: stale)
    (outcome,) = await sink.deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert outcome.status == 401
    (request,) = receiver.requests
    assert request.headers["webhook-timestamp"] == str(int(stale.timestamp()))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(request.body, request.headers)


async def test_redelivery_keeps_the_webhook_id(make_sink: SinkFactory, receiver: Receiver) -> None:
    """The same event sent twice (a retry) carries the same webhook-id and body."""
    receiver.responses.append(Scripted(500))
    sink = make_sink(receiver.url)
    event = make_event()
    first = await sink.deliver([event])
    second = await sink.deliver([event])
    assert isinstance(first[0], RetriableDeliveryError)
    assert second == [None]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [event.id, event.id]
    assert receiver.requests[0].body == receiver.requests[1].body


async def test_batch_outcomes_are_in_order(make_sink: SinkFactory, receiver: Receiver) -> None:
    """A batch yields one outcome per event; each event arrives once."""
    batch = [make_event(n) for n in range(1, 6)]
    outcomes = await make_sink(receiver.url).deliver(batch)
    assert outcomes == [None] * 5
    assert sorted(e["id"] for e in receiver.events) == [e.id for e in batch]


# --- failures and their meaning ----------------------------------------------------------


async def test_server_error_is_retriable_with_status(
    make_sink: SinkFactory, receiver: Receiver
) -> None:
    """500 → RetriableDeliveryError carrying the status and no retry_after."""
    receiver.responses.append(Scripted(500))
    (outcome,) = await make_sink(receiver.url).deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert (outcome.status, outcome.retry_after) == (500, None)


async def test_429_retry_after_seconds(make_sink: SinkFactory, receiver: Receiver) -> None:
    """429 with Retry-After: 7 → retriable with retry_after 7."""
    receiver.responses.append(Scripted(429, retry_after="7"))
    (outcome,) = await make_sink(receiver.url).deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert (outcome.status, outcome.retry_after) == (429, 7.0)


async def test_503_retry_after_http_date(make_sink: SinkFactory, receiver: Receiver) -> None:
    """An HTTP-date Retry-After is turned into seconds from the sink's clock."""
    now = datetime.now(UTC).replace(microsecond=0)
    receiver.responses.append(
        Scripted(503, retry_after=format_datetime(now + timedelta(seconds=120), usegmt=True))
    )
    (outcome,) = await make_sink(receiver.url, clock=lambda: now).deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert (outcome.status, outcome.retry_after) == (503, 120.0)


async def test_gone_is_fatal(make_sink: SinkFactory, receiver: Receiver) -> None:
    """410 Gone → FatalDeliveryError with status 410."""
    receiver.responses.append(Scripted(410))
    (outcome,) = await make_sink(receiver.url).deliver([make_event()])
    assert isinstance(outcome, FatalDeliveryError)
    assert outcome.status == 410


async def test_down_endpoint_slows_the_sink_down(
    make_sink: SinkFactory, receiver: Receiver
) -> None:
    """503s throttle the endpoint: not_before moves ahead and batches shrink to one."""
    receiver.down = True
    clock = [1000.0]
    sink = make_sink(receiver.url, monotonic=lambda: clock[0])
    assert sink.batch_limit() == 8
    (outcome,) = await sink.deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert outcome.status == 503
    assert sink.throttle.throttled
    assert sink.not_before() > 1000.0
    assert sink.batch_limit() == 1
    receiver.down = False
    clock[0] = sink.not_before()
    assert await sink.deliver([make_event()]) == [None]
    assert not sink.throttle.throttled


async def test_redirect_is_not_followed(make_sink: SinkFactory, receiver: Receiver) -> None:
    """A 3xx is a failed attempt: a signed event is never forwarded to another location."""
    receiver.responses.append(Scripted(307))
    (outcome,) = await make_sink(receiver.url).deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert outcome.status == 307
    assert len(receiver.requests) == 1


async def test_connection_refused_is_retriable(make_sink: SinkFactory) -> None:
    """Nothing listening → RetriableDeliveryError without status, chained to the cause."""
    rec, url = await started()
    await rec.stop()
    (outcome,) = await make_sink(url).deliver([make_event()])
    assert isinstance(outcome, RetriableDeliveryError)
    assert outcome.status is None
    assert outcome.__cause__ is not None


async def test_hanging_endpoint_times_out(make_sink: SinkFactory, receiver: Receiver) -> None:
    """An endpoint that never answers → retriable timeout within the configured timeout."""
    receiver.gate.clear()
    sink = make_sink(receiver.url, timeout=0.3)
    loop = asyncio.get_running_loop()
    started_at = loop.time()
    (outcome,) = await asyncio.wait_for(sink.deliver([make_event()]), timeout=10)
    elapsed = loop.time() - started_at
    assert isinstance(outcome, RetriableDeliveryError)
    assert outcome.status is None
    assert isinstance(outcome.__cause__, TimeoutError)
    assert elapsed < 3.0


async def test_slow_endpoint_does_not_delay_another(make_sink: SinkFactory) -> None:
    """While one endpoint hangs, another sink's delivery completes long before that timeout."""
    slow_rec, slow_url = await started()
    fast_rec, fast_url = await started()
    slow_rec.gate.clear()
    slow = make_sink(slow_url, name="slow", timeout=30)
    fast = make_sink(fast_url, name="fast")
    fast_done = asyncio.Event()

    async def deliver_fast() -> None:
        assert await fast.deliver([make_event(2)]) == [None]
        fast_done.set()

    try:
        slow_task = asyncio.create_task(slow.deliver([make_event(1)]))
        await slow_rec.wait_until(lambda r: r.in_flight == 1)
        fast_task = asyncio.create_task(deliver_fast())
        await asyncio.wait_for(fast_done.wait(), timeout=5)
        assert not slow_task.done()
        await fast_task
    finally:
        await slow_rec.stop()
        await fast_rec.stop()
    assert [e["id"] for e in fast_rec.events] == ["evt-0002"]
    # stop() released the held request, so the slow delivery finishes without the timeout
    await asyncio.wait_for(slow_task, timeout=5)


async def test_concurrency_limit_is_respected(make_sink: SinkFactory, receiver: Receiver) -> None:
    """No more than `concurrency` requests are in flight at once, and that many are used."""
    receiver.gate.clear()
    sink = make_sink(receiver.url, concurrency=3)
    task = asyncio.create_task(sink.deliver([make_event(n) for n in range(10)]))
    await receiver.wait_until(lambda r: r.in_flight == 3)
    receiver.gate.set()
    outcomes = await asyncio.wait_for(task, timeout=10)
    assert outcomes == [None] * 10
    assert receiver.max_in_flight == 3
    assert len(receiver.events) == 10


# --- which events an endpoint gets -----------------------------------------------------------


def test_filters_select_event_types(make_sink: SinkFactory) -> None:
    """Exact types and prefixes decide wants(); no patterns means every event."""
    url = "http://127.0.0.1:9/webhook"
    doors = make_sink(url, events=["ticket.*"])
    crm = make_sink(url, events=["ticket.voided", "ticket_type.sold_out"])
    everything = make_sink(url)
    checked_in = make_event(event_type="ticket.checked_in")
    sold_out = make_event(event_type="ticket_type.sold_out")
    assert (doors.wants(checked_in), doors.wants(sold_out)) == (True, False)
    assert (crm.wants(checked_in), crm.wants(sold_out)) == (False, True)
    assert (everything.wants(checked_in), everything.wants(sold_out)) == (True, True)


def test_organizer_restriction(make_sink: SinkFactory) -> None:
    """An endpoint declared under one organizer only wants that organizer's events."""
    url = "http://127.0.0.1:9/webhook"
    fabric_only = make_sink(url, organizer="fabric", events=["ticket.*"])
    global_endpoint = make_sink(url)
    ours, theirs = make_event(organizer="fabric"), make_event(organizer="printworks")
    assert fabric_only.wants(ours)
    assert not fabric_only.wants(theirs)
    assert not fabric_only.wants(make_event(organizer="fabric", event_type="ticket_type.sold_out"))
    assert global_endpoint.wants(theirs)


# --- secrets ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _debug_logs() -> Iterator[None]:
    """Let debug lines through (per-event delivery lines are debug) for the block only."""
    before = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(wrapper_class=before)


async def test_secret_never_leaks(make_sink: SinkFactory, receiver: Receiver) -> None:
    """Neither repr, error messages nor logs contain the secret or URL credentials."""
    receiver.responses.extend([Scripted(500), Scripted(410)])
    url = receiver.url.replace("http://", "http://user:hunter2@") + "?token=tok3n-XYZ"
    sink = make_sink(url)
    with _debug_logs(), capture_logs() as logs:
        outcomes = await sink.deliver([make_event(1)])
        outcomes += await sink.deliver([make_event(2)])
    key = SECRET.removeprefix("whsec_")
    texts = [repr(sink), *(str(o) for o in outcomes), repr(logs)]
    assert all(key not in t and "hunter2" not in t and "tok3n-XYZ" not in t for t in texts)
    sink_logs = [log["event"] for log in logs if log["event"].startswith("webhook_")]
    assert sink_logs == ["webhook_rejected", "webhook_rejected"]


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!"])
def test_bad_secret_is_a_config_error(secret: str) -> None:
    """A secret that is not a whsec_ base64 key is refused at construction."""
    with pytest.raises(ConfigError, match="crm"):
        WebhookSink("crm", "http://127.0.0.1:9/", secret=secret)


async def test_own_session_is_closed(receiver: Receiver) -> None:
    """A sink that created its session closes it; a shared session is left open."""
    own = WebhookSink("own", receiver.url, secret=SECRET)
    await own.deliver([make_event()])
    await own.close()
    async with aiohttp.ClientSession() as shared:
        borrowing = WebhookSink("shared", receiver.url, secret=SECRET, session=shared)
        assert await borrowing.deliver([make_event(2)]) == [None]
        await borrowing.close()
        assert not shared.closed
