"""Long reads report their progress without the adapters knowing."""

from __future__ import annotations

from structlog.testing import capture_logs

from notifier.progress import LogReporter, reporting
from notifier.providers.http import PAGE_FETCHED


def test_log_reporter_reports_at_most_every_interval() -> None:
    """Pages are counted; a progress line goes out only once per interval, plus a last one."""
    now = [0.0]
    reporter = LogReporter("s: sweep", every=5.0, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(10):
            now[0] += 1.0
            reporter.page()
        reporter.finish()
    assert [e["event"] for e in logs] == ["read_progress", "read_progress", "read_finished"]
    assert logs[-1]["pages"] == 10


def test_reporting_is_scoped_to_the_block() -> None:
    """The HTTP client's page callback reaches the reporter inside the block only."""
    with capture_logs(), reporting("s: baseline", terminal=False) as reporter:
        on_page = PAGE_FETCHED.get()
        assert on_page is not None
        on_page()
        on_page()
    assert PAGE_FETCHED.get() is None
    assert isinstance(reporter, LogReporter)
    assert reporter.pages == 2
