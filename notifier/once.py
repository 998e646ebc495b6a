"""What one ``notifier once`` did, as its exit code and its closing summary line (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OnceSummary:
    """What one ``notifier once`` did, and what it leaves owed, per sink."""

    committed: int
    failed_sources: int
    pending: dict[str, int]
    parked: dict[str, int]

    @property
    def exit_code(self) -> int:
        """1: a source failed; 2: deliveries still owed; 0: all delivered (docs/design.md §6a)."""
        if self.failed_sources:
            return 1
        return 2 if any(self.pending.values()) or any(self.parked.values()) else 0

    def line(self) -> str:
        """One line for a person (and a log grep): committed, then pending/parked per sink."""
        sinks = "; ".join(
            f"{sink}: {self.pending[sink]} pending, {self.parked[sink]} parked"
            for sink in self.pending
        )
        failed = f", {self.failed_sources} sources failed" if self.failed_sources else ""
        return (
            f"once: {self.committed} events committed{failed}; {sinks or 'no sinks'}"
            f" (exit {self.exit_code})"
        )
