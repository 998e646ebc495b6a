"""Secrets never reach a log line: the redaction processor on real rendered output."""

from __future__ import annotations

import io
import logging

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


def test_nested_values_are_redacted_at_any_depth(log_stream: io.StringIO) -> None:
    """A secret-named key inside a dict inside a list, and a token inside nested text."""
    structlog.get_logger().warning(
        "provider_error",
        request={"headers": [{"Authorization": f"Bearer {TOKEN}"}], "note": f"token={TOKEN}"},
        attempts=[{"url": f"https://h/v1?access_token={TOKEN}", "status": 500}],
    )
    (line,) = _lines(log_stream)
    assert TOKEN not in log_stream.getvalue()
    assert line["request"] == {"headers": [{"Authorization": "***"}], "note": "token=***"}
    assert line["attempts"] == [{"url": "https://h/v1?access_token=***", "status": 500}]


def test_library_log_records_join_the_json_stream_redacted(log_stream: io.StringIO) -> None:
    """aiokafka's and aiohttp's own warnings become JSON lines, with credentials cut."""
    logging.getLogger("aiokafka.conn").warning("connect failed: %s", f"sasl token={TOKEN}")
    logging.getLogger("aiohttp.client").error("GET https://h/v1?key=%s failed", TOKEN)
    lines = _lines(log_stream)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("aiokafka.conn", "warning"),
        ("aiohttp.client", "error"),
    ]
    assert TOKEN not in log_stream.getvalue()
    assert lines[0]["event"] == "connect failed: sasl token=***"


def test_library_info_lines_stay_out_unless_debugging(log_stream: io.StringIO) -> None:
    """aiokafka narrates every reconnect at INFO: below WARNING, libraries are quiet."""
    logging.getLogger("aiokafka.conn").info("reconnecting")
    assert log_stream.getvalue() == ""


def test_configuring_twice_keeps_one_handler() -> None:
    """Reconfiguring (tests, `notifier demo` then `run`) does not duplicate library lines."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, stream=first)
    configure_logging(json=True, stream=second)
    logging.getLogger("aiokafka").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
