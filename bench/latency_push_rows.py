"""Figure 2's push rows and notes, from the runs of ``latency_push``.

Latency rows put the same run with push off in the baseline column. Requests a minute
with push are held to the issue's bound: push off plus one per coalesced burst (a burst
being the deliveries one woken poll answers); Nuweb under its documented budget, to it.
"""

from __future__ import annotations

from bench.common import Row, percentile
from bench.latency_push import TARGET_P99, Comparison, PushRun


def latency_rows(name: str, change: str, run: PushRun, off: PushRun) -> list[Row]:
    """p50/p95/p99 per path, push off in the baseline column; the p99s carry the target."""
    rows = []
    for path in ("kafka", "webhook"):
        for fraction in (0.5, 0.95, 0.99):
            mine = percentile(run.scans.latencies(path), fraction) * 1000
            theirs = percentile(off.scans.latencies(path), fraction) * 1000
            figure = f"{name}: p{round(fraction * 100)} {change} -> {path}"
            if fraction < 0.99:
                rows.append(Row(figure, mine, theirs, "ms"))
            else:
                target = f"<= {TARGET_P99 * 1000:,.0f} ms"
                rows.append(Row(figure, mine, theirs, "ms", target, mine <= TARGET_P99 * 1000))
    return rows


def comparison_rows(c: Comparison) -> list[Row]:
    """Latencies, then requests a minute against push off + one per coalesced burst."""
    name = f"{c.provider} push"
    allowed = c.off.requests_per_minute + c.push.bursts_per_minute
    requests = c.push.requests_per_minute
    bursts = c.push.received - c.push.coalesced
    extra = (c.push.requests - c.off.requests) / bursts if bursts else float("nan")
    return [
        *latency_rows(name, c.change, c.push, c.off),
        Row(
            f"{name}: requests/min",
            requests,
            c.off.requests_per_minute,
            "/min",
            f"<= {allowed:,.0f} (push off + 1 per burst)",
            requests <= allowed,
        ),
        Row(f"{name}: coalesced bursts/min", c.push.bursts_per_minute, None, "/min"),
        Row(f"{name}: extra requests per burst", extra, None, ""),
    ]


def budget_rows(c: Comparison, budget: int) -> list[Row]:
    """Nuweb under its documented budget, push and push off: latencies, the budget holding."""
    name = f"{c.provider} push"
    return [
        *latency_rows(name, c.change, c.push, c.off),
        Row(
            f"{name}: requests/min",
            c.push.requests_per_minute,
            c.off.requests_per_minute,
            "/min",
            f"<= {budget} (the budget)",
            c.push.requests_per_minute <= budget,
        ),
    ]


def arrived(run: PushRun) -> str:
    kafka, webhook = len(run.scans.latencies("kafka")), len(run.scans.latencies("webhook"))
    return f"kafka {kafka:,}, webhook {webhook:,} of {len(run.scans.at):,}"


def comparison_note(c: Comparison, tickets: int, rate: float) -> str:
    return (
        f"{c.provider}: {c.change}s at {rate:g}/min over {c.push.seconds:g} s, "
        f"{tickets:,} tickets; arrived with push {arrived(c.push)}, push off {arrived(c.off)}; "
        f"{c.push.received:,} deliveries, {c.push.coalesced:,} coalesced"
    )
