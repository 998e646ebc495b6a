"""Secrets never reach a log line: the redaction processor on real rendered output."""

from __future__ import annotations

import io

import orjson
import pytest
import structlog

from notifier.observability import configure_logging, redact_text

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-abcdef123456"


@pytest.fixture
def log_stream() -> io.StringIO:
    """JSON logs rendered into a buffer, the way production renders them."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "key", ["token", "api_key", "Authorization", "webhook_secret", "sasl_password"]
)
def test_secret_named_fields_are_redacted(log_stream: io.StringIO, key: str) -> None:
    """A key that names a credential never shows its value."""
    structlog.get_logger().info("request_sent", **{key: TOKEN})
    (line,) = _lines(log_stream)
    assert line[key] == "***"
    assert TOKEN not in log_stream.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://api.shotgun.live/tickets?organizer_id=1&token={TOKEN}&after=x",
        f"GET https://api.example/v1?key={TOKEN}",
        f"header Authorization: Bearer {TOKEN}",
        "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # Standard Webhooks example secret
    ],
)
def test_credentials_inside_text_are_redacted(log_stream: io.StringIO, text: str) -> None:
    """Query tokens, bearer values and webhook secrets are cut out of any text value."""
    structlog.get_logger().warning("provider_http_retry", url=text)
    rendered = log_stream.getvalue()
    assert TOKEN not in rendered
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in rendered
    assert "***" in rendered


def test_redaction_keeps_the_rest_of_a_url() -> None:
    """Only the credential goes: the other parameters stay readable."""
    assert (
        redact_text(f"https://h/tickets?organizer_id=1&token={TOKEN}&after=2025")
        == "https://h/tickets?organizer_id=1&token=***&after=2025"
    )
