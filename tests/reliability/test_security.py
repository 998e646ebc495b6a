"""Scenario 7, security: webhook signatures verify with the standardwebhooks library and fail
for a tampered body or a stale timestamp. (Every other scenario also asserts that no token,
key, password or webhook secret appears in its captured logs and error messages.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from notifier.dev.receiver import Receiver
from notifier.envelope import OutboxEvent
from notifier.errors import DeliveryError
from notifier.sinks.webhook import WebhookSink, signed_headers, structured_body
from tests.reliability.harness import new_secret

EVENT = OutboxEvent(
    id="0123456789abcdef0123456789abcdef",
    type="ticket.checked_in",
    ce_source="/shotgun/fabric/shotgun-main",
    subject="69246801",
    time=datetime(2026, 5, 1, 20, 0, tzinfo=UTC),
    partition_key="shotgun:shotgun-main:69246801",
    organizer="fabric",
    source_id="shotgun-main",
    data=b'{"sequence": 1, "ticket_id": "69246801"}',
)


def _signed(secret: str, at: datetime) -> tuple[bytes, dict[str, str]]:
    sink = WebhookSink("doors", "http://127.0.0.1:9/hook", secret=secret)
    body = structured_body(EVENT)
    return body, signed_headers(sink._signers, EVENT, body, at=at)


def test_a_signature_verifies_with_the_reference_library() -> None:
    """The standardwebhooks library accepts what the sink signs, webhook-id = event id."""
    secret = new_secret()
    body, headers = _signed(secret, datetime.now(UTC))
    Webhook(secret).verify(body, headers)
    assert headers["webhook-id"] == EVENT.id


def test_a_tampered_body_fails_verification() -> None:
    """One changed byte in the body: refused."""
    secret = new_secret()
    body, headers = _signed(secret, datetime.now(UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"69246801", b"69246802"), headers)


def test_a_stale_timestamp_fails_verification() -> None:
    """Signed an hour ago (a replay): refused by the library's tolerance window."""
    secret = new_secret()
    body, headers = _signed(secret, datetime.fromtimestamp(time.time() - 3600, UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_the_sink_never_shows_its_secret() -> None:
    """repr and str of a webhook sink carry neither the secret nor its key."""
    secret = new_secret()
    sink = WebhookSink("doors", "http://user:pw@127.0.0.1:9/hook?key=k", secret=secret)
    text = repr(sink) + str(sink)
    assert secret not in text
    assert secret[len("whsec_") :] not in text
    assert "pw" not in text


# --- secret rotation -------------------------------------------------------------------------


def test_every_secret_signs_and_either_verifies() -> None:
    """Rotation: two secrets give two signatures; the reference library accepts the delivery
    with the old key alone and with the new key alone, and refuses an unrelated key."""
    old, new, unrelated = new_secret(), new_secret(), new_secret()
    sink = WebhookSink("doors", "http://127.0.0.1:9/hook", secret=(old, new))
    body = structured_body(EVENT)
    headers = signed_headers(sink._signers, EVENT, body, at=datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(unrelated).verify(body, headers)


async def test_a_rotating_endpoint_is_accepted_by_receivers_of_either_key() -> None:
    """Over real HTTP: receivers that verify with only the old or only the new key (the
    standardwebhooks library) both answer 2xx to the same sink; one with another key, 401."""
    old, new, unrelated = new_secret(), new_secret(), new_secret()
    statuses: list[DeliveryError | None] = []
    for key in (old, new, unrelated):
        receiver = Receiver(key)
        await receiver.start()
        try:
            sink = WebhookSink("doors", receiver.url, secret=(old, new))
            try:
                (outcome,) = await sink.deliver([EVENT])
            finally:
                await sink.close()
            statuses.append(outcome)
            assert len(receiver.events) == (1 if key != unrelated else 0)
        finally:
            await receiver.stop()
    assert statuses[:2] == [None, None]
    assert statuses[2] is not None
