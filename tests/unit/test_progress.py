"""Long reads report their progress without the adapters knowing."""

from __future__ import annotations

from structlog.testing import capture_logs

from notifier.progress import PROGRESS, LogReporter, reporting


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
    """The reporter is visible inside the block only."""
    with capture_logs(), reporting("s: baseline", terminal=False) as reporter:
        assert PROGRESS.get() is reporter
    assert PROGRESS.get() is None
