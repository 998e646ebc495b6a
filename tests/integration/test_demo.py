"""`notifier demo`, the README's main command, runs end to end on a fresh machine."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest


@pytest.mark.slow
async def test_the_demo_shows_events_on_both_channels() -> None:
    """A short demo verifies events on the webhook and finds every one of them on Kafka."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "notifier.cli", "demo", "--duration", "12", "--tickets", "40"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    text = output.decode()
    assert process.returncode == 0, text[-2000:]
    summary = re.search(r"demo finished: (\d+) events verified on the webhook", text)
    assert summary is not None, text[-2000:]
    assert int(summary.group(1)) > 0
    assert "every webhook event also on Kafka" in text
    for provider in ("shotgun", "eventpop", "nuweb", "tickettailor"):
        assert f"  {provider}" in text  # the banner lists every provider's simulator
