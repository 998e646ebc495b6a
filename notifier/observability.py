"""Logging (structlog, with secrets redacted), Prometheus metrics, and the health server."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_SECRET_KEYS = re.compile(
    r"(token|secret|password|authorization|api_?key|access_token|refresh_token|pii_hash_key)",
    re.IGNORECASE,
)
_CREDENTIAL_QUERY = re.compile(
    r"(?i)(\b(?:token|key|api_key|apikey|access_token|refresh_token|client_secret|secret"
    r"|password)=)[^&#\s\"']*"
)
_BEARER = re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")
REDACTED = "***"
_MAX_REDACT_DEPTH = 16
# Libraries that log through the standard library; their lines join the same JSON stream.
LIBRARY_LOGGERS = ("aiokafka", "aiohttp", "asyncio")

POLLS = Counter("notifier_polls_total", "Polls by source and outcome", ["source", "outcome"])
EVENTS = Counter("notifier_events_total", "Events committed by type", ["type"])
RECORDS = Counter("notifier_records_read_total", "Provider records read", ["source"])
PROVIDER_REQUESTS = Counter(
    "notifier_provider_requests_total",
    "Provider HTTP requests by answer status ('error' when none came)",
    ["provider", "status"],
)
DELIVERIES = Counter(
    "notifier_deliveries_total", "Delivery attempts by sink and outcome", ["sink", "outcome"]
)
OUTBOX_PENDING = Gauge("notifier_outbox_pending", "Deliveries not yet acknowledged")
LAST_SUCCESS = Gauge(
    "notifier_last_successful_poll_timestamp_seconds", "Last committed poll", ["source"]
)
DETECTION_LATENCY = Histogram(
    "notifier_detection_latency_seconds",
    "From the provider's time of a change to its commit (stage=committed) or to a sink's "
    "acknowledgement (stage=delivered)",
    ["stage", "sink"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 900),
)
BUDGET_WAIT = Counter(
    "notifier_rate_budget_wait_seconds_total",
    "Time spent waiting for a provider account's request budget",
    ["provider"],
)
POLL_FAILURES = Gauge(
    "notifier_source_consecutive_failures", "Polls failed in a row, per source", ["source"]
)
POLL_ERRORS = Counter(
    "notifier_poll_errors_total",
    "Failed polls by source and exception type (ours or not): each stays with its source",
    ["source", "error_type"],
)
SOURCE_REFUSED = Gauge(
    "notifier_source_credentials_refused",
    "1 while a source's provider refuses its credentials (401/403): an operator must act",
    ["source"],
)
STORE_WRITE_FAILURES = Gauge(
    "notifier_store_consecutive_write_failures",
    "State store writes (commits, delivery outcomes) failed in a row",
)
STATE_FILE_BYTES = Gauge(
    "notifier_state_file_bytes", "Size of the SQLite state file, its WAL included"
)
RETENTION_DELETED = Counter(
    "notifier_retention_deleted_total",
    "Rows removed by retention: delivered/parked events, tickets of ended events",
    ["kind"],
)
KAFKA_ACCESS_ERRORS = Counter(
    "notifier_kafka_access_errors_total",
    "Kafka deliveries refused for authorization or authentication (retried, never parked)",
    ["sink", "error_type"],
)


def redact_text(text: str) -> str:
    """Remove credentials from free text: query tokens, bearer/basic values, webhook secrets."""
    text = _CREDENTIAL_QUERY.sub(r"\1" + REDACTED, text)
    text = _BEARER.sub(r"\1 " + REDACTED, text)
    return _WHSEC.sub("whsec_" + REDACTED, text)


def redact_value(value: object, *, depth: int = 0) -> object:
    """``value`` with credentials removed at any depth: in dicts, lists, tuples and text.

    Secret-named keys lose their value wherever they are nested (a request's headers, a
    provider's error body); beyond a sane depth the rest is dropped, not walked.
    """
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_REDACT_DEPTH:
        return REDACTED if isinstance(value, Mapping | list | tuple) else value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEYS.search(key)
            else redact_value(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item, depth=depth + 1) for item in value]
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: secret-named keys lose their value, text values lose credentials,
    at every depth of nested values."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(value)
    return event_dict


def configure_logging(
    *, json: bool | None = None, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """JSON lines in production (no TTY), a readable console in a terminal."""
    out = stream or sys.stderr
    as_json = not out.isatty() if json is None else json
    renderer: Callable[..., Any] = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    _route_library_logs(shared, renderer, stream=stream, level=level)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=(
            structlog.PrintLoggerFactory(file=stream) if stream is not None else _StderrLogger
        ),
        cache_logger_on_first_use=False,
    )


def _route_library_logs(
    shared: list[Any], renderer: Callable[..., Any], *, stream: TextIO | None, level: int
) -> None:
    """Send the standard library's records (aiokafka, aiohttp) through structlog's
    processors: one format, redacted, instead of plain text lines in the JSON stream."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    # Libraries speak at WARNING and above unless debugging: aiokafka's INFO lines narrate
    # every reconnect of an outage.
    root.setLevel(min(level, logging.WARNING))
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


_OURS = "_notifier_handler"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler bound to whatever ``sys.stderr`` is when a record is emitted."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is at the time of the call, not at configuration:
    a redirected or replaced stderr (a test harness, a daemonizer) keeps receiving logs."""

    def __init__(self, *_args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


@dataclass(frozen=True, slots=True)
class Readiness:
    """What /readyz answers: every check must pass; ``detail`` informs without deciding
    (failing sources by id, never a secret or a provider's message)."""

    checks: dict[str, bool]
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


ReadyCheck = Callable[[], Awaitable[Readiness]]


def health_app(*, alive: Callable[[], bool], ready: ReadyCheck) -> web.Application:
    """``/healthz`` (the loop is not stuck), ``/readyz`` (dependencies), ``/metrics``."""

    async def healthz(_: web.Request) -> web.Response:
        ok = alive()
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    async def readyz(_: web.Request) -> web.Response:
        readiness = await ready()
        body = {"ok": readiness.ok, "checks": readiness.checks, **readiness.detail}
        return web.json_response(body, status=200 if readiness.ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
